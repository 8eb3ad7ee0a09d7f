package capture

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/profile"
)

// cardLines are canonical JSON lines that carry card data in every field and spelling a POS
// export could put it: records (captured, masked), bad lines (quarantined, masked), lines with
// track data or a security code (removed).
var cardLines = []string{
	`{"kind":"sale","terminal":"T1","receipt":"1","business_date":"2026-11-26","lines":[{"description":"CARD 4111 1111 1111 1111","quantity":"1","unit_price":100,"amount":100}],"total":100,"tenders":[{"type":"cash","amount":100}]}`,
	`{"kind":"sale","terminal":"T1","receipt":"4111111111111111","business_date":"2026-11-26","total":100,"tenders":[{"type":"cash","amount":100}]}`,
	`{"kind":"sale","terminal":"T1","receipt":"3","business_date":"2026-11-26","lines":[{"sku":"4111-1111-1111-1111","description":"\u0034111111111111111","quantity":"1","unit_price":100,"amount":100}],"total":100,"tenders":[{"type":"card","amount":100,"card":{"brand":"5555 5555 5555 4444","last4":"4444"}}],"source":{"raw":"4111111111111111"}}`,
	`{"kind":"sale","terminal":"T1","receipt":"4","business_date":"4111111111111111","total":100}`,
	`{"kind":"refund","terminal":"T1","receipt":"5","note":"\u0034111 1111 1111 1111","business_date":"2026-11-26","total":100}`,
	`{"kind":"sale","terminal":"T1","receipt":"6","business_date":"2026-11-26","lines":[{"description":"%B4111111111111111^DOE/JOHN^2912101000000000?","quantity":"1","unit_price":100,"amount":100}],"total":100}`,
	`{"kind":"sale","terminal":"T1","receipt":"7","business_date":"2026-11-26","lines":[{"description":"CVV2 123","quantity":"1","unit_price":100,"amount":100}],"total":100}`,
	`SALE 12.00 VISA 5555-5555-5555-4444 EXP 12/29`,
}

const cardLinesRecords, cardLinesQuarantined = 3, 5

// cardForbidden are the forms of the card data in cardLines that must never be written.
var cardForbidden = []string{
	"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", `\u0034111`,
	"5555555555554444", "5555 5555 5555 4444", "5555-5555-5555-4444",
	"DOE/JOHN", "2912101000000000", "CVV2 123",
}

// TestCardDataNeverWritten performs the attack on the sources that read canonical JSON lines:
// card numbers in any field, JSON-escaped, in agent-assigned fields, in lines that fail to
// parse, track data and a security code. The sources are built from configuration as the agent
// builds them, run into a real spool (and raw journal) with their log in the data directory;
// afterwards no byte of any file there holds the card data, and the masked form did arrive.
func TestCardDataNeverWritten(t *testing.T) {
	for _, scheme := range []string{"file", "dir"} {
		t.Run(scheme, func(t *testing.T) {
			in, data := t.TempDir(), t.TempDir()
			input := []byte(strings.Join(cardLines, "\n") + "\n")
			source := "file://" + filepath.ToSlash(filepath.Join(in, "T1.jsonl"))
			if scheme == "dir" {
				source = "dir://" + filepath.ToSlash(in)
			}
			if err := os.WriteFile(filepath.Join(in, "T1.jsonl"), input, 0o644); err != nil {
				t.Fatal(err)
			}
			e := openEnv(t, data)
			logf, err := os.Create(filepath.Join(data, "agent.log"))
			if err != nil {
				t.Fatal(err)
			}
			var masked atomic.Uint64
			srcs, err := Build([]config.Terminal{{ID: "T1", Source: source, Profile: "canonical-jsonl"}}, Env{
				Profiles: map[string]*profile.Profile{"canonical-jsonl": shippedProfile(t, "canonical-jsonl")},
				Spool:    e.sp, Journal: e.jr, Masked: &masked,
				Log: slog.New(slog.NewTextHandler(logf, &slog.HandlerOptions{Level: slog.LevelDebug})),
			})
			if err != nil {
				t.Fatal(err)
			}
			switch s := srcs[0].(type) {
			case *Tail:
				s.Poll = 10 * time.Millisecond
			case *Dir:
				s.Poll, s.Settle = 20*time.Millisecond, -1
			}
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			go func() { done <- srcs[0].Run(ctx) }()
			deadline := time.Now().Add(20 * time.Second)
			for e.sp.LastSeq()+e.sp.Stats().QuarantineCount < uint64(len(cardLines)) {
				if time.Now().After(deadline) {
					cancel()
					t.Fatalf("timed out: %d records, %d quarantined", e.sp.LastSeq(), e.sp.Stats().QuarantineCount)
				}
				time.Sleep(10 * time.Millisecond)
			}
			cancel()
			if err := <-done; err != nil {
				t.Fatal(err)
			}
			if n, q := e.sp.LastSeq(), e.sp.Stats().QuarantineCount; n != cardLinesRecords || q != cardLinesQuarantined {
				t.Errorf("%d records and %d quarantined, want %d and %d", n, q, cardLinesRecords, cardLinesQuarantined)
			}
			if masked.Load() == 0 {
				t.Error("no masking was counted")
			}
			e.close()
			logf.Close()

			var files []string
			maskedSeen := false
			filepath.Walk(data, func(p string, info os.FileInfo, err error) error {
				if err != nil || info.IsDir() {
					return err
				}
				b, err := os.ReadFile(p)
				if err != nil {
					t.Fatal(err)
				}
				files = append(files, filepath.Base(p))
				for _, f := range cardForbidden {
					if i := bytes.Index(b, []byte(f)); i >= 0 {
						t.Errorf("%s holds %q: …%q…", filepath.Base(p), f, b[max(0, i-60):min(len(b), i+40)])
					}
				}
				maskedSeen = maskedSeen || bytes.Contains(b, []byte("411111******1111"))
				return nil
			})
			if !maskedSeen {
				t.Errorf("the masked card number is in none of %v: the scan looked in the wrong place", files)
			}
		})
	}
}
