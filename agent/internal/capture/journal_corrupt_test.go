package capture

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/boltfile"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
	bolt "go.etcd.io/bbolt"
)

// saleLines returns canonical-jsonl sales with receipts R<from>..R<from+n-1>.
func saleLines(from, n int) []byte {
	var b strings.Builder
	for i := from; i < from+n; i++ {
		fmt.Fprintf(&b, `{"kind":"sale","terminal":"T1","receipt":"R%03d","business_date":"2024-03-14","time":"2024-03-14T14:05:00-04:00",`+
			`"lines":[{"description":"SODA","quantity":"1","unit_price":100,"amount":100}],"total":100,"tenders":[{"type":"cash","amount":100}]}`+"\n", i)
	}
	return []byte(b.String())
}

// runInput runs a canonical-jsonl pipeline for T1 on e, submits input in one piece per line
// and stops once the spool holds want records in all. It returns the pipeline's error.
func runInput(t *testing.T, e *env, input []byte, want int) error {
	t.Helper()
	pl := newTestPipeline(e, e.sp, shippedProfile(t, "canonical-jsonl"))
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	errc := make(chan error, 1)
	go func() { errc <- pl.Run(ctx) }()
	select {
	case <-pl.Ready():
	case err := <-errc:
		return err
	}
	for _, line := range strings.SplitAfter(string(input), "\n") {
		if line == "" {
			continue
		}
		if err := pl.Submit(ctx, Input{Data: []byte(line)}); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) && len(e.records(t)) < want {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	return <-errc
}

func cursorOf(t *testing.T, sp *spool.Spool) parseCursor {
	t.Helper()
	b, err := sp.Offset(OffsetKey("T1"))
	if err != nil {
		t.Fatal(err)
	}
	var c parseCursor
	if err := json.Unmarshal(b, &c); err != nil {
		t.Fatalf("cursor %q: %v", b, err)
	}
	return c
}

// receipts returns the receipts captured, sorted, and fails on a receipt captured twice.
func receipts(t *testing.T, e *env) []string {
	t.Helper()
	var out []string
	seen := map[string]bool{}
	for _, r := range e.records(t) {
		if seen[r.Receipt] {
			t.Fatalf("receipt %s captured twice", r.Receipt)
		}
		seen[r.Receipt] = true
		out = append(out, r.Receipt)
	}
	sort.Strings(out)
	return out
}

// legacy turns the journal into one written before journals had an id.
func legacy(t *testing.T, path string) {
	t.Helper()
	db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if err := db.Update(func(tx *bolt.Tx) error { return tx.DeleteBucket(journalMeta) }); err != nil {
		t.Fatal(err)
	}
}

// TestJournalReplaced: the raw journal is lost or corrupt while the spool, with a parse cursor
// into it, survives. The agent's start moves a corrupt journal aside and alarms; the pipeline
// resets the cursor to the start of the new journal (committed, alarmed), and capture goes on:
// nothing journaled in the new journal is skipped or parsed twice. A legacy journal (no id)
// keeps its legacy cursor.
func TestJournalReplaced(t *testing.T) {
	tests := []struct {
		name   string
		damage func(t *testing.T, e *env, path string)
		moved  bool // the journal is moved aside as corrupt
		reset  bool // the cursor is reset
		keepID bool // the journal keeps its id
	}{
		{"journal emptied: corrupt", func(t *testing.T, e *env, path string) {
			if err := os.Truncate(path, 0); err != nil {
				t.Fatal(err)
			}
		}, true, true, false},
		{"journal truncated: corrupt", func(t *testing.T, e *env, path string) {
			if err := os.Truncate(path, 5000); err != nil {
				t.Fatal(err)
			}
		}, true, true, false},
		{"an entry of unknown kind: corrupt", func(t *testing.T, e *env, path string) {
			db, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer db.Close()
			if err := db.Update(func(tx *bolt.Tx) error {
				return tx.Bucket([]byte("T1")).Put(u64key(1), encodeEntry(&Entry{Kind: 'x', Time: time.Now()}))
			}); err != nil {
				t.Fatal(err)
			}
		}, true, true, false},
		{"journal deleted", func(t *testing.T, e *env, path string) {
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, false, true, false},
		{"legacy cursor, journal deleted", func(t *testing.T, e *env, path string) {
			c := cursorOf(t, e.sp)
			c.Journal = ""
			b, _ := json.Marshal(c)
			if _, err := e.sp.Commit(context.Background(), spool.Capture{Source: OffsetKey("T1"), Offset: b}); err != nil {
				t.Fatal(err)
			}
			if err := os.Remove(path); err != nil {
				t.Fatal(err)
			}
		}, false, true, false},
		{"legacy cursor, legacy journal: kept", func(t *testing.T, e *env, path string) {
			c := cursorOf(t, e.sp)
			c.Journal = ""
			b, _ := json.Marshal(c)
			if _, err := e.sp.Commit(context.Background(), spool.Capture{Source: OffsetKey("T1"), Offset: b}); err != nil {
				t.Fatal(err)
			}
			legacy(t, path)
		}, false, false, false},
		{"sound journal: kept", func(t *testing.T, e *env, path string) {}, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			path := filepath.Join(dir, "journal.db")
			e := openEnv(t, dir)
			if err := runInput(t, e, saleLines(1, 5), 5); err != nil {
				t.Fatal(err)
			}
			before := cursorOf(t, e.sp)
			if before.Journal != e.jr.ID() || len(before.Journal) != 32 || before.Next < 6 {
				t.Fatalf("cursor %+v, journal %q: want the journal's id and entries parsed", before, e.jr.ID())
			}
			e.jr.Close()
			tt.damage(t, e, path)

			jr, err := OpenJournal(path, time.Second)
			if err != nil {
				t.Fatalf("OpenJournal: %v", err)
			}
			e.jr = jr
			defer e.close()
			aside, _ := filepath.Glob(path + ".corrupt-*")
			if tt.moved != (len(aside) == 1) {
				t.Fatalf("moved aside: %v, want moved %v", aside, tt.moved)
			}
			if (jr.ID() == before.Journal) != tt.keepID || len(jr.ID()) != 32 {
				t.Fatalf("journal id %q, before %q", jr.ID(), before.Journal)
			}
			if err := runInput(t, e, saleLines(6, 3), 8); err != nil {
				t.Fatalf("capture after the journal was replaced: %v", err)
			}
			want := strings.Fields("R001 R002 R003 R004 R005 R006 R007 R008")
			if got := receipts(t, e); strings.Join(got, " ") != strings.Join(want, " ") {
				t.Fatalf("captured %v, want %v", got, want)
			}
			after := cursorOf(t, e.sp)
			last, _ := jr.Last("T1")
			if after.Journal != jr.ID() || after.Next != last+1 {
				t.Fatalf("cursor after %+v, journal %q ends at %d", after, jr.ID(), last)
			}
			alarms := strings.Join(jr.Alarms(), "\n")
			t.Logf("alarms:\n%s", alarms)
			if tt.moved != strings.Contains(alarms, "raw journal file was corrupt and was moved aside to "+aside0(aside)) {
				t.Fatalf("corruption alarm %v, want %v", alarms, tt.moved)
			}
			if tt.reset != strings.Contains(alarms, "terminal T1: the parse cursor pointed into another raw journal") {
				t.Fatalf("reset alarm %v, want %v", alarms, tt.reset)
			}
			if tt.reset && last != 3 {
				t.Fatalf("new journal ends at %d, want 3 (only the new input)", last)
			}
		})
	}
}

func aside0(a []string) string {
	if len(a) == 0 {
		return "\x00"
	}
	return a[0]
}

// TestOpenJournalLocked: a journal held by another agent fails with the named error.
func TestOpenJournalLocked(t *testing.T) {
	path := filepath.Join(t.TempDir(), "journal.db")
	j, err := OpenJournal(path, time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer j.Close()
	start := time.Now()
	if _, err := OpenJournal(path, 200*time.Millisecond); !errors.Is(err, boltfile.ErrLocked) || time.Since(start) > 3*time.Second {
		t.Fatalf("OpenJournal of a held journal = %v after %v, want ErrLocked", err, time.Since(start))
	}
	if _, err := OpenJournalReadOnly(path, 200*time.Millisecond); !errors.Is(err, boltfile.ErrLocked) {
		t.Fatalf("OpenJournalReadOnly of a held journal = %v, want ErrLocked", err)
	}
}
