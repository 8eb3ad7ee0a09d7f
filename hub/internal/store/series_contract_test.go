package store

import (
	"context"
	"path/filepath"
	"reflect"
	"testing"
	"time"
)

// runSeriesContract: minute and hour buckets merge, read back in order, scoped and pruned.
func runSeriesContract(t *testing.T, open func(t *testing.T) *DB) {
	ctx := context.Background()
	s := open(t)
	t0 := time.Date(2024, 5, 1, 10, 58, 0, 0, time.UTC)
	add := func(ps ...SeriesPoint) {
		t.Helper()
		if err := s.AddSeries(ctx, ps); err != nil {
			t.Fatal(err)
		}
	}
	p := func(store, metric string, at time.Time, sum, count, max, last int64) SeriesPoint {
		return SeriesPoint{Store: store, Metric: metric, Bucket: at, Sum: sum, Count: count, Max: max, Last: last}
	}
	add(p("s1", "backlog", t0.Add(20*time.Second), 10, 1, 10, 10), p("s1", "throughput", t0, 5, 1, 5, 5))
	add(p("s1", "backlog", t0.Add(40*time.Second), 30, 2, 25, 5), // the same minute: merged
		p("s1", "backlog", t0.Add(time.Minute), 7, 1, 7, 7),
		p("s1", "backlog", t0.Add(2*time.Minute), 3, 1, 3, 3), // the next hour
		p("s2", "backlog", t0, 99, 1, 99, 99))
	get := func(store, metric string, res time.Duration, from, to time.Time) []SeriesPoint {
		t.Helper()
		got, err := s.Series(ctx, store, metric, res, from, to)
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	day := t0.Truncate(24 * time.Hour)
	want := []SeriesPoint{p("s1", "backlog", t0, 40, 3, 25, 5), p("s1", "backlog", t0.Add(time.Minute), 7, 1, 7, 7),
		p("s1", "backlog", t0.Add(2*time.Minute), 3, 1, 3, 3)}
	if got := get("s1", "backlog", SeriesMinute, day, day.Add(24*time.Hour)); !reflect.DeepEqual(got, want) {
		t.Fatalf("minute buckets = %+v\nwant %+v", got, want)
	}
	h10, h11 := time.Date(2024, 5, 1, 10, 0, 0, 0, time.UTC), time.Date(2024, 5, 1, 11, 0, 0, 0, time.UTC)
	want = []SeriesPoint{p("s1", "backlog", h10, 47, 4, 25, 7), p("s1", "backlog", h11, 3, 1, 3, 3)}
	if got := get("s1", "backlog", SeriesHour, day, day.Add(24*time.Hour)); !reflect.DeepEqual(got, want) {
		t.Fatalf("hour buckets = %+v\nwant %+v", got, want)
	}
	if got := get("s1", "backlog", SeriesMinute, t0.Add(time.Minute), t0.Add(2*time.Minute)); len(got) != 1 || got[0].Sum != 7 {
		t.Fatalf("range [from, to) = %+v, want the one bucket at from", got)
	}
	if got := get("s1", "latency", SeriesMinute, day, day.Add(24*time.Hour)); len(got) != 0 {
		t.Fatalf("a metric never recorded = %+v, want none", got)
	}
	if got := get("s2", "backlog", SeriesMinute, day, day.Add(24*time.Hour)); len(got) != 1 || got[0].Sum != 99 {
		t.Fatalf("s2 = %+v, want only its own bucket", got)
	}
	n, err := s.PruneSeries(ctx, t0.Add(time.Minute), h11)
	if err != nil || n != 6 {
		t.Fatalf("prune = %d, %v; want 6 (the 10:58 minutes and 10:00 hours of s1 backlog and throughput, and s2)", n, err)
	}
	if got := get("s1", "backlog", SeriesMinute, day, day.Add(24*time.Hour)); len(got) != 2 || !got[0].Bucket.Equal(t0.Add(time.Minute)) {
		t.Fatalf("minutes after prune = %+v, want 10:59 and 11:00", got)
	}
	if got := get("s1", "backlog", SeriesHour, day, day.Add(24*time.Hour)); len(got) != 1 || !got[0].Bucket.Equal(h11) {
		t.Fatalf("hours after prune = %+v, want 11:00", got)
	}
}

func TestSQLiteSeriesContract(t *testing.T) {
	runSeriesContract(t, func(t *testing.T) *DB { return openSQLiteT(t, filepath.Join(t.TempDir(), "hub.db")) })
}

func TestPostgresSeriesContract(t *testing.T) {
	runSeriesContract(t, func(t *testing.T) *DB { return openPostgresT(t, pgSchema(t)) })
}
