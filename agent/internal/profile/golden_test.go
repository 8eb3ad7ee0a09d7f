package profile_test

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
	firmwareprofiles "github.com/lanebridge/lanebridge/firmware-profiles"
	"github.com/lanebridge/lanebridge/protocol"
)

var update = flag.Bool("update", false, "rewrite expected.json golden files")

func shipped(t testing.TB) map[string]*profile.Profile {
	t.Helper()
	ps, err := profile.LoadFS(firmwareprofiles.FS)
	if err != nil {
		t.Fatalf("LoadFS: %v", err)
	}
	return ps
}

type goldenResult struct {
	Record *protocol.Record `json:"record,omitempty"`
	Flags  []string         `json:"flags,omitempty"`
	Error  string           `json:"error,omitempty"`
	Raw    string           `json:"raw,omitempty"` // only for quarantined results
}

var t0 = time.Date(2024, 3, 14, 14, 0, 0, 0, time.UTC)

// run feeds input in chunks of size chunk (0: whole) 10 ms apart, then closes the parser.
func run(p *profile.Profile, input []byte, chunk int) []profile.Result {
	ps := p.NewParser("")
	var out []profile.Result
	if chunk <= 0 {
		chunk = len(input) + 1
	}
	now := t0
	for i := 0; i < len(input); i += chunk {
		out = append(out, ps.Feed(input[i:min(i+chunk, len(input))], now)...)
		now = now.Add(10 * time.Millisecond)
		out = append(out, ps.Flush(now)...)
	}
	return append(out, ps.Close()...)
}

func render(results []profile.Result) []goldenResult {
	var g []goldenResult
	for _, r := range results {
		gr := goldenResult{Record: r.Record, Flags: r.Flags}
		if r.Err != nil {
			gr.Error, gr.Raw = r.Err.Error(), r.Raw
		}
		g = append(g, gr)
	}
	return g
}

func TestLoadFSNameMismatch(t *testing.T) {
	b, err := firmwareprofiles.FS.ReadFile("star-line.yaml")
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{"other.yaml": {Data: b}}
	if _, err := profile.LoadFS(fsys); err == nil || !strings.Contains(err.Error(), "must match the file name") {
		t.Fatalf("LoadFS with a renamed file: %v", err)
	}
}

func TestGolden(t *testing.T) {
	ps := shipped(t)
	dirs, err := filepath.Glob("testdata/*/*")
	// testdata/encoders/ holds layouts with their own profiles (TestEncoderGolden).
	dirs = slices.DeleteFunc(dirs, func(d string) bool { return filepath.Base(filepath.Dir(d)) == "encoders" })
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, dir := range dirs {
		name := filepath.Base(filepath.Dir(dir))
		seen[name] = true
		t.Run(name+"/"+filepath.Base(dir), func(t *testing.T) {
			p, ok := ps[name]
			if !ok {
				t.Fatalf("no shipped profile %q for %s", name, dir)
			}
			inputs, _ := filepath.Glob(filepath.Join(dir, "input.*"))
			if len(inputs) != 1 {
				t.Fatalf("%s: want exactly one input.* file, have %v", dir, inputs)
			}
			input, err := os.ReadFile(inputs[0])
			if err != nil {
				t.Fatal(err)
			}
			results := run(p, input, 7)
			got, err := json.MarshalIndent(render(results), "", "  ")
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, '\n')
			path := filepath.Join(dir, "expected.json")
			if *update {
				if err := os.WriteFile(path, got, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -run TestGolden -update and inspect the result)", err)
			}
			if !bytes.Equal(got, want) {
				t.Errorf("%s: results differ from expected.json:\n%s", dir, got)
			}
			whole, _ := json.MarshalIndent(render(run(p, input, 0)), "", "  ")
			if string(append(whole, '\n')) != string(got) {
				t.Errorf("%s: feeding the input whole gives different results than in 7-byte chunks", dir)
			}
			for _, r := range results {
				if r.Record != nil {
					if err := r.Record.ValidateBusiness(); err != nil {
						t.Errorf("record %s fails ValidateBusiness: %v", r.Record.Receipt, err)
					}
				}
			}
		})
	}
	for name := range ps {
		if !seen[name] {
			t.Errorf("shipped profile %s has no golden case under testdata/%s/", name, name)
		}
	}
}

// TestCardDataNeverLeaks feeds every profile input (the encoder layouts' too) salted with full test PANs and track data and
// checks that no output byte holds them.
func TestCardDataNeverLeaks(t *testing.T) {
	secrets := []string{"4111111111111111", "4111 1111 1111 1111", "5555-5555-5555-4444", "378282246310005", "=2512101", "^DOE/JOHN^", "CVV2 123"}
	salt := "VISA 4111 1111 1111 1111               6.73\n" +
		"MC 5555-5555-5555-4444\n" +
		";4111111111111111=25121010000012345678?\n" +
		"%B4111111111111111^DOE/JOHN^2512101000000000?\n" +
		"CVV2 123\n" +
		"AMEX 378282246310005 AUTH 1\n"
	ps := shipped(t)
	for _, dir := range encoderDirs(t) {
		p := loadProfileFile(t, filepath.Join(dir, "profile.yaml"))
		ps[p.Name] = p
	}
	for name, p := range ps {
		var in []byte
		switch p.Format() {
		case "canonical-jsonl":
			in = []byte(`{"kind":"sale","terminal":"T1","business_date":"2024-03-14","receipt":"4111111111111111","total":1,"lines":[{"description":"4111 1111 1111 1111","quantity":"1","unit_price":1,"amount":1}]}` + "\n" + salt)
		case "csv":
			in = []byte("receipt,date,description,amount,total\n1,2024-03-14,4111111111111111,1.00,1.00\n" + salt)
		default:
			dirs, _ := filepath.Glob(filepath.Join("testdata", name, "*", "input.*"))
			more, _ := filepath.Glob(filepath.Join("testdata", "encoders", name, "input.*"))
			dirs = append(dirs, more...)
			for _, d := range dirs {
				b, _ := os.ReadFile(d)
				// Put the salt inside the stream, after its first line.
				if i := bytes.IndexByte(b, '\n'); i >= 0 {
					b = append(b[:i+1:i+1], append([]byte(strings.ReplaceAll(salt, "\n", "\n\r")), b[i+1:]...)...)
				}
				in = append(in, b...)
			}
		}
		ps := p.NewParser("")
		var results []profile.Result
		for i := 0; i < len(in); i += 5 {
			results = append(results, ps.Feed(in[i:min(i+5, len(in))], t0)...)
		}
		results = append(results, ps.Close()...)
		if st := ps.Stats(); st.PANsMasked < 3 || st.LinesDropped < 3 {
			t.Errorf("%s: masked %d PANs and dropped %d lines, want at least 3 of each", name, st.PANsMasked, st.LinesDropped)
		}
		out, _ := json.Marshal(render(results))
		for _, r := range results {
			out = append(out, r.Raw...)
		}
		for _, s := range secrets {
			if bytes.Contains(out, []byte(s)) {
				t.Errorf("%s: output contains %q", name, s)
			}
		}
		if len(results) == 0 {
			t.Errorf("%s: no results at all", name)
		}
	}
}
