package posting

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/erp"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// fakeERP holds postings by key. failAfterPost makes Post store the posting and then return a
// retryable error (the ERP succeeded, the hub never heard): the next round must Find it.
type fakeERP struct {
	mu            sync.Mutex
	held          map[string]string
	posts         map[string]int
	failAfterPost map[string]bool
	reject        map[string]bool
	down          bool
	block         chan struct{}
}

func newFake() *fakeERP {
	return &fakeERP{held: map[string]string{}, posts: map[string]int{}, failAfterPost: map[string]bool{}, reject: map[string]bool{}}
}

func (f *fakeERP) Post(ctx context.Context, p erp.Posting) (string, error) {
	if f.block != nil {
		select {
		case <-f.block:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return "", errors.New("connection refused")
	}
	if f.reject[p.Key] {
		return "", erp.Reject(errors.New("unknown SKU X"))
	}
	f.posts[p.Key]++
	ref := "doc/" + p.Key
	f.held[p.Key] = ref
	if f.failAfterPost[p.Key] {
		delete(f.failAfterPost, p.Key)
		return "", errors.New("timeout reading response")
	}
	return ref, nil
}

func (f *fakeERP) Find(_ context.Context, key string) (string, bool, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.down {
		return "", false, errors.New("connection refused")
	}
	r, ok := f.held[key]
	return r, ok, nil
}

// testStore is the hub's store as these tests use it: the Poster's Outbox, and what feeds and
// inspects it.
type testStore interface {
	Outbox
	ApplyBatch(ctx context.Context, store, epoch string, recs []protocol.Record) (store.ApplyResult, error)
	Postings(ctx context.Context, f store.PostingFilter) ([]store.Posting, error)
	RepostPosting(ctx context.Context, id int64) error
	Exceptions(ctx context.Context, f store.ExceptionFilter) ([]store.Exception, error)
}

func openStore(t *testing.T) testStore {
	t.Helper()
	s, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.AddStore(context.Background(), "S1", "x"); err != nil {
		t.Fatal(err)
	}
	return s
}

func apply(t *testing.T, s testStore, from, to uint64) {
	t.Helper()
	var b []protocol.Record
	for i := from; i <= to; i++ {
		r := protocol.Record{Kind: protocol.KindSale, Store: "S1", Terminal: "T1", Receipt: strconv.FormatUint(i, 10),
			BusinessDate: "2026-11-26", Total: 100, Epoch: "e", Seq: i,
			Lines: []protocol.Line{{SKU: "A", Quantity: "1", UnitPrice: 100, Amount: 100}}}
		r.Seal()
		b = append(b, r)
	}
	if _, err := s.ApplyBatch(context.Background(), "S1", "e", b); err != nil {
		t.Fatal(err)
	}
}

func key(i int) string { return fmt.Sprintf("S1|T1|2026-11-26|%d|sale", i) }

func drain(t *testing.T, p *Poster) {
	t.Helper()
	for range 50 {
		n, err := p.Once(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			return
		}
	}
	t.Fatal("outbox did not drain")
}

func states(t *testing.T, s testStore) map[string]int {
	t.Helper()
	ps, err := s.Postings(context.Background(), store.PostingFilter{})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]int{}
	for _, p := range ps {
		m[p.State]++
	}
	return m
}

