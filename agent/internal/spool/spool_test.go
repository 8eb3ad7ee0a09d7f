package spool

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

const testStore = "store-0042"

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu sync.Mutex
	t  time.Time
}

func newTestClock() *testClock {
	return &testClock{t: time.Date(2026, 3, 1, 9, 0, 0, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *testClock) Set(t time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = t
}

func sale(terminal string, receipt int) protocol.Record {
	return protocol.Record{
		Kind:         protocol.KindSale,
		Terminal:     terminal,
		Receipt:      strconv.Itoa(receipt),
		BusinessDate: "2026-03-01",
		Currency:     "USD",
		Lines:        []protocol.Line{{SKU: "4011", Description: "bananas <&>", Quantity: "1.25", UnitPrice: 69, Amount: 86}},
		Total:        86,
		Tenders:      []protocol.Tender{{Type: protocol.TenderCard, Amount: 86, Card: &protocol.Card{Brand: "visa", Last4: "1234"}}},
	}
}

func openTest(t testing.TB, path string, opts Options) *Spool {
	t.Helper()
	if opts.Store == "" {
		opts.Store = testStore
	}
	s, err := Open(path, opts)
	if err != nil {
		t.Fatalf("Open(%s): %v", path, err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

func mustCommit(t testing.TB, s *Spool, c Capture) []protocol.Record {
	t.Helper()
	recs, err := s.Commit(context.Background(), c)
	if err != nil {
		t.Fatalf("Commit: %v", err)
	}
	return recs
}

// checkContiguous reads the whole spool and checks seqs from..to, epoch and hashes.
func checkContiguous(t *testing.T, s *Spool, from, to uint64) []protocol.Record {
	t.Helper()
	recs, err := s.Read(from, int(to-from+1)+10)
	if err != nil {
		t.Fatalf("Read: %v", err)
	}
	if uint64(len(recs)) != to-from+1 {
		t.Fatalf("Read(%d) returned %d records, want %d", from, len(recs), to-from+1)
	}
	for i, r := range recs {
		if want := from + uint64(i); r.Seq != want {
			t.Fatalf("record %d has seq %d, want %d", i, r.Seq, want)
		}
		if r.Epoch != s.Epoch() || r.Store != testStore {
			t.Fatalf("seq %d: epoch %q store %q, want %q %q", r.Seq, r.Epoch, r.Store, s.Epoch(), testStore)
		}
		if err := r.Validate(); err != nil {
			t.Fatalf("seq %d does not validate: %v", r.Seq, err)
		}
	}
	return recs
}

func TestCommitConcurrentIsContiguousAndGrouped(t *testing.T) {
	const goroutines, perG = 50, 200
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), Options{})

	seqs := make([][]uint64, goroutines)
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Add(1)
		go func() {
			defer wg.Done()
			term := fmt.Sprintf("t%02d", g)
			for i := range perG {
				recs, err := s.Commit(context.Background(), Capture{
					Source:  term,
					Records: []protocol.Record{sale(term, i+1)},
					Offset:  []byte(strconv.Itoa(i + 1)),
				})
				if err != nil {
					errs <- err
					return
				}
				seqs[g] = append(seqs[g], recs[0].Seq)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("Commit: %v", err)
	}

	const total = goroutines * perG
	seen := make(map[uint64]bool, total)
	for g, ss := range seqs {
		for i, q := range ss {
			if seen[q] {
				t.Fatalf("seq %d returned twice", q)
			}
			seen[q] = true
			if i > 0 && q <= ss[i-1] {
				t.Fatalf("goroutine %d: seq %d after %d", g, q, ss[i-1])
			}
		}
	}
	if got := s.LastSeq(); got != total {
		t.Fatalf("LastSeq = %d, want %d", got, total)
	}
	recs := checkContiguous(t, s, 1, total)
	perTerm := map[string]int{}
	for _, r := range recs {
		perTerm[r.Terminal]++
		if want := strconv.Itoa(perTerm[r.Terminal]); r.Receipt != want {
			t.Fatalf("seq %d: terminal %s receipt %s, want %s (order within a source lost)", r.Seq, r.Terminal, r.Receipt, want)
		}
	}
	for g := range goroutines {
		term := fmt.Sprintf("t%02d", g)
		off, err := s.Offset(term)
		if err != nil || string(off) != strconv.Itoa(perG) {
			t.Fatalf("Offset(%s) = %q, %v; want %d", term, off, err, perG)
		}
	}
	tx := s.Stats().Transactions
	t.Logf("%d commits in %d transactions (%.1f per fsync)", total, tx, float64(total)/float64(tx))
	if tx >= total {
		t.Fatalf("%d transactions for %d concurrent commits: group commit did not batch", tx, total)
	}
}

func TestReopenRestoresState(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	clock := newTestClock()
	s := openTest(t, path, Options{Now: clock.Now})
	epoch := s.Epoch()
	if len(epoch) != 32 {
		t.Fatalf("Epoch() = %q, want 32 hex digits", epoch)
	}
	mustCommit(t, s, Capture{Source: "t1", Records: []protocol.Record{sale("t1", 1), sale("t1", 2)}, Offset: []byte("off-2")})
	clock.Set(clock.Now().Add(time.Minute))
	mustCommit(t, s, Capture{Source: "t2", Records: []protocol.Record{sale("t2", 1)}, Offset: []byte("off-1"),
		Quarantine: []protocol.Quarantined{{Terminal: "t2", Reason: "unknown line", Excerpt: "#### garbage"}}})
	mustCommit(t, s, Capture{Source: "t1", Quarantine: []protocol.Quarantined{{ID: "mine", Terminal: "t1", Reason: "bad total"}}})
	if err := s.Ack(epoch, 2); err != nil {
		t.Fatalf("Ack: %v", err)
	}
	before := s.Stats()
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	s2 := openTest(t, path, Options{Now: clock.Now})
	after := s2.Stats()
	if after.Epoch != epoch || after.LastSeq != 3 || after.LastAck != 2 || after.Backlog != 1 || after.QuarantineCount != 2 {
		t.Fatalf("after reopen: %+v", after)
	}
	if !after.OldestUnsent.Equal(clock.Now()) || !after.OldestUnsent.Equal(before.OldestUnsent) {
		t.Fatalf("OldestUnsent = %v, before close %v, want %v", after.OldestUnsent, before.OldestUnsent, clock.Now())
	}
	if len(after.LastCapture) != 2 || !after.LastCapture["t2"].Equal(clock.Now()) {
		t.Fatalf("LastCapture = %v", after.LastCapture)
	}
	if len(after.Alarms) != 0 {
		t.Fatalf("Alarms = %v, want none", after.Alarms)
	}
	for src, want := range map[string]string{"t1": "off-2", "t2": "off-1", "never": ""} {
		got, err := s2.Offset(src)
		if err != nil || string(got) != want {
			t.Errorf("Offset(%s) = %q, %v; want %q", src, got, err, want)
		}
	}
	q, err := s2.Quarantined(10)
	if err != nil || len(q) != 2 || q[0].ID != "mine" || !strings.HasPrefix(q[1].ID, epoch[:8]) || q[1].At.IsZero() {
		t.Fatalf("Quarantined = %+v, %v; want newest first with assigned id and time", q, err)
	}
	recs := mustCommit(t, s2, Capture{Source: "t1", Records: []protocol.Record{sale("t1", 3)}})
	if recs[0].Seq != 4 {
		t.Fatalf("first seq after reopen = %d, want 4", recs[0].Seq)
	}
	checkContiguous(t, s2, 1, 4)
}

func TestCommitStampsAndDoesNotAlias(t *testing.T) {
	clock := newTestClock()
	clock.Set(clock.Now().Add(123456789 * time.Nanosecond))
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), Options{Now: clock.Now})
	in := []protocol.Record{sale("t1", 1)}
	out := mustCommit(t, s, Capture{Source: "t1", Records: in})
	if in[0].Seq != 0 || in[0].Hash != "" {
		t.Fatalf("Commit modified the caller's records: %+v", in[0])
	}
	r := out[0]
	if r.Store != testStore || r.Epoch != s.Epoch() || r.Seq != 1 || r.Hash != r.ComputeHash() {
		t.Fatalf("stamped record = %+v", r)
	}
	if want := clock.Now().Truncate(time.Microsecond); !r.CapturedAt.Equal(want) || r.CapturedAt.Location() != time.UTC {
		t.Fatalf("CapturedAt = %v, want %v in UTC", r.CapturedAt, want)
	}
	raw, err := s.ReadRaw(1, 1)
	if err != nil || len(raw) != 1 || raw[0].Seq != 1 || !strings.Contains(string(raw[0].JSON), r.Hash) {
		t.Fatalf("ReadRaw = %+v, %v", raw, err)
	}
}

func TestCommitRejectsInvalidCapture(t *testing.T) {
	bad := sale("t1", 2)
	bad.BusinessDate = "yesterday"
	tests := []struct {
		name string
		c    Capture
	}{
		{"invalid record", Capture{Source: "t1", Records: []protocol.Record{sale("t1", 1), bad}, Offset: []byte("o")}},
		{"offset without source", Capture{Offset: []byte("o")}},
		{"source too long", Capture{Source: strings.Repeat("x", maxSourceLen+1), Records: []protocol.Record{sale("t1", 1)}}},
	}
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), Options{})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Commit(context.Background(), tt.c)
			if !errors.Is(err, ErrInvalidCapture) {
				t.Fatalf("Commit = %v, want ErrInvalidCapture", err)
			}
			if s.LastSeq() != 0 {
				t.Fatalf("LastSeq = %d after a rejected capture", s.LastSeq())
			}
			if off, _ := s.Offset(tt.c.Source); off != nil {
				t.Fatalf("offset %q written for a rejected capture", off)
			}
		})
	}
	if tx := s.Stats().Transactions; tx != 0 {
		t.Fatalf("%d transactions for rejected captures", tx)
	}
}

