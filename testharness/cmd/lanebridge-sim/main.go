// Command lanebridge-sim simulates POS terminals: it writes canonical records to a file at a
// chosen rate and mix (the input of the canonical-jsonl profile).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/lanebridge/lanebridge/testharness/sim"
)

const usage = `lanebridge-sim — POS terminal simulator

Usage:
  lanebridge-sim jsonl --out FILE [--terminal T1] [--date YYYY-MM-DD] [--count N] [--rate R/s]
                       [--mix sale=85,return=6,void=4,no_sale=3,paid_out=2] [--seed S] [--first-receipt N]
                       [--totals FILE]
  lanebridge-sim fanin [--hub bin/lanebridge-hub] [--stores 1000] [--rate 10] [--duration 10m]
                       [--dir DIR] [--pprof ADDR] [--drain-timeout 60s]
  lanebridge-sim channel --kind shopify|amazon --token T --skus A,B [--listen 127.0.0.1:PORT]
                       (a SIMULATOR of the channel's stock API; GET /_sim/shown?sku=A reads it)

Writes one canonical record per line, appending to FILE and fsyncing after each burst; with
--count 0 it runs until interrupted. --totals writes per-kind counts and sums as JSON when done.
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) >= 1 && args[0] == "fanin" {
		return runFanin(args[1:], stdout, stderr)
	}
	if len(args) >= 1 && args[0] == "channel" {
		return runChannel(args[1:], stdout, stderr)
	}
	if len(args) >= 1 && args[0] == "terminal" {
		return runTerminal(args[1:], stdout, stderr)
	}
	if len(args) < 1 || args[0] != "jsonl" {
		fmt.Fprint(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("jsonl", flag.ContinueOnError)
	out := fs.String("out", "", "file to append to")
	term := fs.String("terminal", "T1", "terminal id")
	date := fs.String("date", time.Now().Format("2006-01-02"), "business date")
	count := fs.Int("count", 1000, "records to write (0 = until interrupted)")
	rate := fs.Float64("rate", 100, "records per second (0 = as fast as possible)")
	mixS := fs.String("mix", "", "kind weights")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed")
	first := fs.Int("first-receipt", 1, "first receipt number")
	totalsPath := fs.String("totals", "", "write totals JSON here when done")
	skipS := fs.String("skip-receipt", "", "receipt numbers never written, comma-separated (a gap the close finds)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	skip := map[string]bool{}
	for _, n := range strings.FieldsFunc(*skipS, func(r rune) bool { return r == ',' }) {
		if v, err := strconv.Atoi(strings.TrimSpace(n)); err != nil || v < 1 {
			fmt.Fprintf(stderr, "lanebridge-sim: --skip-receipt: %q is not a receipt number\n", n)
			return 2
		}
		skip[strings.TrimSpace(n)] = true
	}
	if *out == "" {
		fmt.Fprintln(stderr, "lanebridge-sim: --out is required")
		return 2
	}
	var mix sim.Mix
	if *mixS != "" {
		var err error
		if mix, err = sim.ParseMix(*mixS); err != nil {
			fmt.Fprintln(stderr, "lanebridge-sim:", err)
			return 2
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f, err := os.OpenFile(*out, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(stderr, "lanebridge-sim:", err)
		return 1
	}
	defer f.Close()
	g := sim.New(*term, *date, *seed, mix, *first)
	var tot sim.Totals
	start := time.Now()
	buf := make([]byte, 0, 64<<10)
	flush := func() error {
		if len(buf) == 0 {
			return nil
		}
		if _, err := f.Write(buf); err != nil {
			return err
		}
		buf = buf[:0]
		return f.Sync()
	}
	for i := 0; *count == 0 || i < *count; i++ {
		if ctx.Err() != nil {
			break
		}
		r := g.Next()
		if !skip[r.Receipt] {
			tot.Add(r)
			b, _ := json.Marshal(r)
			buf = append(append(buf, b...), '\n')
		}
		if *rate > 0 {
			due := start.Add(time.Duration(float64(i+1) / *rate * float64(time.Second)))
			if d := time.Until(due); d > 0 {
				if err := flush(); err != nil {
					fmt.Fprintln(stderr, "lanebridge-sim:", err)
					return 1
				}
				select {
				case <-time.After(d):
				case <-ctx.Done():
				}
			}
		}
		if len(buf) > 60<<10 {
			if err := flush(); err != nil {
				fmt.Fprintln(stderr, "lanebridge-sim:", err)
				return 1
			}
		}
	}
	if err := flush(); err != nil {
		fmt.Fprintln(stderr, "lanebridge-sim:", err)
		return 1
	}
	if *totalsPath != "" {
		b, _ := json.MarshalIndent(tot, "", "  ")
		if err := os.WriteFile(*totalsPath, b, 0o644); err != nil {
			fmt.Fprintln(stderr, "lanebridge-sim:", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "wrote %d records to %s\n", tot.N, *out)
	return 0
}
