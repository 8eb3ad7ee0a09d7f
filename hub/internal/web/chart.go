package web

import (
	"context"
	"fmt"
	"html"
	"io"
	"math"
	"net/http"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/store"
)

// chartMetric is how a metric of the chart data is drawn: its title, unit and the values of a
// bucket (one per line; NaN leaves a gap).
type chartMetric struct {
	title, unit string
	lines       []string // legend, one per value
	values      func(p store.SeriesPoint, per time.Duration) []float64
	zeroFill    bool // a bucket without observations is a zero (throughput), not a gap
}

var chartMetrics = map[string]chartMetric{
	store.MetricThroughput: {"Records applied", "records/min", []string{"records per minute"},
		func(p store.SeriesPoint, per time.Duration) []float64 {
			return []float64{float64(p.Sum) / per.Minutes()}
		}, true},
	store.MetricLatency: {"Capture → applied latency", "seconds", []string{"mean", "slowest"},
		func(p store.SeriesPoint, _ time.Duration) []float64 {
			return []float64{float64(p.Sum) / float64(max(p.Count, 1)) / 1000, float64(p.Max) / 1000}
		}, false},
	store.MetricBacklog: {"Agent backlog", "records", []string{"largest reported"},
		func(p store.SeriesPoint, _ time.Duration) []float64 { return []float64{float64(p.Max)} }, false},
}

// chartRanges are the ranges a chart or series request may ask for, and the bucket width
// read for each.
var chartRanges = map[string]time.Duration{"6h": store.SeriesMinute, "24h": store.SeriesMinute, "7d": store.SeriesHour}

var rangeLength = map[string]time.Duration{"6h": 6 * time.Hour, "24h": 24 * time.Hour, "7d": 7 * 24 * time.Hour}

// SeriesReader is what the charts read.
type SeriesReader interface {
	Series(ctx context.Context, store, metric string, res time.Duration, from, to time.Time) ([]store.SeriesPoint, error)
}

// routesCharts registers the chart endpoints.
func (s *Server) routesCharts() {
	s.handle("GET /stores/{store}/charts/{chart}", auth.Viewer, s.chart)
	s.handle("GET /api/v1/stores/{store}/series", auth.Viewer, s.series)
}

// seriesQuery is a validated chart request: the store, metric and range, and its points.
type seriesQuery struct {
	store, metric, rng string
	m                  chartMetric
	res                time.Duration
	from, to           time.Time
	points             []store.SeriesPoint
}

func (s *Server) readSeries(r *http.Request, metric string) (*seriesQuery, error) {
	id, err := s.storeParam(r)
	if err != nil {
		return nil, err
	}
	q := &seriesQuery{store: id, metric: metric, rng: r.URL.Query().Get("range")}
	var ok bool
	if q.m, ok = chartMetrics[metric]; !ok {
		return nil, badRequest(fmt.Sprintf("metric %q: use throughput, latency or backlog", metric))
	}
	if q.rng == "" {
		q.rng = "24h"
	}
	if q.res, ok = chartRanges[q.rng]; !ok {
		return nil, badRequest(fmt.Sprintf("range %q: use 6h, 24h or 7d", q.rng))
	}
	if _, err := s.st.GetStore(r.Context(), id); err != nil {
		return nil, err
	}
	q.to = s.now().UTC().Truncate(q.res).Add(q.res)
	q.from = q.to.Add(-rangeLength[q.rng])
	q.points, err = s.st.Series(r.Context(), id, metric, q.res, q.from, q.to)
	return q, err
}