func TestCommitContextAndClose(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), Options{})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := s.Commit(ctx, Capture{Source: "t1", Records: []protocol.Record{sale("t1", 1)}}); !errors.Is(err, context.Canceled) {
		t.Fatalf("Commit with cancelled ctx = %v, want context.Canceled", err)
	}
	if recs, err := s.Commit(context.Background(), Capture{Source: "t1"}); err != nil || recs != nil || s.Stats().Transactions != 0 {
		t.Fatalf("empty capture = %v, %v, want no-op", recs, err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	if err := s.Close(); err != nil {
		t.Fatalf("second Close: %v", err)
	}
	if _, err := s.Commit(context.Background(), Capture{Source: "t1", Records: []protocol.Record{sale("t1", 1)}}); !errors.Is(err, ErrClosed) {
		t.Fatalf("Commit after Close = %v, want ErrClosed", err)
	}
}

func TestAck(t *testing.T) {
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openTest(t, path, Options{})
	for i := range 5 {
		mustCommit(t, s, Capture{Source: "t1", Records: []protocol.Record{sale("t1", i+1)}})
	}
	tests := []struct {
		name    string
		epoch   string
		through uint64
		wantErr error
		wantAck uint64
	}{
		{"forward", s.Epoch(), 3, nil, 3},
		{"wrong epoch", "00000000000000000000000000000000", 5, ErrEpochMismatch, 3},
		{"backwards is a no-op", s.Epoch(), 1, nil, 3},
		{"same is a no-op", s.Epoch(), 3, nil, 3},
		{"beyond last seq", s.Epoch(), 6, ErrAckBeyondLast, 3},
		{"to the end", s.Epoch(), 5, nil, 5},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := s.Ack(tt.epoch, tt.through)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Ack(%d) = %v, want %v", tt.through, err, tt.wantErr)
			}
			if got := s.LastAck(); got != tt.wantAck {
				t.Fatalf("LastAck = %d, want %d", got, tt.wantAck)
			}
		})
	}
	st := s.Stats()
	if st.Backlog != 0 || !st.OldestUnsent.IsZero() {
		t.Fatalf("after full ack: backlog %d, oldest unsent %v", st.Backlog, st.OldestUnsent)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2 := openTest(t, path, Options{})
	if s2.LastAck() != 5 {
		t.Fatalf("LastAck after reopen = %d, want 5", s2.LastAck())
	}
}

