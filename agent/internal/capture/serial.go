package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/tarm/serial"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/agent/internal/profile"
)

// Port is a serial port as a tap sees it: it is only ever read. Read may return (0, nil) or
// io.EOF when its timeout passes without data (tarm/serial does the former on Windows and the
// latter on Linux); both mean "no data yet". Close unblocks nothing: callers rely on the read
// timeout. A Port is used by one goroutine.
type Port interface {
	Read(p []byte) (int, error)
	Close() error
}

// SerialConfig is a port and its line settings.
type SerialConfig struct {
	Name     string // /dev/ttyS0, COM3, \\.\COM10
	Baud     int
	DataBits int
	Parity   string // none, odd, even, mark, space
	StopBits int    // 1 or 2
}

// OpenPort opens a port; it is a variable so tests can replace it.
type OpenPort func(SerialConfig) (Port, error)

// OpenTarm opens a port with github.com/tarm/serial and a 200 ms read timeout.
func OpenTarm(c SerialConfig) (Port, error) {
	par := map[string]serial.Parity{"none": serial.ParityNone, "odd": serial.ParityOdd, "even": serial.ParityEven, "mark": serial.ParityMark, "space": serial.ParitySpace}[c.Parity]
	p, err := serial.OpenPort(&serial.Config{
		Name: c.Name, Baud: c.Baud, Size: byte(c.DataBits), Parity: par,
		StopBits: serial.StopBits(c.StopBits), ReadTimeout: 200 * time.Millisecond,
	})
	if err != nil {
		return nil, err
	}
	return p, nil
}

