package store

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// runExceptionContract: coalescing, recurrence, bounded texts and paging, on either engine.
func runExceptionContract(t *testing.T, open func(t *testing.T) *DB) {
	ctx := context.Background()
	get := func(t *testing.T, s *DB, f ExceptionFilter) []Exception {
		t.Helper()
		ex, err := s.Exceptions(ctx, f)
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	t.Run("coalesce and recur", func(t *testing.T) {
		s := open(t)
		q := Exception{Store: "s1", Reason: ReasonQuarantine, Key: "T1", Recurs: true}
		for i := range 5 {
			q.Detail = fmt.Sprint("capture ", i)
			created, err := s.RaiseException(ctx, q)
			if err != nil || created != (i == 0) {
				t.Fatalf("raise %d = %v, %v", i, created, err)
			}
		}
		ex := get(t, s, ExceptionFilter{Store: "s1"})
		if len(ex) != 1 || ex[0].Count != 5 || ex[0].Detail != "capture 0" || ex[0].State != StateOpen {
			t.Fatalf("after 5 raises: %+v, want one open exception with count 5 and the first detail", ex)
		}
		if _, err := s.UpdateException(ctx, ex[0].ID, StateAcknowledged, "ops", "looking"); err != nil {
			t.Fatal(err)
		}
		q.Detail = "capture 5"
		if _, err := s.RaiseException(ctx, q); err != nil {
			t.Fatal(err)
		}
		if e, _ := s.Exception(ctx, ex[0].ID); e.State != StateAcknowledged || e.Count != 6 || e.Comment != "looking" {
			t.Fatalf("raise while acknowledged: %+v, want it acknowledged with count 6", e)
		}
		if _, err := s.UpdateException(ctx, ex[0].ID, StateResolved, "ops", "profile fixed"); err != nil {
			t.Fatal(err)
		}
		q.Detail = "capture 6"
		if _, err := s.RaiseException(ctx, q); err != nil {
			t.Fatal(err)
		}
		e, _ := s.Exception(ctx, ex[0].ID)
		if e.State != StateOpen || e.Count != 7 || e.Detail != "capture 6" || e.UpdatedBy != "" || !strings.Contains(e.Comment, "resolved") {
			t.Fatalf("a recurring exception raised after resolve: %+v, want it open again with the new detail", e)
		}
		// A condition (not Recurs) stays resolved.
		c := Exception{Store: "s1", Reason: "day_difference", Key: "2024-05-01"}
		s.RaiseException(ctx, c)
		cx := get(t, s, ExceptionFilter{Reason: c.Reason})
		s.UpdateException(ctx, cx[0].ID, StateResolved, "ops", "explained")
		if created, err := s.RaiseException(ctx, c); created || err != nil {
			t.Fatalf("raise of a resolved condition = %v, %v", created, err)
		}
		if e, _ := s.Exception(ctx, cx[0].ID); e.State != StateResolved || e.Count != 1 {
			t.Fatalf("resolved condition raised again: %+v, want it resolved with count 1", e)
		}
	})
	t.Run("bounded text", func(t *testing.T) {
		s := open(t)
		big := strings.Repeat("x", 1<<20)
		raw := "barcode \x00\x01 payload \xff\xfe"
		for _, k := range []string{big + "a", big + "b"} {
			if _, err := s.RaiseException(ctx, Exception{Store: "s1", Reason: ReasonQuarantine, Key: k, Detail: big + raw}); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := s.RaiseException(ctx, Exception{Store: "s1", Reason: ReasonQuarantine, Key: "nul\x00key", Detail: raw}); err != nil {
			t.Fatalf("raise with NUL and invalid UTF-8: %v", err)
		}
		ex := get(t, s, ExceptionFilter{})
		if len(ex) != 3 {
			t.Fatalf("%d exceptions, want 3 (long keys that differ stay apart)", len(ex))
		}
		for _, e := range ex {
			if len(e.Key) > maxKey || len(e.Detail) > 2048+32 {
				t.Errorf("exception %d keeps a %d-byte key and a %d-byte detail", e.ID, len(e.Key), len(e.Detail))
			}
		}
		if want := "barcode \u2400\x01 payload \uFFFD"; ex[0].Detail != want {
			t.Errorf("detail = %q, want %q", ex[0].Detail, want)
		}
		if !strings.Contains(ex[1].Detail, "more bytes") {
			t.Errorf("clipped detail does not say how much was cut: %q", ex[1].Detail[len(ex[1].Detail)-40:])
		}
	})
	t.Run("paging and per store", func(t *testing.T) {
		s := open(t)
		s.RaiseException(ctx, Exception{Store: "s2", Reason: ReasonSpoolAlarm, Key: "disk"})
		for i := range 25 {
			s.RaiseException(ctx, Exception{Store: "s1", Reason: fmt.Sprint("reason", i%2), Key: fmt.Sprint("T", i)})
		}
		seen := map[int64]bool{}
		var before int64
		for page := 0; ; page++ {
			ex := get(t, s, ExceptionFilter{Limit: 10, BeforeID: before})
			for _, e := range ex {
				if seen[e.ID] || before > 0 && e.ID >= before {
					t.Fatalf("page %d repeats or goes back: %d", page, e.ID)
				}
				seen[e.ID] = true
			}
			if len(ex) < 10 {
				break
			}
			before = ex[len(ex)-1].ID
		}
		if len(seen) != 26 {
			t.Fatalf("pages covered %d exceptions, want 26", len(seen))
		}
		ex := get(t, s, ExceptionFilter{PerStore: 3, State: StateOpen})
		var stores []string
		for _, e := range ex {
			stores = append(stores, e.Store+"/"+e.Key)
		}
		if want := "s1/T24 s1/T23 s1/T22 s2/disk"; strings.Join(stores, " ") != want {
			t.Fatalf("PerStore 3 = %v, want %s", stores, want)
		}
		counts, err := s.ExceptionCounts(ctx, StateOpen)
		if err != nil || len(counts) != 3 || counts[0].Reason != "reason0" || counts[0].Exceptions != 13 || counts[1].Raised != 12 || counts[2].Store != "s2" || counts[2].LastSeen.IsZero() {
			t.Fatalf("ExceptionCounts = %+v, %v", counts, err)
		}
	})
	t.Run("open exceptions per store and reason are bounded", func(t *testing.T) {
		s := open(t)
		raise := func(store, key string) {
			t.Helper()
			if _, err := s.RaiseException(ctx, Exception{Store: store, Reason: ReasonQuarantine, Key: key, Detail: "capture " + key, Recurs: true}); err != nil {
				t.Fatal(err)
			}
		}
		for i := range MaxOpenPerReason + 30 {
			raise("s1", fmt.Sprint("T", i))
		}
		raise("s1", "T0") // a known key still coalesces into its own
		raise("s2", "T0")
		ex := get(t, s, ExceptionFilter{Store: "s1"})
		if len(ex) != MaxOpenPerReason+1 || ex[0].Key != MoreKey || ex[0].Count != 30 || !strings.Contains(ex[0].Detail, fmt.Sprint("capture T", MaxOpenPerReason)) {
			t.Fatalf("s1 has %d exceptions, newest %+v; want %d and one %s counting 30", len(ex), ex[0], MaxOpenPerReason+1, MoreKey)
		}
		if e := ex[len(ex)-1]; e.Key != "T0" || e.Count != 2 {
			t.Fatalf("oldest = %+v, want T0 counted twice", e)
		}
		if ex := get(t, s, ExceptionFilter{Store: "s2"}); len(ex) != 1 {
			t.Fatalf("s2 has %+v, want its own exception", ex)
		}
		// Resolving makes room again.
		s.UpdateException(ctx, ex[len(ex)-1].ID, StateResolved, "ops", "")
		raise("s1", "T-new")
		if ex := get(t, s, ExceptionFilter{Store: "s1"}); ex[0].Key != "T-new" {
			t.Fatalf("after a resolve the newest is %q, want T-new", ex[0].Key)
		}
	})
	t.Run("history", func(t *testing.T) {
		s := open(t)
		q := Exception{Store: "s1", Reason: ReasonQuarantine, Key: "T1", Recurs: true}
		for range 3 {
			s.RaiseException(ctx, q)
		}
		e := get(t, s, ExceptionFilter{})[0]
		wantHistory(t, s, e.ID, "hub raised →open") // repeats are counted, not listed
		if _, err := s.UpdateException(ctx, e.ID, StateAcknowledged, "user:ann", "looking"); err != nil {
			t.Fatal(err)
		}
		s.RaiseException(ctx, q) // coalesces into the acknowledged one: no entry
		s.UpdateException(ctx, e.ID, StateResolved, "user:bob", "profile fixed")
		s.RaiseException(ctx, q)
		s.RaiseException(ctx, q)
		wantHistory(t, s, e.ID, "hub raised →open", "user:ann changed open→acknowledged looking",
			"user:bob changed acknowledged→resolved profile fixed", "hub reopened resolved→open")
		h, _ := s.ExceptionHistory(ctx, e.ID)
		if e, _ = s.Exception(ctx, e.ID); !h[0].At.Equal(e.CreatedAt) || h[2].At.Before(h[1].At) || h[0].ExceptionID != e.ID {
			t.Fatalf("history times %v, exception raised at %v", h, e.CreatedAt)
		}
		if h, err := s.ExceptionHistory(ctx, 99999); err != nil || len(h) != 0 {
			t.Fatalf("history of an unknown exception = %v, %v", h, err)
		}
		// A condition raised again after its resolve stays resolved and adds nothing.
		c := Exception{Store: "s1", Reason: "day_difference", Key: "2024-05-01"}
		s.RaiseException(ctx, c)
		cx := get(t, s, ExceptionFilter{Reason: c.Reason})[0]
		s.UpdateException(ctx, cx.ID, StateResolved, "user:ann", "")
		s.RaiseException(ctx, c)
		wantHistory(t, s, cx.ID, "hub raised →open", "user:ann changed open→resolved")
	})
	t.Run("bulk update", func(t *testing.T) {
		s := open(t)
		for _, k := range []string{"a", "b", "c"} {
			s.RaiseException(ctx, Exception{Store: "s1", Reason: ReasonSpoolAlarm, Key: k})
		}
		ex := get(t, s, ExceptionFilter{})
		a, b, c := ex[2].ID, ex[1].ID, ex[0].ID
		_, err := s.UpdateExceptions(ctx, []int64{a, 99999, b}, StateResolved, "user:ann", "done")
		if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "99999") {
			t.Fatalf("bulk update with an unknown id = %v, want ErrNotFound naming it", err)
		}
		if e, _ := s.Exception(ctx, a); e.State != StateOpen {
			t.Fatalf("a failed bulk update changed %+v", e)
		}
		wantHistory(t, s, a, "hub raised →open")
		if _, err := s.UpdateExceptions(ctx, []int64{a}, "closed", "user:ann", ""); err == nil {
			t.Fatal("bulk update to an unknown state succeeded")
		}
		got, err := s.UpdateExceptions(ctx, []int64{b, a, b}, StateAcknowledged, "user:ann", "on it")
		if err != nil || len(got) != 2 || got[0].ID != a || got[1].ID != b || got[1].State != StateAcknowledged || got[1].UpdatedBy != "user:ann" || got[0].Comment != "on it" {
			t.Fatalf("bulk update = %+v, %v; want a and b acknowledged by user:ann", got, err)
		}
		for _, id := range []int64{a, b} {
			wantHistory(t, s, id, "hub raised →open", "user:ann changed open→acknowledged on it")
		}
		wantHistory(t, s, c, "hub raised →open")
		if e, _ := s.Exception(ctx, c); e.State != StateOpen {
			t.Fatalf("bulk update changed an exception it did not name: %+v", e)
		}
	})
	t.Run("filter by ids and age", func(t *testing.T) {
		s := open(t)
		old := time.Now().Add(-48 * time.Hour)
		s.RaiseException(ctx, Exception{Store: "s1", Reason: ReasonSpoolAlarm, Key: "old", CreatedAt: old})
		s.RaiseException(ctx, Exception{Store: "s1", Reason: ReasonSpoolAlarm, Key: "new"})
		s.RaiseException(ctx, Exception{Store: "s2", Reason: ReasonSpoolAlarm, Key: "other"})
		keys := func(f ExceptionFilter) string {
			var k []string
			for _, e := range get(t, s, f) {
				k = append(k, e.Key)
			}
			return strings.Join(k, " ")
		}
		if got := keys(ExceptionFilter{OlderThan: time.Now().Add(-24 * time.Hour)}); got != "old" {
			t.Errorf("older than a day: %q, want old", got)
		}
		all := get(t, s, ExceptionFilter{})
		ids := []int64{all[0].ID, all[2].ID, 99999}
		if got := keys(ExceptionFilter{IDs: ids}); got != "other old" {
			t.Errorf("by ids: %q, want other old", got)
		}
		if got := keys(ExceptionFilter{IDs: ids, Stores: []string{"s1"}}); got != "old" {
			t.Errorf("by ids in s1: %q, want old", got)
		}
		if got := keys(ExceptionFilter{IDs: []int64{}}); got != "" {
			t.Errorf("no ids: %q, want none", got)
		}
	})
	t.Run("concurrent raisers coalesce", func(t *testing.T) {
		s := open(t)
		raiseConcurrently(t, []*DB{s, s, s, s}, 25)
	})
}

// wantHistory checks an exception's history, one "actor action from→to comment" per entry.
func wantHistory(t *testing.T, s *DB, id int64, want ...string) {
	t.Helper()
	h, err := s.ExceptionHistory(context.Background(), id)
	var got []string
	for _, e := range h {
		got = append(got, strings.TrimSpace(fmt.Sprintf("%s %s %s→%s %s", e.Actor, e.Action, e.From, e.To, e.Comment)))
		if e.At.IsZero() {
			t.Errorf("history entry %+v has no time", e)
		}
	}
	if err != nil || strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("history of exception %d =\n%s\n%v; want\n%s", id, strings.Join(got, "\n"), err, strings.Join(want, "\n"))
	}
}