func TestOldestUnsent(t *testing.T) {
	clock := newTestClock()
	t0 := clock.Now()
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), Options{Now: clock.Now})
	steps := []struct {
		name    string
		do      func() error
		want    time.Time
		backlog uint64
	}{
		{"empty", func() error { return nil }, time.Time{}, 0},
		{"first capture", func() error {
			_, err := s.Commit(context.Background(), Capture{Source: "t1", Records: []protocol.Record{sale("t1", 1)}})
			return err
		}, t0, 1},
		{"later capture keeps the oldest", func() error {
			clock.Set(t0.Add(time.Hour))
			_, err := s.Commit(context.Background(), Capture{Source: "t1", Records: []protocol.Record{sale("t1", 2)}})
			return err
		}, t0, 2},
		{"ack of the first moves it", func() error { return s.Ack(s.Epoch(), 1) }, t0.Add(time.Hour), 1},
		{"ack of all clears it", func() error { return s.Ack(s.Epoch(), 2) }, time.Time{}, 0},
		{"capture after drained", func() error {
			clock.Set(t0.Add(2 * time.Hour))
			_, err := s.Commit(context.Background(), Capture{Source: "t1", Records: []protocol.Record{sale("t1", 3)}})
			return err
		}, t0.Add(2 * time.Hour), 1},
	}
	for _, st := range steps {
		if err := st.do(); err != nil {
			t.Fatalf("%s: %v", st.name, err)
		}
		got := s.Stats()
		if !got.OldestUnsent.Equal(st.want) || got.Backlog != st.backlog {
			t.Fatalf("%s: OldestUnsent %v backlog %d, want %v %d", st.name, got.OldestUnsent, got.Backlog, st.want, st.backlog)
		}
	}
}

