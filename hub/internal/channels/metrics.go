package channels

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the Pusher's Prometheus families (one label: channel, a configured set).
type metrics struct {
	p       *Pusher
	levels  *prometheus.CounterVec
	calls   *prometheus.CounterVec
	seconds *prometheus.HistogramVec
	update  *prometheus.HistogramVec
	lag     *prometheus.Desc
	pending *prometheus.Desc
}

func newMetrics(p *Pusher) *metrics {
	return &metrics{p: p,
		levels: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lanebridge_hub_channel_levels_total",
			Help: "Stock figures handled per channel, by outcome (ok, unchanged, rejected, failed, rate_limited)."}, []string{"channel", "outcome"}),
		calls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lanebridge_hub_channel_pushes_total",
			Help: "SetStock calls per channel, by outcome (ok, partial, failed, rate_limited)."}, []string{"channel", "outcome"}),
		seconds: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lanebridge_hub_channel_push_seconds",
			Help: "Time of one SetStock call.", Buckets: prometheus.ExponentialBuckets(0.005, 2, 14)}, []string{"channel"}),
		update: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "lanebridge_hub_channel_update_seconds",
			Help: "From the Pusher seeing a changed figure to the channel showing it.", Buckets: prometheus.ExponentialBuckets(0.05, 2, 12)}, []string{"channel"}),
		lag: prometheus.NewDesc("lanebridge_hub_channel_lag_seconds",
			"Age of the oldest change not yet shown by the channel (0 when none is pending).", []string{"channel"}, nil),
		pending: prometheus.NewDesc("lanebridge_hub_channel_pending",
			"SKUs whose changed figure the channel does not show yet.", []string{"channel"}, nil),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.levels.Describe(ch)
	m.calls.Describe(ch)
	m.seconds.Describe(ch)
	m.update.Describe(ch)
	ch <- m.lag
	ch <- m.pending
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.levels.Collect(ch)
	m.calls.Collect(ch)
	m.seconds.Collect(ch)
	m.update.Collect(ch)
	now := m.p.o.Now()
	for _, c := range m.p.chans {
		lag := 0.0
		if o := c.oldest.Load(); o != 0 {
			lag = now.Sub(time.Unix(0, o)).Seconds()
		}
		ch <- prometheus.MustNewConstMetric(m.lag, prometheus.GaugeValue, lag, c.name)
		ch <- prometheus.MustNewConstMetric(m.pending, prometheus.GaugeValue, float64(c.npend.Load()), c.name)
	}
}
