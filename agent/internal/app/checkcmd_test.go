package app

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

// TestCheckCommand runs `lanebridge-agent check` on a sound spool, while the spool is held,
// and after a byte of a record was changed: exit 0, 1 and 3, each with a message that says
// what was checked or what to do.
func TestCheckCommand(t *testing.T) {
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "agent.yaml")
	data := filepath.Join(dir, "data")
	y := fmt.Sprintf("store: S1\ndata_dir: %s\nhub:\n  broker: tcp://127.0.0.1:1\n  password: x\n%s", data, oneTerminal(dir))
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(data, 0o700); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(data, "spool.db")
	sp, err := spool.Open(path, spool.Options{Store: "S1"})
	if err != nil {
		t.Fatal(err)
	}
	var recs []protocol.Record
	for i := 1; i <= 50; i++ {
		recs = append(recs, protocol.Record{Kind: protocol.KindSale, Terminal: "T1", Receipt: fmt.Sprint(1000 + i), BusinessDate: "2026-03-01", Total: 100,
			Tenders: []protocol.Tender{{Type: protocol.TenderCash, Amount: 100}}})
	}
	if _, err := sp.Commit(t.Context(), spool.Capture{Source: "T1", Records: recs, Offset: []byte("o")}); err != nil {
		t.Fatal(err)
	}
	run := func() (int, string) {
		var out, errOut strings.Builder
		code := Main([]string{"check", "--config", cfgPath}, &out, &errOut)
		return code, out.String() + errOut.String()
	}
	if code, out := run(); code != checkFailed || !strings.Contains(out, "Stop the agent first") {
		t.Fatalf("check while the spool is held: exit %d\n%s", code, out)
	}
	if err := sp.Close(); err != nil {
		t.Fatal(err)
	}
	if code, out := run(); code != checkSound || !strings.Contains(out, ": OK: 50 records (seq 1..50) checked") {
		t.Fatalf("check of a sound spool: exit %d\n%s", code, out)
	}
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b = bytes.ReplaceAll(b, []byte(`"receipt":"1017"`), []byte(`"receipt":"1018"`))
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	if code, out := run(); code != checkCorrupt || !strings.Contains(out, "CORRUPT") || !strings.Contains(out, "record 17") {
		t.Fatalf("check of a damaged spool: exit %d\n%s", code, out)
	}
	if code := Main([]string{"check", "--config", filepath.Join(dir, "missing.yaml")}, io.Discard, io.Discard); code != checkFailed {
		t.Fatalf("check with a missing config: exit %d", code)
	}
}
