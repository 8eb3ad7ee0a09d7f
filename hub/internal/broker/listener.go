package broker

import (
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/mochi-mqtt/server/v2/listeners"
)

// defaultConnectTimeout is how long a new connection may take to finish TLS and send CONNECT. mochi
// itself sets no deadline before CONNECT; after it, mochi applies the client's keepalive.
const defaultConnectTimeout = 30 * time.Second

// listener is a TCP (optionally TLS) listener for mochi that, unlike listeners.TCP, puts a
// deadline on the CONNECT, keeps accepting after transient errors, reports its real address
// for ":0", and on Close closes and waits for every connection it accepted.
type listener struct {
	id   string
	addr string
	tls  *tls.Config
	log  *slog.Logger
	// connectTimeout is the deadline for TLS and CONNECT (defaultConnectTimeout).
	connectTimeout time.Duration

	mu     sync.Mutex
	ln     net.Listener
	conns  map[net.Conn]struct{}
	closed bool
	wg     sync.WaitGroup // one per accepted connection, plus Serve itself
}

var _ listeners.Listener = (*listener)(nil)

func newListener(id, addr string, tlsConf *tls.Config) *listener {
	return &listener{id: id, addr: addr, tls: tlsConf, connectTimeout: defaultConnectTimeout, conns: make(map[net.Conn]struct{})}
}

func (l *listener) ID() string { return l.id }

func (l *listener) Protocol() string {
	if l.tls != nil {
		return "tls"
	}
	return "tcp"
}

// Address returns the bound address once Init has run, else the configured one.
func (l *listener) Address() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ln != nil {
		return l.ln.Addr().String()
	}
	return l.addr
}

// Init binds the address.
func (l *listener) Init(log *slog.Logger) error {
	ln, err := net.Listen("tcp", l.addr)
	if err != nil {
		return fmt.Errorf("listen on %s: %w", l.addr, err)
	}
	if l.tls != nil {
		ln = tls.NewListener(ln, l.tls)
	}
	l.mu.Lock()
	l.log, l.ln = log, ln
	l.mu.Unlock()
	return nil
}

// Serve accepts connections until Close and hands each to establish on its own goroutine.
func (l *listener) Serve(establish listeners.EstablishFn) {
	l.mu.Lock()
	if l.closed || l.ln == nil {
		l.mu.Unlock()
		return
	}
	l.wg.Add(1)
	ln := l.ln
	l.mu.Unlock()
	defer l.wg.Done()

	var backoff time.Duration
	for {
		conn, err := ln.Accept()
		if err != nil {
			if errors.Is(err, net.ErrClosed) || l.isClosed() {
				return
			}
			// EMFILE and the like: wait and retry rather than stop serving for good.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			l.log.Error("accept failed; retrying", slog.Any("err", err), slog.Duration("backoff", backoff))
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		if !l.track(conn) {
			_ = conn.Close()
			return
		}
		_ = conn.SetDeadline(time.Now().Add(l.connectTimeout))
		go func() {
			defer l.untrack(conn)
			if err := establish(l.id, conn); err != nil {
				l.log.Debug("mqtt connection ended", slog.String("remote", conn.RemoteAddr().String()), slog.Any("err", err))
			}
		}()
	}
}

func (l *listener) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

func (l *listener) track(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return false
	}
	l.conns[c] = struct{}{}
	l.wg.Add(1)
	return true
}

func (l *listener) untrack(c net.Conn) {
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
	_ = c.Close()
	l.wg.Done()
}

// Close stops accepting, lets mochi disconnect its clients, closes whatever connections are
// left (those still before or inside CONNECT) and waits for all connection goroutines.
func (l *listener) Close(closeClients listeners.CloseFn) {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	ln := l.ln
	l.mu.Unlock()

	if ln != nil {
		_ = ln.Close()
	}
	closeClients(l.id)

	l.mu.Lock()
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}