// series serves GET /api/v1/stores/{store}/series?metric=&range=: the buckets of one metric.
func (s *Server) series(w http.ResponseWriter, r *http.Request) {
	q, err := s.readSeries(r, r.URL.Query().Get("metric"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	s.writeJSON(w, http.StatusOK, map[string]any{"store": q.store, "metric": q.metric, "range": q.rng,
		"resolution_seconds": int(q.res.Seconds()), "from": q.from, "to": q.to, "points": q.points})
}

// chart serves GET /stores/{store}/charts/{metric}.svg?range=: the metric drawn as SVG, with
// "No data yet" when the range has no buckets. Unknown or out-of-scope stores are 404.
func (s *Server) chart(w http.ResponseWriter, r *http.Request) {
	metric, ok := strings.CutSuffix(r.PathValue("chart"), ".svg")
	if !ok {
		s.fail(w, r, fmt.Errorf("chart %q: %w (want METRIC.svg)", r.PathValue("chart"), store.ErrNotFound))
		return
	}
	q, err := s.readSeries(r, metric)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "no-store")
	if err := renderChart(w, q); err != nil {
		s.log.Debug("write chart", "err", err)
	}
}

// Chart geometry, in SVG user units.
const (
	chartW, chartH                  = 640, 220
	padL, padR, padT, padB          = 56, 16, 30, 34
	plotW, plotH                    = chartW - padL - padR, chartH - padT - padB
	chartFont                       = `font-family="sans-serif" font-size="11" fill="#444"`
	lineColour1, lineColour2, gridC = "#1f6feb", "#d1242f", "#ddd"
)

// renderChart writes q as an SVG line chart with a title, a y axis in the metric's unit and a
// time axis in UTC. Only presentation attributes are used (no style, no script), so it renders
// under the hub's Content-Security-Policy.
func renderChart(w io.Writer, q *seriesQuery) error {
	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 %d %d" width="%d" height="%d" role="img" aria-label="%s">`+"\n",
		chartW, chartH, chartW, chartH, html.EscapeString(q.m.title+" of "+q.store))
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#fff"/>`+"\n", chartW, chartH)
	fmt.Fprintf(&b, `<text x="%d" y="18" font-family="sans-serif" font-size="13" font-weight="bold" fill="#222">%s — %s, last %s (%s)</text>`+"\n",
		padL, html.EscapeString(q.m.title), html.EscapeString(q.store), q.rng, q.m.unit)
	span := q.to.Sub(q.from)
	x := func(t time.Time) float64 { return padL + float64(t.Sub(q.from))/float64(span)*plotW }
	// Values per bucket, per line.
	n := int(span / q.res)
	vals := make([][]float64, len(q.m.lines))
	for i := range vals {
		vals[i] = make([]float64, n)
		for j := range vals[i] {
			vals[i][j] = math.NaN()
			if q.m.zeroFill && len(q.points) > 0 {
				vals[i][j] = 0
			}
		}
	}
	top := 0.0
	for _, p := range q.points {
		j := int(p.Bucket.Sub(q.from) / q.res)
		if j < 0 || j >= n {
			continue
		}
		for i, v := range q.m.values(p, q.res) {
			vals[i][j] = v
			top = max(top, v)
		}
	}
	top, step := niceScale(top)
	y := func(v float64) float64 { return padT + plotH - v/top*plotH }
	for v := 0.0; v <= top+step/2; v += step {
		fmt.Fprintf(&b, `<line x1="%d" y1="%.1f" x2="%d" y2="%.1f" stroke="%s"/>`+"\n", padL, y(v), padL+plotW, y(v), gridC)
		fmt.Fprintf(&b, `<text x="%d" y="%.1f" text-anchor="end" %s>%s</text>`+"\n", padL-4, y(v)+4, chartFont, label(v))
	}
	tick, format := 2*time.Hour, "15:04"
	switch q.rng {
	case "6h":
		tick = time.Hour
	case "7d":
		tick, format = 24*time.Hour, "Jan 02"
	}
	for t := q.from.Truncate(tick).Add(tick); t.Before(q.to); t = t.Add(tick) {
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%d" x2="%.1f" y2="%d" stroke="%s"/>`+"\n", x(t), padT, x(t), padT+plotH, gridC)
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle" %s>%s</text>`+"\n", x(t), padT+plotH+14, chartFont, t.Format(format))
	}
	fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="end" %s>UTC</text>`+"\n", padL+plotW, chartH-4, chartFont)
	fmt.Fprintf(&b, `<rect x="%d" y="%d" width="%d" height="%d" fill="none" stroke="#888"/>`+"\n", padL, padT, plotW, plotH)
	if len(q.points) == 0 {
		fmt.Fprintf(&b, `<text x="%d" y="%d" text-anchor="middle" font-family="sans-serif" font-size="16" fill="#888">No data yet</text>`+"\n",
			padL+plotW/2, padT+plotH/2)
	}
	for i, line := range vals {
		colour := []string{lineColour1, lineColour2}[i%2]
		var pts []string
		flush := func() {
			if len(pts) == 1 { // a lone bucket: a dot
				fmt.Fprintf(&b, `<circle cx="%s" r="2" fill="%s"/>`+"\n", strings.Replace(pts[0], ",", `" cy="`, 1), colour)
			} else if len(pts) > 1 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="1.5" points="%s"/>`+"\n", colour, strings.Join(pts, " "))
			}
			pts = pts[:0]
		}
		for j, v := range line {
			if math.IsNaN(v) {
				flush()
				continue
			}
			pts = append(pts, fmt.Sprintf("%.1f,%.1f", x(q.from.Add(time.Duration(j)*q.res+q.res/2)), y(v)))
		}
		flush()
		if len(q.points) > 0 {
			fmt.Fprintf(&b, `<text x="%d" y="%d" font-family="sans-serif" font-size="11" fill="%s">— %s</text>`+"\n", padL+8+i*140, chartH-4, colour, q.m.lines[i])
		}
	}
	b.WriteString("</svg>\n")
	_, err := io.WriteString(w, b.String())
	return err
}

// niceScale rounds max up to 1, 2 or 5 times a power of ten and returns it with a grid step
// of a quarter or a fifth of it.
func niceScale(v float64) (top, step float64) {
	if v <= 0 || math.IsNaN(v) {
		return 1, 0.25
	}
	p := math.Pow(10, math.Floor(math.Log10(v)))
	for _, m := range []float64{1, 2, 5, 10} {
		if v <= m*p {
			top = m * p
			break
		}
	}
	if top/p == 2 || top/p == 10 || top/p == 1 {
		return top, top / 4
	}
	return top, top / 5
}

// label formats an axis value compactly: 1500 → 1.5k.
func label(v float64) string {
	switch {
	case v >= 1e6:
		return fmt.Sprintf("%gM", math.Round(v/1e5)/10)
	case v >= 1e3:
		return fmt.Sprintf("%gk", math.Round(v/1e2)/10)
	}
	return fmt.Sprintf("%g", math.Round(v*1000)/1000)
}
