// Package bench turns `go test -bench` output (standard benchmark lines with custom metrics,
// from any number of packages and -count repeats) into the benchmark report: BENCHMARKS.md and
// latest.json. Which metric answers which of issue 11's targets, and which figure is shown
// against which baseline, is declared in targets.yaml: a new benchmark appears in the report
// by its metric names alone, with no code change.
package bench

import (
	"bufio"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
)

// Metric is one unit's values over the runs of a benchmark.
type Metric struct {
	Unit   string    `json:"unit"`
	Values []float64 `json:"values"`
	Median float64   `json:"median"`
	Min    float64   `json:"min"`
	Max    float64   `json:"max"`
}

// Benchmark is one benchmark (sub-benchmarks are their own) with every metric it reported.
type Benchmark struct {
	Package string             `json:"package"`
	Name    string             `json:"name"` // without the -GOMAXPROCS suffix
	Runs    int                `json:"runs"`
	Metrics map[string]*Metric `json:"metrics"`
	order   []string
}

// Units returns the benchmark's units in the order first reported.
func (b *Benchmark) Units() []string { return b.order }

// Results are all benchmarks read, in the order first seen.
type Results struct {
	Benchmarks []*Benchmark `json:"benchmarks"`
	CPU        string       `json:"cpu,omitempty"` // from go test's "cpu:" line
}

// Find returns the benchmark named name (with or without "Benchmark"), in pkg if pkg is not "".
func (r *Results) Find(pkg, name string) *Benchmark {
	if !strings.HasPrefix(name, "Benchmark") {
		name = "Benchmark" + name
	}
	for _, b := range r.Benchmarks {
		if b.Name == name && (pkg == "" || b.Package == pkg || strings.HasSuffix(b.Package, "/"+pkg)) {
			return b
		}
	}
	return nil
}

// Parse reads go test -bench output. Lines other than benchmark results, "pkg:" and "cpu:" are
// ignored (logs, PASS, ok); a malformed benchmark line is an error naming its line number.
func Parse(r io.Reader) (*Results, error) {
	res := &Results{}
	index := map[string]*Benchmark{}
	pkg := ""
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for ln := 1; sc.Scan(); ln++ {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "pkg: "):
			pkg = strings.TrimSpace(strings.TrimPrefix(line, "pkg: "))
			continue
		case strings.HasPrefix(line, "cpu: "):
			res.CPU = strings.TrimSpace(strings.TrimPrefix(line, "cpu: "))
			continue
		case !strings.HasPrefix(line, "Benchmark"):
			continue
		}
		f := strings.Fields(line)
		if len(f) < 2 {
			continue // a benchmark's name printed alone before its logs
		}
		if _, err := strconv.Atoi(f[1]); err != nil {
			continue // "BenchmarkX ... skipped" and the like
		}
		if len(f)%2 != 0 {
			return nil, fmt.Errorf("line %d: %q: want name, iterations, then value-unit pairs", ln, line)
		}
		name := trimProcs(f[0])
		key := pkg + "\x00" + name
		b := index[key]
		if b == nil {
			b = &Benchmark{Package: pkg, Name: name, Metrics: map[string]*Metric{}}
			index[key] = b
			res.Benchmarks = append(res.Benchmarks, b)
		}
		b.Runs++
		for i := 2; i+1 < len(f); i += 2 {
			v, err := strconv.ParseFloat(f[i], 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: value %q of %s: %w", ln, f[i], f[i+1], err)
			}
			u := f[i+1]
			m := b.Metrics[u]
			if m == nil {
				m = &Metric{Unit: u}
				b.Metrics[u] = m
				b.order = append(b.order, u)
			}
			m.Values = append(m.Values, v)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, fmt.Errorf("read benchmark output: %w", err)
	}
	for _, b := range res.Benchmarks {
		for _, m := range b.Metrics {
			s := slices.Sorted(slices.Values(m.Values))
			m.Min, m.Max = s[0], s[len(s)-1]
			if n := len(s); n%2 == 1 {
				m.Median = s[n/2]
			} else {
				m.Median = (s[n/2-1] + s[n/2]) / 2
			}
		}
	}
	return res, nil
}

// trimProcs drops the -N GOMAXPROCS suffix go test adds to a benchmark's name.
func trimProcs(name string) string {
	i := strings.LastIndexByte(name, '-')
	if i < 0 {
		return name
	}
	if _, err := strconv.Atoi(name[i+1:]); err != nil {
		return name
	}
	return name[:i]
}
