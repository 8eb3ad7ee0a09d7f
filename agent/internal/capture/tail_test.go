package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

func rec(term string, receipt int) []byte {
	r := protocol.Record{Kind: protocol.KindSale, Terminal: term, Receipt: fmt.Sprint(receipt), BusinessDate: "2026-11-26", Total: 100,
		Tenders: []protocol.Tender{{Type: "cash", Amount: 100}}}
	b, _ := json.Marshal(r)
	return append(b, '\n')
}

func openSpool(t *testing.T, dir string) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(filepath.Join(dir, "spool.db"), spool.Options{Store: "S001"})
	if err != nil {
		t.Fatal(err)
	}
	return sp
}

func runTail(t *testing.T, sp *spool.Spool, path string, until func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	tl := &Tail{ID: "T1", Terminal: "T1", Path: path, Profile: shippedProfile(t, "canonical-jsonl"), Spool: sp, Log: slog.New(slog.DiscardHandler), Poll: 10 * time.Millisecond}
	done := make(chan error, 1)
	go func() { done <- tl.Run(ctx) }()
	deadline := time.Now().Add(10 * time.Second)
	for !until() {
		if time.Now().After(deadline) {
			cancel()
			t.Fatalf("timed out; spool at seq %d", sp.LastSeq())
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func appendFile(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f.Write(b)
	f.Close()
}

// TestTailRotationAndRestart: lines are captured once across restarts, partial lines, a rotation
// while the agent is stopped, and a copy-truncate.
func TestTailRotationAndRestart(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "j.jsonl")
	sp := openSpool(t, dir)
	defer sp.Close()

	for i := 1; i <= 5; i++ {
		appendFile(t, path, rec("T1", i))
	}
	partial := rec("T1", 6)
	appendFile(t, path, partial[:10]) // half a line: not captured yet
	runTail(t, sp, path, func() bool { return sp.LastSeq() == 5 })

	// While stopped: finish the line, add one more, rotate, and start a new file.
	appendFile(t, path, partial[10:])
	appendFile(t, path, rec("T1", 7))
	if err := os.Rename(path, path+".1"); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, rec("T1", 8))
	runTail(t, sp, path, func() bool { return sp.LastSeq() == 8 })

	// Copy-truncate: the file is emptied in place and written again.
	if err := os.Truncate(path, 0); err != nil {
		t.Fatal(err)
	}
	appendFile(t, path, rec("T1", 9))
	runTail(t, sp, path, func() bool { return sp.LastSeq() == 9 })

	recs, err := sp.Read(1, 100)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range recs {
		if r.Receipt != fmt.Sprint(i+1) {
			t.Fatalf("record %d has receipt %s: lost or duplicated", i+1, r.Receipt)
		}
	}
	if len(recs) != 9 {
		t.Fatalf("%d records, want 9", len(recs))
	}
}

// TestTailQuarantineMasksCardData: a bad line is quarantined with its card number masked, and
// capture goes on.
func TestTailQuarantineMasksCardData(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "j.jsonl")
	sp := openSpool(t, dir)
	defer sp.Close()
	appendFile(t, path, rec("T1", 1))
	appendFile(t, path, []byte("garbage card 4111 1111 1111 1111 exp 12/29\n"))
	appendFile(t, path, []byte(`{"kind":"sale","terminal":"T1","receipt":"2","business_date":"2026-13-45","total":1}`+"\n"))
	appendFile(t, path, rec("T1", 3))
	runTail(t, sp, path, func() bool { return sp.LastSeq() == 2 && sp.Stats().QuarantineCount == 2 })
	q, err := sp.Quarantined(10)
	if err != nil {
		t.Fatal(err)
	}
	all := ""
	for _, x := range q {
		all += x.Reason + " " + x.Excerpt + "\n"
	}
	if strings.Contains(all, "4111 1111 1111 1111") || strings.Contains(all, "4111111111111111") {
		t.Fatalf("quarantine holds a full PAN:\n%s", all)
	}
	if !strings.Contains(all, "business_date") {
		t.Fatalf("reason does not name the bad field:\n%s", all)
	}
	raw, _ := os.ReadFile(filepath.Join(dir, "spool.db"))
	if strings.Contains(string(raw), "4111 1111 1111 1111") {
		t.Fatal("spool file holds a full PAN")
	}
}
