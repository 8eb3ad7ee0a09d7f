package ingest

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// SeriesStore is where the Recorder writes chart data.
type SeriesStore interface {
	// AddSeries merges minute aggregates into their minute and hour buckets in one transaction.
	AddSeries(ctx context.Context, points []store.SeriesPoint) error
	// PruneSeries deletes minute and hour buckets older than the given times.
	PruneSeries(ctx context.Context, minuteBefore, hourBefore time.Time) (int64, error)
}

// RecorderOptions configure a Recorder.
type RecorderOptions struct {
	Flush       time.Duration // how often aggregates are written (default 10s)
	KeepMinutes time.Duration // minute buckets are kept this long (default 48h)
	KeepHours   time.Duration // hour buckets are kept this long (default 90 days)
	// PerStore turns the per-store gauges on; at most PerStoreMax stores get them (the rest
	// are counted by lanebridge_hub_store_series_dropped).
	PerStore    bool
	PerStoreMax int
	Logger      *slog.Logger
	Now         func() time.Time // nil: time.Now
}

// Recorder aggregates chart data (throughput, latency, backlog) per store and minute in
// memory and writes it every Flush in one transaction, so recording never waits for the
// database on the ingest path; a crash loses at most the unflushed interval of chart data
// (never records). It also serves the per-store Prometheus gauges as a prometheus.Collector.
type Recorder struct {
	st  SeriesStore
	o   RecorderOptions
	log *slog.Logger

	mu      sync.Mutex
	pending map[seriesKey]*store.SeriesPoint
	stores  map[string]storeGauge // per-store gauges, at most PerStoreMax
	dropped map[string]bool       // stores beyond the cap

	descBacklog, descAge, descOnline, descDropped *prometheus.Desc
	flushFailures                                 prometheus.Counter
}

type seriesKey struct {
	store, metric string
	minute        int64
}

type storeGauge struct {
	backlog uint64
	at      time.Time
	online  bool
}

// maxPending bounds the unflushed aggregates kept while the database refuses writes.
const maxPending = 100_000