// raiseConcurrently has each store raise the same recurring exception n times at once and
// checks that they coalesced into one with every raise counted.
func raiseConcurrently(t *testing.T, stores []*DB, n int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	var mu sync.Mutex
	created := 0
	for _, s := range stores {
		wg.Go(func() {
			for range n {
				c, err := s.RaiseException(ctx, Exception{Store: "s1", Reason: ReasonQuarantine, Key: "T1", Recurs: true})
				if err != nil {
					t.Error(err)
					return
				}
				if c {
					mu.Lock()
					created++
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	ex, err := stores[0].Exceptions(ctx, ExceptionFilter{})
	if err != nil || len(ex) != 1 || ex[0].Count != int64(len(stores)*n) || created != 1 {
		t.Fatalf("after %d concurrent raises: %+v, %v, created %d times; want one exception counting all, created once", len(stores)*n, ex, err, created)
	}
}

func TestSQLiteExceptionContract(t *testing.T) {
	runExceptionContract(t, func(t *testing.T) *DB { return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")) })
}

func TestPostgresExceptionContract(t *testing.T) {
	runExceptionContract(t, func(t *testing.T) *DB { return openPostgresT(t, pgSchema(t)) })
}

// Two pools on one schema stand for two hub replicas raising the same exception at once.
func TestPostgresConcurrentRaise(t *testing.T) {
	schema := pgSchema(t)
	a, b := openPostgresT(t, schema), openPostgresT(t, schema)
	raiseConcurrently(t, []*DB{a, b, a, b, a, b}, 30)
}

func TestBuildDaySumOverflow(t *testing.T) {
	d := buildDay("s1", testDate, []dayRow{{"T1", "sale", "1", 1 << 62}, {"T1", "sale", "2", 1 << 62}, {"T1", "sale", "3", -5}})
	if !d.SumOverflow || d.Kinds[0].Total != 1<<62-5 || d.Kinds[0].Count != 3 {
		t.Fatalf("Day = %+v, want the overflow flagged and the total not wrapped", d)
	}
	if d := buildDay("s1", testDate, []dayRow{{"T1", "sale", "1", -1 << 62}, {"T1", "sale", "2", -1 << 62}, {"T1", "sale", "3", 0}}); d.SumOverflow {
		t.Fatalf("-2^63 is an int64: %+v", d)
	}
}
