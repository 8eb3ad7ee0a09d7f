package bench

import (
	"bytes"
	_ "embed"
	"encoding/json"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"
	"text/template"
	"time"

	"gopkg.in/yaml.v3"
)

//go:embed targets.yaml
var targetsYAML []byte

// Spec is targets.yaml: the targets, the headline figures with their baselines, and the plans
// a missed target links to.
type Spec struct {
	Targets []Target          `yaml:"targets"`
	Figures []Figure          `yaml:"figures"`
	Plans   map[string]string `yaml:"plans"`
}

// Target is one of issue 11's targets, answered by one benchmark metric.
type Target struct {
	ID     int     `yaml:"id" json:"id"`
	Goal   string  `yaml:"target" json:"target"`
	Bench  string  `yaml:"bench" json:"bench"`
	Metric string  `yaml:"metric" json:"metric"`
	Op     string  `yaml:"op" json:"op"` // ">=" or "<="
	Value  float64 `yaml:"value" json:"value"`
	// Size, if set, is the run size the target is stated for (a metric of the same benchmark):
	// a smaller run is judged all the same and flagged.
	Size *struct {
		Metric string  `yaml:"metric" json:"metric"`
		Value  float64 `yaml:"value" json:"value"`
	} `yaml:"size,omitempty" json:"size,omitempty"`
	Plan string `yaml:"plan" json:"plan"` // key in Plans
	How  string `yaml:"how" json:"how"`   // how to measure it, shown when it was not measured
}

// Figure is a headline figure shown with its baselines and ratios.
type Figure struct {
	Title     string     `yaml:"title"`
	Bench     string     `yaml:"bench"`
	Metric    string     `yaml:"metric"`
	Baselines []Baseline `yaml:"baselines"`
}

// Baseline is what a Figure is compared with: a metric of the same benchmark (or of Bench),
// and the ratio metric the benchmark reports per run ("": the ratio of the medians; "none":
// no ratio, for counts such as records lost).
type Baseline struct {
	Name   string `yaml:"name"`
	Bench  string `yaml:"bench"`
	Metric string `yaml:"metric"`
	Ratio  string `yaml:"ratio"`
}

// LoadSpec parses targets.yaml (the embedded one for nil); an unknown op or plan is an error
// naming the target.
func LoadSpec(data []byte) (*Spec, error) {
	if data == nil {
		data = targetsYAML
	}
	var s Spec
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&s); err != nil {
		return nil, fmt.Errorf("targets.yaml: %w", err)
	}
	for _, t := range s.Targets {
		if t.Op != ">=" && t.Op != "<=" {
			return nil, fmt.Errorf("targets.yaml: target %d (%s): op %q: want \">=\" or \"<=\"", t.ID, t.Metric, t.Op)
		}
		if _, ok := s.Plans[t.Plan]; !ok {
			return nil, fmt.Errorf("targets.yaml: target %d (%s): plan %q: no such key under plans (add a section there)", t.ID, t.Metric, t.Plan)
		}
	}
	return &s, nil
}

// Machine is where the benchmarks ran.
type Machine struct {
	CPU       string `json:"cpu"`
	Cores     int    `json:"cores"`
	MemoryGiB string `json:"memory_gib"`
	Go        string `json:"go"`
	Kernel    string `json:"kernel"`
	// Load is /proc/loadavg's 1-minute figure before and after the runs: other work on a shared
	// machine depresses every rate (ratios from one run hold up better).
	LoadBefore string `json:"load_before,omitempty"`
	LoadAfter  string `json:"load_after,omitempty"`
}

// LoadAverage is the 1-minute load average (/proc/loadavg), "" where there is none.
func LoadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return ""
	}
	return f[0]
}

// ThisMachine reads the CPU model, memory and kernel from /proc (Linux; "unknown" elsewhere).
func ThisMachine(goVersion string) Machine {
	m := Machine{CPU: "unknown", Cores: runtime.NumCPU(), MemoryGiB: "unknown", Go: goVersion, Kernel: "unknown"}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if k, v, ok := strings.Cut(l, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb float64
		if _, err := fmt.Sscanf(string(b), "MemTotal: %f kB", &kb); err == nil {
			m.MemoryGiB = fmt.Sprintf("%.1f", kb/(1<<20))
		}
	}
	if b, err := os.ReadFile("/proc/sys/kernel/osrelease"); err == nil {
		m.Kernel = strings.TrimSpace(string(b))
	}
	return m
}

// TargetResult is a target judged against the results.
type TargetResult struct {
	Target
	Measured *Metric `json:"measured,omitempty"`
	Status   string  `json:"status"`         // met, missed, not measured
	Note     string  `json:"note,omitempty"` // e.g. the run was smaller than the target's size
}

// FigureResult is a headline figure with its baselines' values and ratios.
type FigureResult struct {
	Title     string           `json:"title"`
	Bench     string           `json:"bench"`
	Value     *Metric          `json:"value"`
	Baselines []BaselineResult `json:"baselines"`
}