func TestPurge(t *testing.T) {
	day := 24 * time.Hour
	// Records 1-3 captured at day 0, 4-6 at day 10, 7-9 at day 40 (retention 35 days).
	tests := []struct {
		name      string
		ackTo     uint64
		now       time.Duration // since day 0
		wantCount int
		wantFirst uint64
	}{
		{"nothing acked", 0, 100 * day, 0, 1},
		{"acked but young", 9, 20 * day, 0, 1},
		{"acked and old: part", 9, 40 * day, 3, 4},
		{"old but only partly acked", 5, 100 * day, 5, 6},
		{"all old and acked", 9, 100 * day, 9, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "spool.db")
			clock := newTestClock()
			t0 := clock.Now()
			s := openTest(t, path, Options{Now: clock.Now})
			for i, at := range []time.Duration{0, 10 * day, 40 * day} {
				clock.Set(t0.Add(at))
				mustCommit(t, s, Capture{Source: "t1", Records: []protocol.Record{sale("t1", 3*i+1), sale("t1", 3*i+2), sale("t1", 3*i+3)}})
			}
			if tt.ackTo > 0 {
				if err := s.Ack(s.Epoch(), tt.ackTo); err != nil {
					t.Fatal(err)
				}
			}
			clock.Set(t0.Add(tt.now))
			n, err := s.Purge()
			if err != nil || n != tt.wantCount {
				t.Fatalf("Purge = %d, %v; want %d", n, err, tt.wantCount)
			}
			recs, err := s.Read(0, 100)
			if err != nil {
				t.Fatal(err)
			}
			if tt.wantFirst == 0 {
				if len(recs) != 0 {
					t.Fatalf("%d records left, want none", len(recs))
				}
			} else if recs[0].Seq != tt.wantFirst || recs[len(recs)-1].Seq != 9 {
				t.Fatalf("records left %d..%d, want %d..9", recs[0].Seq, recs[len(recs)-1].Seq, tt.wantFirst)
			}
			// The purged file still passes the consistency check and keeps counting.
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s2 := openTest(t, path, Options{Now: clock.Now})
			if st := s2.Stats(); len(st.Alarms) != 0 || st.LastSeq != 9 || st.Epoch != s.Epoch() {
				t.Fatalf("after purge and reopen: %+v", st)
			}
			if recs := mustCommit(t, s2, Capture{Source: "t1", Records: []protocol.Record{sale("t1", 10)}}); recs[0].Seq != 10 {
				t.Fatalf("seq after purge = %d, want 10", recs[0].Seq)
			}
		})
	}
}

func TestPurgeStopsAtClockJump(t *testing.T) {
	// The clock jumped back between seq 1 and seq 2: seq 1 looks young, seq 2 old. Purge only
	// ever removes a prefix, so neither goes and the stored seqs stay contiguous.
	clock := newTestClock()
	t0 := clock.Now()
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), Options{Now: clock.Now})
	clock.Set(t0.Add(40 * 24 * time.Hour))
	mustCommit(t, s, Capture{Source: "t1", Records: []protocol.Record{sale("t1", 1)}})
	clock.Set(t0)
	mustCommit(t, s, Capture{Source: "t1", Records: []protocol.Record{sale("t1", 2)}})
	if err := s.Ack(s.Epoch(), 2); err != nil {
		t.Fatal(err)
	}
	clock.Set(t0.Add(50 * 24 * time.Hour))
	if n, err := s.Purge(); err != nil || n != 0 {
		t.Fatalf("Purge = %d, %v; want 0", n, err)
	}
	checkContiguous(t, s, 1, 2)
}

func TestNotify(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), Options{})
	pending := func() bool {
		select {
		case <-s.Notify():
			return true
		default:
			return false
		}
	}
	mustCommit(t, s, Capture{Source: "t1", Offset: []byte("x")})
	if pending() {
		t.Fatal("notified after a commit without records")
	}
	mustCommit(t, s, Capture{Source: "t1", Records: []protocol.Record{sale("t1", 1)}})
	mustCommit(t, s, Capture{Source: "t1", Records: []protocol.Record{sale("t1", 2)}})
	if !pending() {
		t.Fatal("no notification after commits with records")
	}
	if pending() {
		t.Fatal("notifications not coalesced")
	}
}

