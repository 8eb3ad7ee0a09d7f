package draft_test

import (
	"bytes"
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