// NewRecorder returns a Recorder writing to st; run it with Run.
func NewRecorder(st SeriesStore, o RecorderOptions) *Recorder {
	if o.Flush <= 0 {
		o.Flush = 10 * time.Second
	}
	if o.KeepMinutes <= 0 {
		o.KeepMinutes = 48 * time.Hour
	}
	if o.KeepHours <= 0 {
		o.KeepHours = 90 * 24 * time.Hour
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	per := []string{"store"}
	return &Recorder{st: st, o: o, log: o.Logger.With("component", "series"),
		pending: map[seriesKey]*store.SeriesPoint{}, stores: map[string]storeGauge{}, dropped: map[string]bool{},
		descBacklog: prometheus.NewDesc("lanebridge_hub_store_backlog", "Records the store's agent has not yet had acknowledged, as of its last status.", per, nil),
		descAge:     prometheus.NewDesc("lanebridge_hub_store_last_status_age_seconds", "Seconds since the store's agent last sent a status (since this hub started).", per, nil),
		descOnline:  prometheus.NewDesc("lanebridge_hub_store_online", "1 when the store's agent last reported online, 0 after its offline message.", per, nil),
		descDropped: prometheus.NewDesc("lanebridge_hub_store_series_dropped", "Stores left without per-store gauges because metrics.per_store_max was reached.", nil, nil),
		flushFailures: prometheus.NewCounter(prometheus.CounterOpts{Name: "lanebridge_hub_series_flush_failures_total",
			Help: "Chart data flushes that failed (kept and retried with the next flush)."}),
	}
}

// Register adds the recorder's metrics to reg.
func (r *Recorder) Register(reg prometheus.Registerer) { reg.MustRegister(r, r.flushFailures) }

// observe merges one observation into its minute.
func (r *Recorder) observe(st, metric string, at time.Time, sum, count, max, last int64) {
	k := seriesKey{st, metric, at.Unix() / 60}
	r.mu.Lock()
	defer r.mu.Unlock()
	p := r.pending[k]
	if p == nil {
		if len(r.pending) >= maxPending {
			return
		}
		p = &store.SeriesPoint{Store: st, Metric: metric, Bucket: time.Unix(k.minute*60, 0).UTC()}
		r.pending[k] = p
	}
	p.Sum, p.Count, p.Max, p.Last = p.Sum+sum, p.Count+count, max64(p.Max, max), last
}

func max64(a, b int64) int64 {
	if a > b {
		return a
	}
	return b
}

// applied records a batch's newly applied records: their number and their capture→applied
// latency. ApplyResult counts but does not name them, so the latency is taken over the last
// n records of the batch at or below appliedThrough (duplicates of a resend come first).
func (r *Recorder) applied(st string, recs []protocol.Record, n int, appliedThrough uint64) {
	if r == nil || n <= 0 {
		return
	}
	now := r.o.Now()
	r.observe(st, store.MetricThroughput, now, int64(n), 1, int64(n), int64(n))
	var sum, count, slowest int64
	for i := len(recs) - 1; i >= 0 && count < int64(n); i-- {
		if recs[i].Seq > appliedThrough || recs[i].CapturedAt.IsZero() {
			continue
		}
		ms := max64(now.Sub(recs[i].CapturedAt).Milliseconds(), 0)
		sum, count, slowest = sum+ms, count+1, max64(slowest, ms)
	}
	if count > 0 {
		r.observe(st, store.MetricLatency, now, sum, count, slowest, slowest)
	}
}

// status records an agent status: its backlog for the chart and the per-store gauges.
func (r *Recorder) status(s protocol.Status) {
	if r == nil {
		return
	}
	now := r.o.Now()
	b := int64(min(s.Backlog, uint64(1<<62)))
	r.observe(s.Store, store.MetricBacklog, now, b, 1, b, b)
	if !r.o.PerStore {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.stores[s.Store]; !ok && len(r.stores) >= r.o.PerStoreMax {
		r.dropped[s.Store] = true
		return
	}
	r.stores[s.Store] = storeGauge{backlog: s.Backlog, at: now, online: s.State == "online"}
}

// Describe implements prometheus.Collector.
func (r *Recorder) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.descBacklog
	ch <- r.descAge
	ch <- r.descOnline
	ch <- r.descDropped
}

// Collect implements prometheus.Collector: the per-store gauges (none with PerStore off).
func (r *Recorder) Collect(ch chan<- prometheus.Metric) {
	now := r.o.Now()
	r.mu.Lock()
	defer r.mu.Unlock()
	for id, g := range r.stores {
		online := 0.0
		if g.online {
			online = 1
		}
		ch <- prometheus.MustNewConstMetric(r.descBacklog, prometheus.GaugeValue, float64(g.backlog), id)
		ch <- prometheus.MustNewConstMetric(r.descAge, prometheus.GaugeValue, now.Sub(g.at).Seconds(), id)
		ch <- prometheus.MustNewConstMetric(r.descOnline, prometheus.GaugeValue, online, id)
	}
	ch <- prometheus.MustNewConstMetric(r.descDropped, prometheus.GaugeValue, float64(len(r.dropped)))
}

// Flush writes the pending aggregates in one transaction; on failure they are kept for the
// next flush.
func (r *Recorder) Flush(ctx context.Context) error {
	r.mu.Lock()
	batch := r.pending
	r.pending = map[seriesKey]*store.SeriesPoint{}
	r.mu.Unlock()
	points := make([]store.SeriesPoint, 0, len(batch))
	for _, p := range batch {
		points = append(points, *p)
	}
	err := r.st.AddSeries(ctx, points)
	if err != nil {
		r.flushFailures.Inc()
		r.mu.Lock()
		for k, p := range batch { // merge back under the newer observations
			if q := r.pending[k]; q != nil {
				p.Sum, p.Count, p.Max, p.Last = p.Sum+q.Sum, p.Count+q.Count, max64(p.Max, q.Max), q.Last
			}
			r.pending[k] = p
		}
		r.mu.Unlock()
	}
	return err
}

// Run flushes every Flush and prunes old buckets hourly until ctx ends, then flushes once more.
func (r *Recorder) Run(ctx context.Context) error {
	tick := time.NewTicker(r.o.Flush)
	defer tick.Stop()
	var pruned time.Time
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			if err := r.Flush(fctx); err != nil {
				r.log.Warn("last chart data flush failed; that interval is lost", "err", err)
			}
			return nil
		case <-tick.C:
		}
		if err := r.Flush(ctx); err != nil && ctx.Err() == nil {
			r.log.Warn("chart data flush failed; retrying with the next", "err", err)
		}
		if now := r.o.Now(); now.Sub(pruned) >= time.Hour {
			pruned = now
			if n, err := r.st.PruneSeries(ctx, now.Add(-r.o.KeepMinutes), now.Add(-r.o.KeepHours)); err != nil {
				r.log.Warn("prune chart data failed", "err", err)
			} else if n > 0 {
				r.log.Debug("chart data pruned", "buckets", n)
			}
		}
	}
}
