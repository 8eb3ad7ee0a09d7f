package capture

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
)

// TCPListen is a network printer tap: it accepts print jobs from the POS on Addr (port 9100 by
// convention), journals their bytes, and with Forward set relays them to the real printer.
//
// Relaying comes first: each read from the POS is written to the printer before its copy is
// masked and queued for the journal, so the tap adds only a memory copy to the print path. The
// printer's replies (status bytes) flow back to the POS unchanged and are not journaled. If the
// printer cannot be reached, the POS connection is closed, as the printer itself would refuse
// it. Connections are served one at a time, like a printer's port.
type TCPListen struct {
	Addr     string // host:port to listen on
	Forward  string // host:port of the real printer; empty: capture only
	Masker   *pan.Masker
	Masked   *atomic.Uint64 // optional: counts masked or removed lines
	Pipeline *Pipeline
	Log      *slog.Logger // required
	// DialTimeout bounds connecting to the printer (default 3s).
	DialTimeout time.Duration

	mu   sync.Mutex
	addr net.Addr
	up   chan struct{}
}

// ParseTCPListenURL reads tcp-listen://0.0.0.0:9100[?forward=host:9100].
func ParseTCPListenURL(u *url.URL, defPort int) (addr, forward string, err error) {
	addr = u.Host
	if addr == "" {
		return "", "", fmt.Errorf("source %q: no listen address (tcp-listen://0.0.0.0:9100)", u.Redacted())
	}
	if _, port, e := net.SplitHostPort(addr); e != nil || port == "" {
		if defPort == 0 {
			defPort = 9100
		}
		addr = net.JoinHostPort(u.Hostname(), fmt.Sprint(defPort))
	}
	for k := range u.Query() {
		if k != "forward" {
			return "", "", fmt.Errorf("source %q: unknown parameter %q (forward=host:port)", u.Redacted(), k)
		}
	}
	forward = u.Query().Get("forward")
	if forward != "" {
		if _, _, e := net.SplitHostPort(forward); e != nil {
			return "", "", fmt.Errorf("source %q: forward=%q is not host:port", u.Redacted(), forward)
		}
	}
	return addr, forward, nil
}

// ListenAddr returns the bound address once listening (tests listen on port 0).
func (t *TCPListen) ListenAddr(ctx context.Context) (net.Addr, error) {
	t.mu.Lock()
	if t.up == nil {
		t.up = make(chan struct{})
	}
	up := t.up
	t.mu.Unlock()
	select {
	case <-up:
		return t.addr, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// Stats returns the pipeline's counters.
func (t *TCPListen) Stats() Stats { return t.Pipeline.Stats() }

// Run listens and serves until ctx ends. A listen failure (address in use) is returned.
func (t *TCPListen) Run(ctx context.Context) error {
	if t.Log == nil {
		return errNoLogger
	}
	if t.DialTimeout <= 0 {
		t.DialTimeout = 3 * time.Second
	}
	log := t.Log.With("terminal", t.Pipeline.Terminal, "listen", t.Addr, "forward", t.Forward)
	var lerr error
	err := t.Pipeline.RunWith(ctx, func(ctx context.Context) { lerr = t.serve(ctx, log) })
	return errors.Join(lerr, err)
}

func (t *TCPListen) serve(ctx context.Context, log *slog.Logger) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", t.Addr)
	if err != nil {
		return fmt.Errorf("printer tap: listen %s: %w", t.Addr, err)
	}
	t.mu.Lock()
	t.addr = ln.Addr()
	if t.up == nil {
		t.up = make(chan struct{})
	}
	close(t.up)
	t.mu.Unlock()
	log.Info("printer tap listening", "addr", ln.Addr().String())
	go func() {
		<-ctx.Done()
		ln.Close()
	}()
	for {
		c, err := ln.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			log.Warn("accept failed", "err", err)
			if !sleep(ctx, 100*time.Millisecond) {
				return nil
			}
			continue
		}
		t.handle(ctx, c, log)
	}
}

// handle serves one print job connection.
func (t *TCPListen) handle(ctx context.Context, pos net.Conn, log *slog.Logger) {
	defer pos.Close()
	var printer net.Conn
	if t.Forward != "" {
		d := net.Dialer{Timeout: t.DialTimeout}
		var err error
		if printer, err = d.DialContext(ctx, "tcp", t.Forward); err != nil {
			log.Warn("printer unreachable; job refused", "err", err)
			return
		}
		defer printer.Close()
		// Printer → POS: status replies, unchanged.
		go func() {
			_, _ = io.Copy(pos, printer)
			if tc, ok := pos.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
		}()
	}
	stop := context.AfterFunc(ctx, func() { pos.SetReadDeadline(time.Now()) })
	defer stop()
	lm := newLineMasker(t.Masker, t.Masked, t.Pipeline.Profile)
	buf := make([]byte, 32<<10)
	for {
		n, rerr := pos.Read(buf)
		if n > 0 {
			if printer != nil {
				if _, err := printer.Write(buf[:n]); err != nil {
					log.Warn("printer relay failed; capturing only", "err", err)
					printer.Close()
					printer = nil
					// Keep capturing what the POS sends: it was sent to print.
				}
			}
			if out := lm.Write(buf[:n]); len(out) > 0 {
				if err := t.Pipeline.Submit(context.Background(), Input{Data: out}); err != nil {
					return
				}
			}
		}
		if rerr != nil {
			break
		}
	}
	if out := lm.Flush(); len(out) > 0 {
		_ = t.Pipeline.Submit(context.Background(), Input{Data: out})
	}
	if tc, ok := printer.(*net.TCPConn); ok && printer != nil {
		_ = tc.CloseWrite() // end of job; replies may still come back
	}
}
