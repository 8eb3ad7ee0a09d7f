package ingest

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	_ "modernc.org/sqlite"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// countingStore is the real store, counting the group commits it is asked for.
type countingStore struct {
	*store.DB
	mu     sync.Mutex
	groups []int // batches per ApplyBatches call
}

func (c *countingStore) ApplyBatches(ctx context.Context, bs []store.BatchApply) []store.BatchOutcome {
	c.mu.Lock()
	c.groups = append(c.groups, len(bs))
	c.mu.Unlock()
	return c.DB.ApplyBatches(ctx, bs)
}

func batchOf(t *testing.T, st string, from, to uint64) Message {
	t.Helper()
	b := protocol.Batch{V: 1, Store: st, Epoch: "e1"}
	for s := from; s <= to; s++ {
		r := protocol.Record{Kind: protocol.KindNoSale, Store: st, Terminal: "T1", Receipt: fmt.Sprint(s), BusinessDate: "2026-11-26",
			Epoch: "e1", Seq: s, CapturedAt: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
		r.Seal()
		b.Records = append(b.Records, r)
	}
	p, _ := json.Marshal(b)
	return Message{Topic: protocol.RecordsTopic(st), Payload: p}
}

// TestBackPressureAndGroupCommit: while the database cannot commit (another connection holds
// SQLite's write lock) nothing is acked; once the pending bytes are used up Handle blocks (and
// reports false when its context ends) and TryHandle refuses, instead of queueing without bound;
// when the lock goes, the batches of several stores waiting together are applied in one group
// commit and each is acked, after it.
func TestBackPressureAndGroupCommit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "hub.db")
	db, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, s := range []string{"S001", "S002", "S003"} {
		if err := db.AddStore(ctx, s, "x"); err != nil {
			t.Fatal(err)
		}
	}
	lock, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	locked := true
	defer func() {
		if locked {
			conn.ExecContext(ctx, "ROLLBACK")
		}
		conn.Close()
	}()

	st := &countingStore{DB: db}
	pub := &acks{}
	msgs := []Message{batchOf(t, "S001", 1, 10), batchOf(t, "S002", 1, 10), batchOf(t, "S003", 1, 10)}
	in := New(st, pub, Options{Workers: 3, MaxPendingBytes: int64(3 * len(msgs[0].Payload))})
	go in.Run(ctx)
	for _, m := range msgs {
		if !in.Handle(ctx, m) {
			t.Fatal("Handle refused a message within the budget")
		}
	}
	more := batchOf(t, "S001", 11, 20)
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	defer cancelShort()
	if in.Handle(short, more) {
		t.Fatal("Handle queued a message beyond the pending budget")
	}
	if in.TryHandle(more) {
		t.Fatal("TryHandle queued a message beyond the pending budget")
	}
	pub.mu.Lock()
	early := len(pub.list)
	pub.mu.Unlock()
	if early != 0 {
		t.Fatalf("%d acks published before anything could commit", early)
	}

	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	locked = false
	got := map[string]uint64{}
	for _, a := range pub.wait(t, 3) {
		got[a.Store] = a.AppliedThrough
	}
	if got["S001"] != 10 || got["S002"] != 10 || got["S003"] != 10 {
		t.Fatalf("acks %v, want each store through 10", got)
	}
	st.mu.Lock()
	groups := append([]int(nil), st.groups...)
	st.mu.Unlock()
	// The first batch may be applied alone (the committer took it before the others arrived);
	// those that waited behind it share one commit.
	if n := len(groups); n == 0 || n > 2 || slices.Max(groups) < 2 {
		t.Fatalf("group commits %v, want the batches that waited together in one", groups)
	}
	if !in.Handle(ctx, more) {
		t.Fatal("Handle refused once the budget was free again")
	}
	if a := pub.wait(t, 4)[3]; a.Store != "S001" || a.AppliedThrough != 20 {
		t.Fatalf("ack %+v, want S001 through 20", a)
	}
	for _, s := range []string{"S001", "S002", "S003"} {
		want := 10
		if s == "S001" {
			want = 20
		}
		if rs, err := db.Records(ctx, s, "e1", 0, 100); err != nil || len(rs) != want {
			t.Fatalf("%s: %d records, %v; want %d", s, len(rs), err, want)
		}
	}
}

// TestGroupCommitGathersFanIn: 100 stores' batches waiting while the database is locked are
// applied in a few large group commits once it is free, not in groups cut at the few batches a
// short hand-off queue held (fan-in: many stores, small batches, one fsync each group).
func TestGroupCommitGathersFanIn(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	path := filepath.Join(t.TempDir(), "hub.db")
	db, err := store.OpenSQLite(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	const stores = 100
	var msgs []Message
	for i := range stores {
		id := fmt.Sprintf("S%03d", i)
		if err := db.AddStore(ctx, id, "x"); err != nil {
			t.Fatal(err)
		}
		msgs = append(msgs, batchOf(t, id, 1, 5))
	}
	lock, err := sql.Open("sqlite", path+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		t.Fatal(err)
	}
	st := &countingStore{DB: db}
	pub := &acks{}
	const workers = 4
	in := New(st, pub, Options{Workers: workers})
	go in.Run(ctx)
	for _, m := range msgs {
		if !in.Handle(ctx, m) {
			t.Fatal("Handle refused a message within the budget")
		}
	}
	time.Sleep(200 * time.Millisecond) // the workers decode and hand everything on
	if _, err := conn.ExecContext(ctx, "ROLLBACK"); err != nil {
		t.Fatal(err)
	}
	for _, a := range pub.wait(t, stores) {
		if a.AppliedThrough != 5 {
			t.Fatalf("ack %+v, want through 5", a)
		}
	}
	st.mu.Lock()
	groups := append([]int(nil), st.groups...)
	st.mu.Unlock()
	if slices.Max(groups) <= 5*workers {
		t.Fatalf("group commits %v: none larger than %d batches, want the waiting batches together", groups, 5*workers)
	}
}
