package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/lanebridge/lanebridge/testharness/terminal"
)

const terminalUsage = `lanebridge-sim terminal --profile NAME --out serial:///dev/pts/N | tcp://host:port | file://path
        [--terminal ID] [--date YYYY-MM-DD] [--count N] [--rate R/s] [--noise P] [--seed S] [--totals FILE]
        [--skus SKU,SKU,...]

Writes a day of N transactions and a closing Z report in the profile's format (profiles:
sharp-journal, casio-journal, epson-tm-escpos). --noise P damages that share of transactions
(line noise, dropped bytes, reboots mid-receipt). --totals writes the expected totals as JSON.
--skus prints each item's article number (epson-tm-escpos only): item N is the Nth SKU, cycling.
`

func runTerminal(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("terminal", flag.ContinueOnError)
	fs.SetOutput(stderr)
	prof := fs.String("profile", "", "profile whose format to write")
	out := fs.String("out", "", "serial:///dev/pts/N, tcp://host:port or file://path")
	term := fs.String("terminal", "", "terminal id as printed (default per profile)")
	date := fs.String("date", time.Now().Format("2006-01-02"), "business date")
	count := fs.Int("count", 200, "transactions before the Z report")
	rate := fs.Float64("rate", 20, "transactions per second (0 = as fast as possible)")
	noise := fs.Float64("noise", 0, "share of damaged transactions (0..1)")
	seed := fs.Uint64("seed", uint64(time.Now().UnixNano()), "random seed")
	totals := fs.String("totals", "", "write expected totals JSON here")
	skus := fs.String("skus", "", "comma-separated SKUs printed as PLU lines under items (epson-tm-escpos)")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *prof == "" || *out == "" {
		fmt.Fprint(stderr, terminalUsage)
		return 2
	}
	if *term == "" {
		*term = map[string]string{"sharp-journal": "000101", "casio-journal": "C01", "epson-tm-escpos": "REG01"}[*prof]
	}
	g, err := terminal.New(*prof, *term, *date, *seed, *noise)
	if err != nil {
		fmt.Fprintln(stderr, "lanebridge-sim:", err)
		return 2
	}
	if *skus != "" {
		if err := g.SetSKUs(strings.Split(*skus, ",")); err != nil {
			fmt.Fprintln(stderr, "lanebridge-sim:", err)
			return 2
		}
	}
	w, err := openOut(*out)
	if err != nil {
		fmt.Fprintln(stderr, "lanebridge-sim:", err)
		return 1
	}
	defer w.Close()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	start := time.Now()
	for i := 0; i < *count && ctx.Err() == nil; i++ {
		if _, err := w.Write(g.Next()); err != nil {
			fmt.Fprintln(stderr, "lanebridge-sim: write:", err)
			return 1
		}
		if *rate > 0 {
			time.Sleep(time.Until(start.Add(time.Duration(float64(i+1) / *rate * float64(time.Second)))))
		}
	}
	if _, err := w.Write(g.Z()); err != nil {
		fmt.Fprintln(stderr, "lanebridge-sim: write:", err)
		return 1
	}
	if *totals != "" {
		b, _ := json.MarshalIndent(g.Expected(), "", "  ")
		if err := os.WriteFile(*totals, b, 0o644); err != nil {
			fmt.Fprintln(stderr, "lanebridge-sim:", err)
			return 1
		}
	}
	fmt.Fprintf(stdout, "%s: %d transactions and a Z report written to %s\n", *prof, *count, *out)
	return 0
}

// openOut opens the output: a serial device (e.g. a pseudo-terminal's /dev/pts/N), a TCP
// connection (a printer port) or a file (appended).
func openOut(s string) (io.WriteCloser, error) {
	u, err := url.Parse(s)
	if err != nil {
		return nil, err
	}
	switch u.Scheme {
	case "serial":
		return os.OpenFile(u.Host+u.Path, os.O_WRONLY|syscall.O_NOCTTY, 0)
	case "tcp":
		c, err := net.DialTimeout("tcp", u.Host, 5*time.Second)
		if err != nil {
			return nil, err
		}
		return printerConn{c.(*net.TCPConn)}, nil
	case "file":
		return os.OpenFile(u.Host+u.Path, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	}
	return nil, fmt.Errorf("--out %q: use serial://, tcp:// or file://", s)
}

// printerConn ends a print job the way a print driver does: it half-closes and reads the
// printer's status replies until the printer closes. Closing with unread replies would make
// the kernel reset the connection, and the printer (or a tap in front of it) would lose the
// end of the job still in its receive buffer.
type printerConn struct{ *net.TCPConn }

func (c printerConn) Close() error {
	if err := c.CloseWrite(); err != nil {
		c.TCPConn.Close()
		return err
	}
	c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c.TCPConn)
	return errors.Join(err, c.TCPConn.Close())
}