func TestExactlyOnceAcrossLostResponses(t *testing.T) {
	s := openStore(t)
	apply(t, s, 1, 10)
	f := newFake()
	f.failAfterPost[key(3)] = true
	f.failAfterPost[key(7)] = true
	f.reject[key(5)] = true
	p := New(s, f, Options{MinBackoff: time.Millisecond, MaxBackoff: 2 * time.Millisecond})
	drain(t, p)
	time.Sleep(10 * time.Millisecond) // let the retries fall due
	drain(t, p)
	for i := 1; i <= 10; i++ {
		want := 1
		if i == 5 {
			want = 0
		}
		if f.posts[key(i)] != want {
			t.Errorf("ERP got %d posts of %s, want %d", f.posts[key(i)], key(i), want)
		}
	}
	if got := states(t, s); got[store.PostingDone] != 9 || got[store.PostingRejected] != 1 {
		t.Fatalf("posting states = %v, want 9 done 1 rejected", got)
	}
	ex, _ := s.Exceptions(context.Background(), store.ExceptionFilter{Reason: store.ReasonERPRejected})
	if len(ex) != 1 || ex[0].Key != key(5) {
		t.Fatalf("erp_rejected = %+v", ex)
	}
	// Re-post after the master data is fixed.
	delete(f.reject, key(5))
	ps, _ := s.Postings(context.Background(), store.PostingFilter{Key: key(5)})
	if err := s.RepostPosting(context.Background(), ps[0].ID); err != nil {
		t.Fatal(err)
	}
	drain(t, p)
	if f.posts[key(5)] != 1 || states(t, s)[store.PostingDone] != 10 {
		t.Fatalf("after repost: posts %d, states %v", f.posts[key(5)], states(t, s))
	}
}

func TestERPDownRetriesWithBackoff(t *testing.T) {
	s := openStore(t)
	apply(t, s, 1, 3)
	f := newFake()
	f.down = true
	p := New(s, f, Options{MinBackoff: 50 * time.Millisecond, MaxBackoff: time.Second})
	if n, err := p.Once(context.Background()); err != nil || n != 3 {
		t.Fatalf("Once = %d, %v", n, err)
	}
	if n, _ := p.Once(context.Background()); n != 0 {
		t.Fatalf("Once before backoff = %d, want 0", n)
	}
	ps, _ := s.Postings(context.Background(), store.PostingFilter{})
	for _, x := range ps {
		if x.Attempts != 1 || x.LastError == "" || x.State != store.PostingPending {
			t.Fatalf("posting after failure = %+v", x)
		}
	}
	f.mu.Lock()
	f.down = false
	f.mu.Unlock()
	time.Sleep(80 * time.Millisecond)
	drain(t, p)
	if got := states(t, s); got[store.PostingDone] != 3 {
		t.Fatalf("states = %v", got)
	}
}

// A blocked ERP holds the poster, never ingest.
func TestSlowERPDoesNotBlockIngest(t *testing.T) {
	s := openStore(t)
	apply(t, s, 1, 2)
	f := newFake()
	f.block = make(chan struct{})
	p := New(s, f, Options{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { p.Run(ctx); close(done) }()
	time.Sleep(50 * time.Millisecond)
	start := time.Now()
	apply(t, s, 3, 500)
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("ingest took %v while the ERP hung", d)
	}
	close(f.block)
	deadline := time.Now().Add(10 * time.Second)
	for states(t, s)[store.PostingDone] != 500 {
		if time.Now().After(deadline) {
			t.Fatalf("states = %v", states(t, s))
		}
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestBackoff(t *testing.T) {
	for _, tc := range []struct {
		attempts int
		lo, hi   time.Duration
	}{{0, time.Second, 1600 * time.Millisecond}, {3, 8 * time.Second, 13 * time.Second}, {30, 8 * time.Minute, 12 * time.Minute}} {
		for range 20 {
			if d := Backoff(tc.attempts, 2*time.Second/2, 10*time.Minute); d < tc.lo*8/10 || d > tc.hi {
				t.Errorf("Backoff(%d) = %v, want within [%v, %v]", tc.attempts, d, tc.lo*8/10, tc.hi)
			}
		}
	}
}

func TestRateLimit(t *testing.T) {
	l := limiter{rate: 100}
	start := time.Now()
	for range 21 {
		if err := l.wait(context.Background(), 1); err != nil {
			t.Fatal(err)
		}
	}
	if d := time.Since(start); d < 180*time.Millisecond || d > 2*time.Second {
		t.Fatalf("21 waits at 100/s took %v, want about 200ms", d)
	}
}