func TestSizeAlarmNeverRefuses(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), Options{MaxSize: 256 << 10})
	if al := s.Stats().Alarms; len(al) != 0 {
		t.Fatalf("alarms on a new spool: %v", al)
	}
	recs := make([]protocol.Record, 100)
	for i := range recs {
		recs[i] = sale("t1", i)
	}
	for range 20 { // ~ 2000 records, several times MaxSize
		mustCommit(t, s, Capture{Source: "t1", Records: recs})
	}
	st := s.Stats()
	if st.SizeBytes <= 256<<10 {
		t.Fatalf("SizeBytes = %d, expected the test to exceed MaxSize", st.SizeBytes)
	}
	if len(st.Alarms) != 1 || !strings.HasPrefix(st.Alarms[0], "spool at ") || !strings.HasSuffix(st.Alarms[0], "% of max_size") {
		t.Fatalf("Alarms = %q, want one size alarm", st.Alarms)
	}
	if st.LastSeq != 2000 {
		t.Fatalf("LastSeq = %d: captures were refused", st.LastSeq)
	}
}

// TestSizeAlarmFollowsUsedSpace: bbolt grows the file to its mmap size (max_size when that is
// below 64 MiB) at the first commit; a few records must not read as a full spool.
func TestSizeAlarmFollowsUsedSpace(t *testing.T) {
	s := openTest(t, filepath.Join(t.TempDir(), "spool.db"), Options{MaxSize: 2 << 20})
	recs := make([]protocol.Record, 20)
	for i := range recs {
		recs[i] = sale("t1", i)
	}
	mustCommit(t, s, Capture{Source: "t1", Records: recs})
	st := s.Stats()
	if len(st.Alarms) != 0 {
		t.Fatalf("20 records (file %d bytes, used %d) alarm with MaxSize 2MiB: %q", st.SizeBytes, st.UsedBytes, st.Alarms)
	}
	if st.UsedBytes <= 0 || st.UsedBytes > st.SizeBytes || st.MaxBytes != 2<<20 {
		t.Fatalf("UsedBytes = %d, SizeBytes = %d, MaxBytes = %d", st.UsedBytes, st.SizeBytes, st.MaxBytes)
	}
}

func TestCommitErrorIsFatal(t *testing.T) {
	var files []*os.File
	var mu sync.Mutex
	testOpenFile = func(name string, flag int, perm os.FileMode) (*os.File, error) {
		f, err := os.OpenFile(name, flag, perm)
		mu.Lock()
		files = append(files, f)
		mu.Unlock()
		return f, err
	}
	t.Cleanup(func() { testOpenFile = nil })
	path := filepath.Join(t.TempDir(), "spool.db")
	s := openTest(t, path, Options{})
	mustCommit(t, s, Capture{Source: "t1", Records: []protocol.Record{sale("t1", 1)}, Offset: []byte("1")})

	// Pull the file out from under bbolt: the next commit's write fails.
	mu.Lock()
	for _, f := range files {
		_ = f.Close()
	}
	mu.Unlock()
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = s.Commit(context.Background(), Capture{Source: "t1", Records: []protocol.Record{sale("t1", i+2)}, Offset: []byte("x")})
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if !errors.Is(err, ErrFailed) {
			t.Fatalf("waiter %d: Commit = %v, want ErrFailed", i, err)
		}
	}
	if _, err := s.Commit(context.Background(), Capture{Source: "t1", Records: []protocol.Record{sale("t1", 99)}}); !errors.Is(err, ErrFailed) {
		t.Fatalf("Commit after failure = %v, want ErrFailed", err)
	}
	if err := s.Ack(s.Epoch(), 1); !errors.Is(err, ErrFailed) {
		t.Fatalf("Ack after failure = %v, want ErrFailed", err)
	}
	if _, err := s.Purge(); !errors.Is(err, ErrFailed) {
		t.Fatalf("Purge after failure = %v, want ErrFailed", err)
	}
	if st := s.Stats(); !st.Failed || st.LastSeq != 1 {
		t.Fatalf("Stats after failure: %+v", st)
	}
	_ = s.Close()
	testOpenFile = nil

	// The restarted process finds what was captured before the failure.
	s2 := openTest(t, path, Options{})
	if st := s2.Stats(); st.LastSeq != 1 || len(st.Alarms) != 0 {
		t.Fatalf("after restart: %+v", st)
	}
	if off, _ := s2.Offset("t1"); string(off) != "1" {
		t.Fatalf("offset after restart = %q, want 1", off)
	}
}
