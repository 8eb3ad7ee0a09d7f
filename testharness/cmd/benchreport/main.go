// Command benchreport writes the benchmark report (testharness/bench/BENCHMARKS.md and
// latest.json) from `go test -bench` output: it runs the given commands (each through bash,
// their output shown as it comes and kept), or reads saved output, then judges issue 11's
// targets declared in testharness/bench/targets.yaml.
//
//	benchreport --out testharness/bench --run 'go test -run ^$ -bench . ./agent/...' [--run ...]
//	benchreport --out testharness/bench --in bench.txt --command 'what produced bench.txt'
package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/testharness/bench"
)

type list []string

func (l *list) String() string     { return strings.Join(*l, "; ") }
func (l *list) Set(s string) error { *l = append(*l, s); return nil }

func main() {
	if err := run(os.Args[1:], os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "benchreport:", err)
		os.Exit(1)
	}
}

func run(args []string, log io.Writer) error {
	fs := flag.NewFlagSet("benchreport", flag.ContinueOnError)
	var runs, commands list
	fs.Var(&runs, "run", "a command to run through bash and read (repeatable, run in order)")
	in := fs.String("in", "", "read saved go test -bench output from this file instead of running commands")
	fs.Var(&commands, "command", "with --in: the command(s) that produced it, for the report (repeatable)")
	out := fs.String("out", "testharness/bench", "directory of targets.yaml and beyond.tmpl, and where BENCHMARKS.md and latest.json are written")
	keep := fs.String("keep", "", "also save the raw benchmark output to this file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if (*in == "") == (len(runs) == 0) {
		return errors.New("give either --run (one or more) or --in")
	}
	spec, err := readSpec(*out)
	if err != nil {
		return err
	}
	beyond, err := os.ReadFile(filepath.Join(*out, "beyond.tmpl"))
	if err != nil {
		return fmt.Errorf("read the Beyond one machine template: %w (it lives next to targets.yaml)", err)
	}
	var output bytes.Buffer
	var failed []string
	loadBefore := bench.LoadAverage()
	if *in != "" {
		b, err := os.ReadFile(*in)
		if err != nil {
			return fmt.Errorf("read --in: %w", err)
		}
		output.Write(b)
		runs = commands
	} else {
		for _, c := range runs {
			fmt.Fprintf(log, "benchreport: running %s\n", c)
			cmd := exec.Command("bash", "-c", c)
			cmd.Stdout = io.MultiWriter(&output, log)
			cmd.Stderr = log
			if err := cmd.Run(); err != nil {
				failed = append(failed, fmt.Sprintf("%s: %v", c, err))
			}
		}
	}
	if *keep != "" {
		if err := os.WriteFile(*keep, output.Bytes(), 0o644); err != nil {
			return fmt.Errorf("write --keep: %w", err)
		}
	}
	res, err := bench.Parse(&output)
	if err != nil {
		return err
	}
	if len(res.Benchmarks) == 0 {
		return errors.New("no benchmark results in the output")
	}
	goVersion, _ := exec.Command("go", "env", "GOVERSION").Output()
	m := bench.ThisMachine(strings.TrimSpace(string(goVersion)))
	if *in == "" {
		m.LoadBefore, m.LoadAfter = loadBefore, bench.LoadAverage()
	}
	rep := bench.NewReport(spec, res, m, time.Now(), runs)
	md, err := rep.Markdown(string(beyond))
	if err != nil {
		return err
	}
	js, err := rep.JSON()
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "BENCHMARKS.md"), md, 0o644); err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(*out, "latest.json"), js, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(log, "benchreport: wrote %s and %s (%d benchmarks)\n", filepath.Join(*out, "BENCHMARKS.md"), filepath.Join(*out, "latest.json"), len(res.Benchmarks))
	if len(failed) > 0 {
		// The figures that were measured are written all the same; the failure is not hidden.
		return fmt.Errorf("%d benchmark command(s) failed, their figures are missing:\n  %s", len(failed), strings.Join(failed, "\n  "))
	}
	return nil
}

func readSpec(dir string) (*bench.Spec, error) {
	b, err := os.ReadFile(filepath.Join(dir, "targets.yaml"))
	if err != nil {
		return nil, fmt.Errorf("read targets: %w", err)
	}
	return bench.LoadSpec(b)
}
