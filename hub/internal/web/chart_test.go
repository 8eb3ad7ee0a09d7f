package web

import (
	"context"
	"encoding/json"
	"encoding/xml"
	"flag"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// TestChartGolden renders known series and compares them with testdata/ (go test -update
// rewrites them after a deliberate change; look at the SVGs before committing).
func TestChartGolden(t *testing.T) {
	to := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	pt := func(min int, sum, count, max int64) store.SeriesPoint {
		return store.SeriesPoint{Bucket: to.Add(time.Duration(min-360) * time.Minute), Sum: sum, Count: count, Max: max, Last: max}
	}
	for _, c := range []struct {
		file   string
		metric string
		points []store.SeriesPoint
	}{
		// Mean 1.2 s, slowest 3 s for an hour; a gap; then one lone bucket.
		{"chart_latency.svg", store.MetricLatency, append(func() (ps []store.SeriesPoint) {
			for m := 60; m < 120; m++ {
				ps = append(ps, pt(m, 1200*10, 10, 3000))
			}
			return ps
		}(), pt(200, 500, 1, 500))},
		{"chart_throughput.svg", store.MetricThroughput, []store.SeriesPoint{pt(10, 40, 2, 30), pt(11, 120, 3, 50), pt(300, 7, 1, 7)}},
		{"chart_empty.svg", store.MetricBacklog, nil},
	} {
		q := &seriesQuery{store: "S001", metric: c.metric, rng: "6h", m: chartMetrics[c.metric], res: store.SeriesMinute,
			from: to.Add(-6 * time.Hour), to: to, points: c.points}
		var b strings.Builder
		if err := renderChart(&b, q); err != nil {
			t.Fatal(err)
		}
		got := b.String()
		checkXML(t, c.file, got)
		path := filepath.Join("testdata", c.file)
		if *update {
			if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update once)", err)
		}
		if got != string(want) {
			t.Errorf("%s differs from the golden file; got:\n%s", c.file, got)
		}
	}
}

// TestChartEndpoints: the SVG and the JSON of a store's series, validated parameters, and
// the empty state.
func TestChartEndpoints(t *testing.T) {
	f := newFixture(t, Options{})
	now := f.clock.now()
	if err := f.st.AddSeries(context.Background(), []store.SeriesPoint{
		{Store: "S001", Metric: store.MetricBacklog, Bucket: now.Add(-2 * time.Hour), Sum: 12, Count: 2, Max: 9, Last: 3},
		{Store: "S001", Metric: store.MetricBacklog, Bucket: now.Add(-10 * 24 * time.Hour), Sum: 1, Count: 1, Max: 1, Last: 1},
	}); err != nil {
		t.Fatal(err)
	}
	admin := bearer(f.admin)
	r := f.do(t, "GET", "/stores/S001/charts/backlog.svg?range=6h", "", admin)
	if r.code != 200 || r.h.Get("Content-Type") != "image/svg+xml" || !strings.Contains(r.body, "Agent backlog — S001, last 6h (records)") ||
		!strings.Contains(r.body, "<circle") || strings.Contains(r.body, "No data yet") || strings.Contains(r.body, "style=") || strings.Contains(r.body, "<script") {
		t.Errorf("backlog chart: %d %s\n%s", r.code, r.h.Get("Content-Type"), r.body)
	}
	if r := f.do(t, "GET", "/stores/S002/charts/latency.svg", "", admin); r.code != 200 || !strings.Contains(r.body, "No data yet") {
		t.Errorf("chart without data: %d %s", r.code, r.body)
	}
	r = f.do(t, "GET", "/api/v1/stores/S001/series?metric=backlog&range=7d", "", admin)
	var js struct {
		Resolution int                 `json:"resolution_seconds"`
		Points     []store.SeriesPoint `json:"points"`
	}
	if err := json.Unmarshal([]byte(r.body), &js); err != nil || r.code != 200 || js.Resolution != 3600 || len(js.Points) != 1 ||
		js.Points[0].Max != 9 || !js.Points[0].Bucket.Equal(now.Add(-2*time.Hour).Truncate(time.Hour)) {
		t.Errorf("series 7d: %d %s (%v), want the one hour bucket within 7 days", r.code, r.body, err)
	}
	for path, want := range map[string]int{
		"/stores/S001/charts/backlog.svg?range=1y":           400,
		"/stores/S001/charts/cpu.svg":                        400,
		"/stores/S001/charts/backlog.png":                    404,
		"/stores/S404/charts/backlog.svg":                    404,
		"/api/v1/stores/S001/series":                         400,
		"/api/v1/stores/S001/series?metric=latency&range=2d": 400,
		"/api/v1/stores/bad%20id/series?metric=latency":      400,
	} {
		if r := f.do(t, "GET", path, "", admin); r.code != want {
			t.Errorf("GET %s: %d, want %d: %s", path, r.code, want, r.body)
		}
	}
}

// checkXML fails unless doc is well-formed XML without a repeated attribute (which browsers
// refuse to render).
func checkXML(t *testing.T, name, doc string) {
	t.Helper()
	d := xml.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := d.Token()
		if err == io.EOF {
			return
		}
		if err != nil {
			t.Fatalf("%s: not well-formed XML: %v", name, err)
		}
		if se, ok := tok.(xml.StartElement); ok {
			seen := map[xml.Name]bool{}
			for _, a := range se.Attr {
				if seen[a.Name] {
					t.Fatalf("%s: <%s> repeats attribute %s", name, se.Name.Local, a.Name.Local)
				}
				seen[a.Name] = true
			}
		}
	}
}
