package app

import (
	"context"
	"runtime"
	"strconv"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// BuildInfo is the lanebridge_build_info gauge, 1, labelled with what is running; the agent
// writes the same family.
func BuildInfo(component, version string) prometheus.Collector {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "lanebridge_build_info",
		Help: "Version of the running " + component + " (always 1).",
		ConstLabels: prometheus.Labels{"component": component, "version": version, "go_version": runtime.Version(),
			"protocol": strconv.Itoa(protocol.Version)}}, func() float64 { return 1 })
}

// exceptionCounter is what the exceptions gauge reads at each scrape.
type exceptionCounter interface {
	ExceptionCounts(ctx context.Context, state string) ([]store.ExceptionCount, error)
}

// openExceptions is lanebridge_hub_exceptions_open{reason}: open exceptions of the fleet, read
// from the store at each scrape (reasons are a fixed set, so the cardinality is bounded).
type openExceptions struct {
	st   exceptionCounter
	desc *prometheus.Desc
}

func newOpenExceptions(st exceptionCounter) *openExceptions {
	return &openExceptions{st, prometheus.NewDesc("lanebridge_hub_exceptions_open",
		"Open exceptions of all stores, by reason (read from the store at each scrape).", []string{"reason"}, nil)}
}

func (o *openExceptions) Describe(ch chan<- *prometheus.Desc) { ch <- o.desc }

func (o *openExceptions) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	counts, err := o.st.ExceptionCounts(ctx, store.StateOpen)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(o.desc, err)
		return
	}
	by := map[string]int64{}
	for _, c := range counts {
		by[c.Reason] += c.Exceptions
	}
	for reason, n := range by {
		ch <- prometheus.MustNewConstMetric(o.desc, prometheus.GaugeValue, float64(n), reason)
	}
}
