package profile_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"sort"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/agent/internal/profile"
)

func shippedSorted(t testing.TB) ([]string, map[string]*profile.Profile) {
	ps := shipped(t)
	var names []string
	for n := range ps {
		names = append(names, n)
	}
	sort.Strings(names)
	return names, ps
}

// FuzzParse runs every shipped profile's parser on arbitrary input: no panic, every result is a
// record or a quarantine entry, records validate, nothing PAN-like survives, and chunking the
// input does not change the results.
func FuzzParse(f *testing.F) {
	names, ps := shippedSorted(f)
	// The encoder layouts' profiles too: they exercise wrapped cells, extras and locales.
	for _, dir := range encoderDirs(f) {
		p := loadProfileFile(f, filepath.Join(dir, "profile.yaml"))
		names = append(names, p.Name)
		ps[p.Name] = p
	}
	for i, n := range names {
		inputs, _ := filepath.Glob(filepath.Join("testdata", n, "*", "input.*"))
		more, _ := filepath.Glob(filepath.Join("testdata", "encoders", n, "input.*"))
		inputs = append(inputs, more...)
		for _, in := range inputs {
			b, err := os.ReadFile(in)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b, uint8(i), uint16(7))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte, which uint8, split uint16) {
		checkParse(t, names, ps, data, which, split)
	})
}

func checkParse(t *testing.T, names []string, ps map[string]*profile.Profile, data []byte, which uint8, split uint16) {
	{
		if len(data) > 1<<16 {
			return
		}
		p := ps[names[int(which)%len(names)]]
		now := time.Date(2024, 3, 14, 12, 0, 0, 0, time.UTC)
		whole := p.NewParser("")
		a := append(whole.Feed(data, now), whole.Close()...)
		parts := p.NewParser("")
		s := int(split) % (len(data) + 1)
		b := append(parts.Feed(data[:s], now), parts.Feed(data[s:], now)...)
		b = append(b, parts.Close()...)
		ja, _ := json.Marshal(render(a))
		jb, _ := json.Marshal(render(b))
		if string(ja) != string(jb) {
			t.Fatalf("%s: split at %d changes results:\n%s\n%s", p.Name, s, ja, jb)
		}
		for _, r := range a {
			if (r.Record == nil) == (r.Err == nil) {
				t.Fatalf("result with record=%v err=%v", r.Record != nil, r.Err)
			}
			if r.Record != nil {
				if err := r.Record.ValidateBusiness(); err != nil {
					t.Fatalf("invalid record: %v", err)
				}
			}
			for _, text := range []string{r.Raw, string(mustJSON(r.Record))} {
				if _, res := pan.Mask([]byte(text)); res.Masked > 0 {
					t.Fatalf("%s: output still holds a PAN: %q", p.Name, text)
				}
			}
		}
	}
}

func encoderDirs(t testing.TB) []string {
	dirs, err := filepath.Glob(filepath.Join("testdata", "encoders", "*"))
	if err != nil {
		t.Fatal(err)
	}
	return dirs
}

func loadProfileFile(t testing.TB, path string) *profile.Profile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	p, err := profile.Load(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return p
}

func mustJSON(v any) []byte {
	b, _ := json.Marshal(v)
	return b
}

func benchInput(b *testing.B, name string) []byte {
	inputs, _ := filepath.Glob(filepath.Join("testdata", name, "*", "input.*"))
	var one []byte
	for _, in := range inputs {
		d, err := os.ReadFile(in)
		if err != nil {
			b.Fatal(err)
		}
		one = append(one, d...)
		one = append(one, '\n')
	}
	var all []byte
	for len(all) < 256<<10 {
		all = append(all, one...)
	}
	return all
}

// BenchmarkParse measures parse throughput per profile; BenchmarkCopy is the byte-copy
// baseline on the same input (compare MB/s).
func BenchmarkParse(b *testing.B) {
	names, ps := shippedSorted(b)
	for _, n := range names {
		data := benchInput(b, n)
		b.Run(n, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			now := time.Now()
			for b.Loop() {
				pr := ps[n].NewParser("T1")
				for i := 0; i < len(data); i += 4096 {
					pr.Feed(data[i:min(i+4096, len(data))], now)
				}
				pr.Close()
			}
		})
	}
}

func BenchmarkCopy(b *testing.B) {
	names, _ := shippedSorted(b)
	for _, n := range names {
		data := benchInput(b, n)
		b.Run(n, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			dst := make([]byte, 0, len(data))
			for b.Loop() {
				dst = dst[:0]
				for i := 0; i < len(data); i += 4096 {
					dst = append(dst, data[i:min(i+4096, len(data))]...)
				}
			}
		})
	}
}