// ParseSerialURL reads serial:///dev/ttyS0?baud=9600&parity=none&data_bits=8&stop_bits=1 (or
// serial://COM3?…) with the profile's transport settings as defaults.
func ParseSerialURL(u *url.URL, t profile.Transport) (SerialConfig, error) {
	c := SerialConfig{Baud: t.Baud, DataBits: t.DataBits, Parity: strings.ToLower(t.Parity), StopBits: t.StopBits}
	switch {
	case u.Host != "" && u.Path == "":
		c.Name = u.Host // serial://COM3
	case u.Host == "" && len(u.Path) > 1 && isCOM(u.Path[1:]):
		c.Name = u.Path[1:] // serial:///COM3
	default:
		c.Name = u.Host + u.Path
	}
	if u.Opaque != "" {
		c.Name = u.Opaque // serial:COM3
	}
	if c.Name == "" {
		return c, fmt.Errorf("source %q: no port (serial:///dev/ttyS0 or serial://COM3)", u.Redacted())
	}
	if isCOM(c.Name) {
		if n, _ := strconv.Atoi(strings.TrimPrefix(strings.ToUpper(c.Name), "COM")); n >= 10 {
			c.Name = `\\.\` + strings.ToUpper(c.Name) // COM10 and up need the device namespace
		}
	}
	q := u.Query()
	for k := range q {
		switch k {
		case "baud", "parity", "data_bits", "stop_bits":
		default:
			return c, fmt.Errorf("source %q: unknown parameter %q (baud, parity, data_bits, stop_bits)", u.Redacted(), k)
		}
	}
	num := func(key string, dst *int) error {
		if v := q.Get(key); v != "" {
			n, err := strconv.Atoi(v)
			if err != nil || n <= 0 {
				return fmt.Errorf("source %q: %s=%q is not a positive number", u.Redacted(), key, v)
			}
			*dst = n
		}
		return nil
	}
	if err := errors.Join(num("baud", &c.Baud), num("data_bits", &c.DataBits), num("stop_bits", &c.StopBits)); err != nil {
		return c, err
	}
	if v := q.Get("parity"); v != "" {
		c.Parity = strings.ToLower(v)
	}
	if c.Baud == 0 {
		c.Baud = 9600
	}
	if c.DataBits == 0 {
		c.DataBits = 8
	}
	if c.StopBits == 0 {
		c.StopBits = 1
	}
	if c.Parity == "" {
		c.Parity = "none"
	}
	switch c.Parity {
	case "none", "odd", "even", "mark", "space":
	default:
		return c, fmt.Errorf("source %q: parity %q (none, odd, even, mark, space)", u.Redacted(), c.Parity)
	}
	if c.DataBits < 5 || c.DataBits > 8 {
		return c, fmt.Errorf("source %q: data_bits %d (5..8)", u.Redacted(), c.DataBits)
	}
	if c.StopBits != 1 && c.StopBits != 2 {
		return c, fmt.Errorf("source %q: stop_bits %d (1 or 2)", u.Redacted(), c.StopBits)
	}
	return c, nil
}

func isCOM(s string) bool {
	s = strings.ToUpper(s)
	if !strings.HasPrefix(s, "COM") || len(s) < 4 {
		return false
	}
	_, err := strconv.Atoi(s[3:])
	return err == nil
}

// Serial taps a serial line passively: it never writes to the port. Bytes are masked line-wise
// and handed to the pipeline. A port that cannot be opened or fails while reading is retried
// with backoff (1 s doubling to 30 s) and reported in the log and in Stats; it is never fatal.
type Serial struct {
	Config    SerialConfig
	Open      OpenPort // default OpenTarm
	Masker    *pan.Masker
	Masked    *atomic.Uint64 // optional: counts masked or removed lines
	Pipeline  *Pipeline
	IdleFlush time.Duration // a partial line is masked and journaled after this gap (default 1s)
	Log       *slog.Logger  // required

	up        atomic.Bool
	reopens   atomic.Uint64
	lastError atomic.Pointer[string]
}

// PortUp reports whether the port is open, how often it was (re)opened after a failure, and the
// last error.
func (s *Serial) PortUp() (up bool, reopens uint64, lastErr string) {
	if e := s.lastError.Load(); e != nil {
		lastErr = *e
	}
	return s.up.Load(), s.reopens.Load(), lastErr
}

// Stats returns the pipeline's counters.
func (s *Serial) Stats() Stats { return s.Pipeline.Stats() }

// Run reads the port and runs the pipeline until ctx ends.
func (s *Serial) Run(ctx context.Context) error {
	if s.Log == nil {
		return errNoLogger
	}
	if s.Open == nil {
		s.Open = OpenTarm
	}
	if s.IdleFlush <= 0 {
		s.IdleFlush = time.Second
	}
	log := s.Log.With("terminal", s.Pipeline.Terminal, "port", s.Config.Name)
	return s.Pipeline.RunWith(ctx, func(ctx context.Context) { s.read(ctx, log) })
}

func (s *Serial) read(ctx context.Context, log *slog.Logger) {
	lm := newLineMasker(s.Masker, s.Masked, s.Pipeline.Profile)
	backoff := time.Second
	buf := make([]byte, 4096)
	for ctx.Err() == nil {
		port, err := s.Open(s.Config)
		if err != nil {
			s.fail(log, "open port failed; retrying", err, backoff)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 30*time.Second)
			continue
		}
		if s.reopens.Load() > 0 || s.lastError.Load() != nil {
			log.Info("port open again", "reopens", s.reopens.Load())
		}
		s.up.Store(true)
		backoff = time.Second
		last := time.Now()
		for ctx.Err() == nil {
			n, err := port.Read(buf)
			if n > 0 {
				last = time.Now()
				if out := lm.Write(buf[:n]); len(out) > 0 {
					if s.Pipeline.Submit(ctx, Input{Data: out}) != nil {
						break
					}
				}
				continue
			}
			if err != nil && !errors.Is(err, io.EOF) {
				// Windows returns (0, nil) on timeout and Linux io.EOF; anything else is the
				// port going away (USB adapter unplugged).
				if out := lm.Flush(); len(out) > 0 {
					_ = s.Pipeline.Submit(ctx, Input{Data: out})
				}
				s.fail(log, "port failed; reopening", err, backoff)
				break
			}
			if lm.Pending() && time.Since(last) >= s.IdleFlush {
				// Only up to where no card data can span: a device pausing inside a card
				// number or between a CVV label and its code must not split them.
				if out := lm.FlushIdle(); len(out) > 0 {
					_ = s.Pipeline.Submit(ctx, Input{Data: out})
				}
			}
			if n == 0 && err == nil && runtime.GOOS != "windows" {
				// A (0, nil) read that does not block would spin: pace it.
				sleep(ctx, 50*time.Millisecond)
			}
		}
		port.Close()
		s.up.Store(false)
		if ctx.Err() == nil {
			s.reopens.Add(1)
			if !sleep(ctx, backoff) {
				return
			}
			backoff = min(backoff*2, 30*time.Second)
		}
	}
	if out := lm.Flush(); len(out) > 0 {
		// Stopping: the pipeline journals this before it stops.
		_ = s.Pipeline.Submit(context.Background(), Input{Data: out})
	}
}

func (s *Serial) fail(log *slog.Logger, msg string, err error, backoff time.Duration) {
	e := err.Error()
	if old := s.lastError.Swap(&e); old == nil || *old != e {
		log.Warn(msg, "err", err, "retry_in", backoff)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}