// BaselineResult is one baseline's value and the figure's ratio to it.
type BaselineResult struct {
	Name       string  `json:"name"`
	Value      *Metric `json:"value"`
	Ratio      *Metric `json:"ratio"`
	OfMedians  bool    `json:"ratio_of_medians,omitempty"` // no per-run ratio metric: median / median
	RatioUnits string  `json:"ratio_metric,omitempty"`
}

// Report is everything BENCHMARKS.md and latest.json show.
type Report struct {
	Machine  Machine        `json:"machine"`
	Date     string         `json:"date"`
	Commands []string       `json:"commands"`
	Targets  []TargetResult `json:"targets"`
	Figures  []FigureResult `json:"figures"`
	Results  *Results       `json:"results"`
	spec     *Spec
}

// NewReport judges the targets and figures of spec against res.
func NewReport(spec *Spec, res *Results, m Machine, date time.Time, commands []string) *Report {
	r := &Report{Machine: m, Date: date.UTC().Format(time.RFC3339), Commands: commands, Results: res, spec: spec}
	for _, t := range spec.Targets {
		tr := TargetResult{Target: t, Status: "not measured"}
		if b := res.Find("", t.Bench); b != nil && b.Metrics[t.Metric] != nil {
			m := b.Metrics[t.Metric]
			tr.Measured = m
			ok := m.Median >= t.Value
			if t.Op == "<=" {
				ok = m.Median <= t.Value
			}
			tr.Status = map[bool]string{true: "met", false: "missed"}[ok]
			if t.Size != nil {
				if s := b.Metrics[t.Size.Metric]; s == nil || s.Median < t.Size.Value {
					if s == nil {
						tr.Note = fmt.Sprintf("the run does not report its size (%s); the target is stated at %s", t.Size.Metric, num(t.Size.Value))
					} else {
						tr.Note = fmt.Sprintf("run at %s %s; the target is stated at %s", num(s.Median), t.Size.Metric, num(t.Size.Value))
					}
				}
			}
		}
		r.Targets = append(r.Targets, tr)
	}
	for _, f := range spec.Figures {
		b := res.Find("", f.Bench)
		if b == nil || b.Metrics[f.Metric] == nil {
			continue
		}
		fr := FigureResult{Title: f.Title, Bench: b.Name, Value: b.Metrics[f.Metric]}
		for _, bl := range f.Baselines {
			bb := b
			if bl.Bench != "" {
				bb = res.Find("", bl.Bench)
			}
			if bb == nil || bb.Metrics[bl.Metric] == nil {
				fr.Baselines = append(fr.Baselines, BaselineResult{Name: bl.Name + " (not measured)"})
				continue
			}
			br := BaselineResult{Name: bl.Name, Value: bb.Metrics[bl.Metric], RatioUnits: bl.Ratio}
			if bl.Ratio == "none" {
				br.RatioUnits = ""
			} else if m := b.Metrics[bl.Ratio]; bl.Ratio != "" && m != nil {
				br.Ratio = m
			} else if br.Value.Median != 0 {
				v := fr.Value.Median / br.Value.Median
				br.Ratio, br.OfMedians = &Metric{Unit: "x", Values: []float64{v}, Median: v, Min: v, Max: v}, true
			}
			fr.Baselines = append(fr.Baselines, br)
		}
		r.Figures = append(r.Figures, fr)
	}
	return r
}

// JSON is latest.json.
func (r *Report) JSON() ([]byte, error) {
	b, err := json.MarshalIndent(r, "", "  ")
	return append(b, '\n'), err
}

// num formats a figure: integers with thousands separators, small values with 3 significant
// digits.
func num(v float64) string {
	switch {
	case math.IsNaN(v) || math.IsInf(v, 0):
		return fmt.Sprint(v)
	case math.Abs(v) >= 1000:
		s := fmt.Sprintf("%.0f", math.Abs(v))
		var out []byte
		for i := range len(s) {
			if i > 0 && (len(s)-i)%3 == 0 {
				out = append(out, ',')
			}
			out = append(out, s[i])
		}
		if v < 0 {
			return "-" + string(out)
		}
		return string(out)
	case v == math.Trunc(v):
		return fmt.Sprintf("%.0f", v)
	default:
		return fmt.Sprintf("%.3g", v)
	}
}

// spread is "median [min – max] (n runs)", or the value alone for one run.
func spread(m *Metric) string {
	if m == nil {
		return "—"
	}
	if len(m.Values) < 2 {
		return num(m.Median)
	}
	return fmt.Sprintf("%s [%s – %s] (%d runs)", num(m.Median), num(m.Min), num(m.Max), len(m.Values))
}

func anchor(plan string) string { return "plan-" + plan }

