package bench

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.golden from the current output")

func parseFile(t *testing.T, name string) *Results {
	t.Helper()
	f, err := os.Open(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	res, err := Parse(f)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func TestParseMedianAndRange(t *testing.T) {
	res := parseFile(t, "bench.txt")
	for _, c := range []struct {
		bench, unit           string
		runs                  int
		median, minimum, maxi float64
	}{
		{"BenchmarkDrain", "records/s", 3, 13000, 12271, 14000},
		{"BenchmarkDrain", "x_nats", 3, 0.1313, 0.1303, 0.1556},
		{"BenchmarkPGReplicas/replicas=2", "records/s", 1, 7000, 7000, 7000},
		{"GroupCommit/sqlite/group", "records/s", 1, 150000, 150000, 150000},
	} {
		b := res.Find("", c.bench)
		if b == nil {
			t.Fatalf("Find(%q) = nil", c.bench)
		}
		m := b.Metrics[c.unit]
		if b.Runs != c.runs || m == nil || m.Median != c.median || m.Min != c.minimum || m.Max != c.maxi {
			t.Errorf("%s %s: runs %d, metric %+v; want %d runs, median %v [%v, %v]", c.bench, c.unit, b.Runs, m, c.runs, c.median, c.minimum, c.maxi)
		}
	}
	if res.Find("", "BenchmarkCloseFleet") != nil {
		t.Error("a skipped benchmark (name line only) was read as a result")
	}
	if b := res.Find("store", "BenchmarkPGReplicas/replicas=1"); b == nil || b.Package != "github.com/lanebridge/lanebridge/hub/internal/store" {
		t.Errorf("Find by package suffix: %+v", b)
	}
}

func TestParseRejectsMalformedLines(t *testing.T) {
	for _, in := range []string{
		"BenchmarkX-2 1 100 ns/op 5\n",
		"BenchmarkX-2 1 abc records/s\n",
	} {
		if _, err := Parse(strings.NewReader(in)); err == nil || !strings.Contains(err.Error(), "line 1") {
			t.Errorf("Parse(%q) = %v, want an error naming line 1", in, err)
		}
	}
}

func TestLoadSpec(t *testing.T) {
	s, err := LoadSpec(nil)
	if err != nil {
		t.Fatal(err)
	}
	ids := map[int]bool{}
	for _, tg := range s.Targets {
		ids[tg.ID] = true
	}
	for id := 1; id <= 5; id++ {
		if !ids[id] {
			t.Errorf("targets.yaml has no row for issue 11 target %d", id)
		}
	}
	for _, c := range []struct{ yaml, want string }{
		{"targets: [{id: 1, bench: B, metric: m, op: '>', value: 1, plan: p}]\nplans: {p: x}\n", `op ">"`},
		{"targets: [{id: 1, bench: B, metric: m, op: '>=', value: 1, plan: q}]\nplans: {p: x}\n", `plan "q"`},
		{"targets: [{id: 1, metrc: m}]\n", "metrc"},
	} {
		if _, err := LoadSpec([]byte(c.yaml)); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("LoadSpec(%q) = %v, want an error with %s", c.yaml, err, c.want)
		}
	}
}

func TestReportGolden(t *testing.T) {
	spec, err := LoadSpec(nil)
	if err != nil {
		t.Fatal(err)
	}
	tmpl, err := os.ReadFile("beyond.tmpl")
	if err != nil {
		t.Fatal(err)
	}
	m := Machine{CPU: "Test CPU", Cores: 2, MemoryGiB: "24.0", Go: "go1.26.8", Kernel: "6.0.0", LoadBefore: "1.50", LoadAfter: "2.25"}
	rep := NewReport(spec, parseFile(t, "bench.txt"), m, time.Date(2026, 12, 1, 18, 0, 0, 0, time.UTC), []string{"go test -bench . ./x"})
	md, err := rep.Markdown(string(tmpl))
	if err != nil {
		t.Fatal(err)
	}
	js, err := rep.JSON()
	if err != nil {
		t.Fatal(err)
	}
	for name, got := range map[string][]byte{"BENCHMARKS.md.golden": md, "latest.json.golden": js} {
		path := filepath.Join("testdata", name)
		if *update {
			if err := os.WriteFile(path, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatalf("%v (run go test -update once)", err)
		}
		if string(got) != string(want) {
			t.Errorf("%s differs from the output; if the change is intended run go test ./testharness/bench -update\n--- got:\n%s", name, got)
		}
	}
	for _, want := range []string{
		"| 1 | Drain agent → hub, embedded broker + SQLite | `BenchmarkDrain` · `records/s` | >= 100,000 | 13,000 [12,271 – 14,000] (3 runs) | **missed** → [plan](#plan-drain) (run at 100,000 records; the target is stated at 1,000,000) |",
		"| 4 | Close cost independent of history (30 days / 1 day) | `BenchmarkCloseHistory` · `ratio-30/1` | <= 1.5 | 1.02 | met |",
		"not measured: BenchmarkDrainPostgres (branch hubwriter)",
		"**7,000 records/s** in total (1.75× one)",
		"N = 8 replicas",
		`<a id="plan-drain"></a>`,
	} {
		if !strings.Contains(string(md), want) {
			t.Errorf("BENCHMARKS.md lacks %q", want)
		}
	}
}
