package ingest

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// failOnce makes the first AddSeries fail, as a database that refuses a write would.
type failOnce struct {
	SeriesStore
	failed bool
}

func (f *failOnce) AddSeries(ctx context.Context, ps []store.SeriesPoint) error {
	if !f.failed {
		f.failed = true
		return errors.New("database is locked")
	}
	return f.SeriesStore.AddSeries(ctx, ps)
}

// TestRecorderCharts: applied records, their latency and the agent's backlog reach the
// series store on flush (a failed flush keeps them); resent duplicates count for nothing;
// the per-store gauges stop at the cap, and an unknown store gets none.
func TestRecorderCharts(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st := sqliteStore(t, "S001", "S002")
	now := time.Date(2026, 11, 26, 9, 0, 30, 0, time.UTC) // 30 s after batch() captures
	fs := &failOnce{SeriesStore: st}
	rec := NewRecorder(fs, RecorderOptions{PerStore: true, PerStoreMax: 1, Now: func() time.Time { return now }})
	reg := prometheus.NewRegistry()
	rec.Register(reg)
	pub := &acks{}
	in := New(st, pub, Options{Workers: 1, Series: rec})
	go in.Run(ctx)
	status := func(id string, backlog uint64) Message {
		p, _ := json.Marshal(protocol.Status{V: protocol.Version, Store: id, State: "online", Backlog: backlog})
		return Message{Topic: protocol.StatusTopic(id), Payload: p}
	}
	acked := 0
	for _, m := range []Message{batch(t, 1, 3, nil), status("S001", 7), batch(t, 1, 3, nil), batch(t, 2, 5, nil),
		status("S001", 2), status("S999", 5), status("S002", 9), batch(t, 6, 6, nil)} {
		in.Handle(ctx, m)
		if strings.HasSuffix(m.Topic, protocol.SuffixRecords) {
			acked++
			pub.wait(t, acked) // one at a time: no group commit merges them
		}
	}
	if err := rec.Flush(ctx); err == nil {
		t.Fatal("first flush: want the store's error")
	}
	if err := rec.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	get := func(id, metric string) store.SeriesPoint {
		ps, err := st.Series(ctx, id, metric, store.SeriesMinute, now.Add(-time.Hour), now.Add(time.Hour))
		if err != nil || len(ps) != 1 {
			t.Fatalf("%s %s = %+v, %v; want one minute", id, metric, ps, err)
		}
		return ps[0]
	}
	if p := get("S001", store.MetricThroughput); p.Sum != 6 || p.Count != 3 || p.Max != 3 {
		t.Errorf("throughput %+v, want 6 records (3+2+1; the resent 1..3 and 2..3 count nothing) in 3 batches", p)
	}
	if p := get("S001", store.MetricLatency); p.Count != 6 || p.Sum != 6*30000 || p.Max != 30000 {
		t.Errorf("latency %+v, want 6 records of 30000 ms", p)
	}
	if p := get("S001", store.MetricBacklog); p.Last != 2 || p.Max != 7 || p.Count != 2 {
		t.Errorf("backlog %+v, want last 2, max 7 of 2 statuses", p)
	}
	get("S002", store.MetricBacklog) // charts are not capped
	now = now.Add(5 * time.Second)
	got := gauges(t, reg)
	for name, v := range map[string]float64{`lanebridge_hub_store_backlog{store="S001"}`: 2,
		`lanebridge_hub_store_last_status_age_seconds{store="S001"}`: 5, `lanebridge_hub_store_online{store="S001"}`: 1,
		`lanebridge_hub_store_series_dropped`: 1} {
		if g, ok := got[name]; !ok || g != v {
			t.Errorf("%s = %v (present %v), want %v", name, g, ok, v)
		}
	}
	if _, ok := got[`lanebridge_hub_store_backlog{store="S002"}`]; ok {
		t.Error("S002 beyond per_store_max 1 has a gauge")
	}
	// A status naming a store that is not enrolled takes no place: S002 counts as dropped
	// above (1), and S999 has neither a gauge nor chart data.
	if ps, _ := st.Series(ctx, "S999", store.MetricBacklog, store.SeriesMinute, now.Add(-time.Hour), now.Add(time.Hour)); len(ps) != 0 {
		t.Errorf("unknown store S999 has chart data %+v", ps)
	}

	off := NewRecorder(st, RecorderOptions{PerStore: false, PerStoreMax: 10})
	off.status(protocol.Status{Store: "S001", State: "online", Backlog: 1})
	reg = prometheus.NewRegistry()
	off.Register(reg)
	if got := gauges(t, reg); len(got) != 1 {
		t.Errorf("per_store off: %v, want only the dropped gauge", got)
	}
}

// gauges gathers reg's gauges as name{labels} → value.
func gauges(t *testing.T, reg *prometheus.Registry) map[string]float64 {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]float64{}
	for _, f := range fams {
		for _, m := range f.GetMetric() {
			if m.Gauge == nil {
				continue
			}
			name := f.GetName()
			for _, l := range m.GetLabel() {
				name += fmt.Sprintf("{%s=%q}", l.GetName(), l.GetValue())
			}
			out[name] = m.Gauge.GetValue()
		}
	}
	return out
}

// TestRecorderRun: Run prunes buckets past their retention, and on stop flushes what is
// pending.
func TestRecorderRun(t *testing.T) {
	ctx := context.Background()
	st := sqliteStore(t)
	now := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	old := store.SeriesPoint{Store: "S001", Metric: store.MetricBacklog, Bucket: now.Add(-72 * time.Hour), Sum: 1, Count: 1, Max: 1, Last: 1}
	if err := st.AddSeries(ctx, []store.SeriesPoint{old}); err != nil {
		t.Fatal(err)
	}
	rec := NewRecorder(st, RecorderOptions{Flush: 10 * time.Millisecond, KeepMinutes: 48 * time.Hour, KeepHours: 90 * 24 * time.Hour,
		Now: func() time.Time { return now }})
	count := func(res time.Duration) int {
		ps, err := st.Series(ctx, "S001", store.MetricBacklog, res, now.Add(-100*time.Hour), now.Add(time.Hour))
		if err != nil {
			t.Fatal(err)
		}
		return len(ps)
	}
	rctx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- rec.Run(rctx) }()
	deadline := time.Now().Add(5 * time.Second)
	for count(store.SeriesMinute) != 0 {
		if time.Now().After(deadline) {
			t.Fatal("the 72 h old minute bucket was not pruned (minutes kept 48 h)")
		}
		time.Sleep(10 * time.Millisecond)
	}
	if count(store.SeriesHour) != 1 {
		t.Error("the 72 h old hour bucket was pruned (hours kept 90 days)")
	}
	rec.status(protocol.Status{Store: "S001", State: "online", Backlog: 4})
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if n := count(store.SeriesMinute); n != 1 {
		t.Errorf("%d minute buckets after stop, want the status's one flushed", n)
	}
}

// sqliteStore is a store in a temporary SQLite file with the given stores enrolled.
func sqliteStore(t *testing.T, ids ...string) *store.DB {
	t.Helper()
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, id := range ids {
		if err := st.AddStore(context.Background(), id, "x"); err != nil {
			t.Fatal(err)
		}
	}
	return st
}