// Markdown is BENCHMARKS.md; beyond is the "Beyond one machine" text template (see
// beyond.tmpl), executed with the report and funcs metric, num, div and ceil.
func (r *Report) Markdown(beyond string) ([]byte, error) {
	var w bytes.Buffer
	p := func(format string, a ...any) { fmt.Fprintf(&w, format, a...) }
	p("# Benchmarks\n\n")
	p("Generated by `testharness/cmd/benchreport` from `go test -bench` output; do not edit by hand: ")
	p("`make bench` (full size) or `make bench-quick` (headline figures, ≤ 5 min) regenerates this file and ")
	p("[latest.json](latest.json). Figures come from a shared machine: read the ratios, each measured against ")
	p("its baseline in the same run; with `-count` repeats a figure is the median, with its range and run count.\n\n")
	p("- **Date:** %s\n- **Machine:** %s, %d cores, %s GiB, Linux %s, %s\n", r.Date, r.Machine.CPU, r.Machine.Cores, r.Machine.MemoryGiB, r.Machine.Kernel, r.Machine.Go)
	if r.Machine.LoadBefore != "" {
		p("- **Load average** (1 min) before / after the runs: %s / %s (on %d cores; other work depresses the rates, less the ratios)\n", r.Machine.LoadBefore, r.Machine.LoadAfter, r.Machine.Cores)
	}
	p("- **Commands:**\n\n```sh\n%s\n```\n\n", strings.Join(r.Commands, "\n"))

	p("## Issue 11 targets\n\n| # | target | benchmark · metric | target | measured | status |\n|---|---|---|---|---|---|\n")
	for _, t := range r.Targets {
		status := t.Status
		switch t.Status {
		case "missed":
			status = fmt.Sprintf("**missed** → [plan](#%s)", anchor(t.Plan))
		case "met":
			status = "met"
		case "not measured":
			status = "not measured: " + t.How
		}
		if t.Note != "" {
			status += " (" + t.Note + ")"
		}
		p("| %d | %s | `%s` · `%s` | %s %s | %s | %s |\n", t.ID, t.Goal, t.Bench, t.Metric, t.Op, num(t.Value), spread(t.Measured), status)
	}

	p("\n## Headline figures and their baselines\n\n| figure | value | baseline | baseline value | ratio |\n|---|---|---|---|---|\n")
	for _, f := range r.Figures {
		for i, b := range f.Baselines {
			title, val := "", ""
			if i == 0 {
				title, val = fmt.Sprintf("%s (`%s`)", f.Title, f.Bench), spread(f.Value)+" "+f.Value.Unit
			}
			ratio := spread(b.Ratio)
			if b.OfMedians {
				ratio += " (of medians)"
			} else if b.RatioUnits != "" && b.Ratio != nil {
				ratio += " (`" + b.RatioUnits + "`)"
			}
			bv := "—"
			if b.Value != nil {
				bv = spread(b.Value) + " " + b.Value.Unit
			}
			p("| %s | %s | %s | %s | %s |\n", title, val, b.Name, bv, ratio)
		}
	}

	p("\n## Every figure\n\nEvery metric every benchmark reported, by package (`ns/op` is left out where a benchmark zeroes it to report its own units).\n")
	pkg := ""
	for _, b := range r.Results.Benchmarks {
		if b.Package != pkg {
			pkg = b.Package
			p("\n### %s\n\n| benchmark | metric | median | min | max | runs |\n|---|---|---|---|---|---|\n", strings.TrimPrefix(pkg, "github.com/lanebridge/lanebridge/"))
		}
		for _, u := range b.Units() {
			m := b.Metrics[u]
			if u == "ns/op" && m.Max == 0 {
				continue
			}
			p("| `%s` | %s | %s | %s | %s | %d |\n", b.Name, u, num(m.Median), num(m.Min), num(m.Max), len(m.Values))
		}
	}

	p("\n## Beyond one machine\n\n")
	tmpl, err := template.New("beyond").Funcs(template.FuncMap{
		"metric": func(bench, unit string) float64 {
			if b := r.Results.Find("", bench); b != nil && b.Metrics[unit] != nil {
				return b.Metrics[unit].Median
			}
			return 0
		},
		"num":  num,
		"div":  func(a, b float64) float64 { return a / b },
		"ceil": math.Ceil,
	}).Parse(beyond)
	if err != nil {
		return nil, fmt.Errorf("beyond.tmpl: %w", err)
	}
	if err := tmpl.Execute(&w, r); err != nil {
		return nil, fmt.Errorf("beyond.tmpl: %w", err)
	}

	p("\n## Plans for missed targets\n\nWhat the profile says and what is planned, per target; the targets table links here.\n")
	seen := map[string]bool{}
	for _, t := range r.Targets {
		if seen[t.Plan] {
			continue
		}
		seen[t.Plan] = true
		p("\n<a id=\"%s\"></a>\n### Plan: %s\n\n%s", anchor(t.Plan), t.Plan, strings.TrimSpace(r.spec.Plans[t.Plan])+"\n")
	}
	return w.Bytes(), nil
}
