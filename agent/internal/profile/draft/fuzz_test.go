package draft_test

import (
	"bytes"
	"math/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
	"github.com/lanebridge/lanebridge/agent/internal/profile/draft"
	"github.com/lanebridge/lanebridge/testharness/receiptgen"
)

// FuzzDraft: any input and any dialect give a draft that loads, or an error — no panic, no
// hang (each call is bounded by the sample limit and the rule cap).
func FuzzDraft(f *testing.F) {
	for _, l := range append(append(receiptgen.Layouts(), receiptgen.FrozenLayouts()...), receiptgen.UnseenLayouts()...) {
		f.Add(l.Generate(3, 6).Stream(0, 3), uint8(0))
	}
	if bins, _ := filepath.Glob("../../escpos/testdata/*/*.bin"); len(bins) > 0 {
		for _, b := range bins[:min(4, len(bins))] {
			if data, err := os.ReadFile(b); err == nil && len(data) < 16<<10 {
				f.Add(data, uint8(1))
			}
		}
	}
	f.Add([]byte("A 1,00\nTOTAL 1,00\n\nA 1,00\nTOTAL 1,00\n"), uint8(2))
	f.Add([]byte("\x1b@\x1dV\x00\x1b@x\n\x1dV\x00"), uint8(0))
	dialects := []string{"escpos", "star-line", "plain"}
	f.Fuzz(func(t *testing.T, data []byte, d uint8) {
		if len(data) > 16<<10 {
			return
		}
		start := time.Now()
		y, err := draft.Draft(data, draft.Options{Dialect: dialects[int(d)%3]})
		if err != nil {
			return
		}
		p, err := profile.Load(bytes.NewReader(y))
		if err != nil {
			t.Fatalf("Draft returned a profile that does not load: %v\n%s", err, y)
		}
		ps := p.NewParser("T1")
		ps.Feed(data, start)
		ps.Close()
		if el := time.Since(start); el > 20*time.Second {
			t.Fatalf("Draft and a parse took %v on %d bytes", el, len(data))
		}
	})
}

// TestDraftMutatedSamples is FuzzDraft's property on a fixed set of mutations (bytes flipped,
// cut, doubled, dropped) of every layout's sample, so that plain `go test` covers it too.
func TestDraftMutatedSamples(t *testing.T) {
	rng := rand.New(rand.NewSource(12))
	layouts := append(append(receiptgen.Layouts(), receiptgen.FrozenLayouts()...), receiptgen.UnseenLayouts()...)
	n := 0
	for _, l := range layouts {
		base := l.Generate(5, 6).Stream(0, 5)
		for i := 0; i < 8; i++ {
			b := bytes.Clone(base)
			switch i % 4 {
			case 0:
				for k := 0; k < 1+rng.Intn(20); k++ {
					b[rng.Intn(len(b))] = byte(rng.Intn(256))
				}
			case 1:
				b = b[:rng.Intn(len(b))]
			case 2:
				at := rng.Intn(len(b))
				b = append(b[:at:at], append(bytes.Clone(base[rng.Intn(len(base)):]), b[at:]...)...)
			case 3:
				at := rng.Intn(len(b))
				b = append(b[:at:at], b[min(len(b), at+rng.Intn(200)):]...)
			}
			y, err := draft.Draft(b, draft.Options{Dialect: l.Dialect, CodePage: l.CodePage})
			if err != nil {
				continue
			}
			if _, err := profile.Load(bytes.NewReader(y)); err != nil {
				t.Fatalf("%s mutation %d: the draft does not load: %v\n%s", l.Name, i, err, y)
			}
			n++
		}
	}
	t.Logf("%d mutated samples drafted and loaded", n)
}
