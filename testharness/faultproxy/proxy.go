// Package faultproxy is a fault-injecting TCP proxy for tests, in the manner of toxiproxy: it
// sits between a client and a server on the loopback interface and, on command, adds latency
// and jitter, limits bandwidth, cuts every connection (at once or after a number of bytes, so in
// the middle of a packet), stops forwarding without closing anything (a half-open link, a
// blackhole) or drops whole MQTT packets flowing in one direction.
//
// # Basics
//
// [New] listens on a loopback address and forwards each accepted connection to the target.
// Toxics are set on the [Proxy] and apply at once to every connection, existing and new; the
// methods are safe for concurrent use. Data moves in chunks: a chunk is what one read returned
// or, with [Options.MQTT], one whole MQTT control packet. Each chunk waits for the link to be
// open (not blackholed), then for its latency, may be dropped, is counted against a cut budget,
// and is written at the bandwidth limit.
//
// # Caveats
//
//   - Latency applies per chunk and in order, as in toxiproxy: it also lowers throughput.
//   - Dropping needs [Options.MQTT], since dropping part of a byte stream would desynchronise
//     the peer's framing rather than lose a message.
//   - Only loopback addresses are accepted, for the listener and the target.
package faultproxy

import (
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"sync"
	"sync/atomic"
	"time"
)

// Direction names one half of a proxied connection.
type Direction int

const (
	// Up is client → target.
	Up Direction = iota
	// Down is target → client.
	Down
)

func (d Direction) String() string {
	if d == Up {
		return "up"
	}
	return "down"
}

// DropFunc decides whether a whole MQTT packet (fixed header included) is dropped.
type DropFunc func(packet []byte) bool

// DropMQTTPublish drops PUBLISH packets and lets every other packet (PUBACK, PINGRESP, ...) through.
func DropMQTTPublish(packet []byte) bool { return len(packet) > 0 && packet[0]>>4 == 3 }

// Options configure a proxy.
type Options struct {
	// Listen is the loopback address to listen on; "" means 127.0.0.1:0.
	Listen string
	// Target is the loopback address every connection is forwarded to.
	Target string
	// MQTT makes chunks whole MQTT control packets, which SetDrop needs.
	MQTT bool
}

// Stats counts what the proxy did.
type Stats struct {
	Accepted         int64
	Cut              int64 // connections closed by CutAll or CutAfter
	BytesUp          int64 // bytes written to the target
	BytesDown        int64 // bytes written to the client
	DroppedUp        int64 // packets dropped client → target
	DroppedDown      int64 // packets dropped target → client
	ActiveLinks      int
	BlackholedChunks int64 // chunks that had to wait for a blackhole to lift
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	opts Options
	ln   net.Listener
	wg   sync.WaitGroup

	mu        sync.Mutex
	links     map[*link]struct{}
	latency   time.Duration
	jitter    time.Duration
	bandwidth int64         // bytes per second per direction and link; 0 = unlimited
	open      chan struct{} // closed while not blackholed
	cutDir    Direction
	cutLeft   int64 // bytes left before a cut; < 0 = no cut armed
	drop      [2]DropFunc
	closed    bool

	accepted, cut, blackholed atomic.Int64
	bytes, dropped            [2]atomic.Int64
}

type link struct {
	client, target net.Conn
	done           chan struct{}
	once           sync.Once
}

func (l *link) close() {
	l.once.Do(func() {
		close(l.done)
		l.client.Close()
		l.target.Close()
	})
}

// ErrNotLoopback is returned by New for a listen or target address off the loopback interface.
var ErrNotLoopback = errors.New("faultproxy: only loopback addresses are allowed")

// New starts a proxy listening on opts.Listen and forwarding to opts.Target.
func New(opts Options) (*Proxy, error) {
	if opts.Listen == "" {
		opts.Listen = "127.0.0.1:0"
	}
	for _, a := range []string{opts.Listen, opts.Target} {
		if err := checkLoopback(a); err != nil {
			return nil, err
		}
	}
	ln, err := net.Listen("tcp", opts.Listen)
	if err != nil {
		return nil, fmt.Errorf("faultproxy: listen %s: %w", opts.Listen, err)
	}
	open := make(chan struct{})
	close(open)
	p := &Proxy{opts: opts, ln: ln, links: map[*link]struct{}{}, open: open, cutLeft: -1}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

func checkLoopback(addr string) error {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("faultproxy: address %q: %w", addr, err)
	}
	ip := net.ParseIP(host)
	if host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return fmt.Errorf("%w: %q", ErrNotLoopback, addr)
	}
	return nil
}

// Addr is the proxy's listening address (host:port).
func (p *Proxy) Addr() string { return p.ln.Addr().String() }

// Close stops listening, closes every connection and waits for the proxy's goroutines.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	err := p.ln.Close()
	p.CutAll()
	p.wg.Wait()
	return err
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.accepted.Add(1)
		t, err := net.DialTimeout("tcp", p.opts.Target, 5*time.Second)
		if err != nil {
			c.Close()
			continue
		}
		l := &link{client: c, target: t, done: make(chan struct{})}
		p.mu.Lock()
		if p.closed {
			p.mu.Unlock()
			l.close()
			return
		}
		p.links[l] = struct{}{}
		p.mu.Unlock()
		p.wg.Add(2)
		go p.pump(l, Up, c, t)
		go p.pump(l, Down, t, c)
	}
}

// SetLatency delays every chunk by latency plus a uniform random extra in [0, jitter).
func (p *Proxy) SetLatency(latency, jitter time.Duration) {
	p.mu.Lock()
	p.latency, p.jitter = latency, jitter
	p.mu.Unlock()
}

// SetBandwidth limits each direction of each connection to bytesPerSecond (0: unlimited).
func (p *Proxy) SetBandwidth(bytesPerSecond int64) {
	p.mu.Lock()
	p.bandwidth = bytesPerSecond
	p.mu.Unlock()
}

// SetBlackhole stops (true) or resumes (false) all forwarding in both directions without
// closing any connection: a half-open link. New connections are accepted but carry nothing.
func (p *Proxy) SetBlackhole(on bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	select {
	case <-p.open:
		if on {
			p.open = make(chan struct{})
		}
	default:
		if !on {
			close(p.open)
		}
	}
}

// SetDrop drops, in direction dir, every MQTT packet for which f returns true (nil: stop
// dropping). It needs Options.MQTT.
func (p *Proxy) SetDrop(dir Direction, f DropFunc) error {
	if !p.opts.MQTT && f != nil {
		return errors.New("faultproxy: SetDrop needs Options.MQTT")
	}
	p.mu.Lock()
	p.drop[dir] = f
	p.mu.Unlock()
	return nil
}

// CutAll closes both sides of every connection now and returns how many there were.
func (p *Proxy) CutAll() int {
	p.mu.Lock()
	ls := make([]*link, 0, len(p.links))
	for l := range p.links {
		ls = append(ls, l)
	}
	p.mu.Unlock()
	for _, l := range ls {
		l.close()
	}
	p.cut.Add(int64(len(ls)))
	return len(ls)
}

// CutAfter arms a cut: once n more bytes have been forwarded in direction dir (over all
// connections), the chunk that crosses the budget is written only up to it and every
// connection is closed, so the peer sees a packet end in the middle. One cut is armed at a time.
func (p *Proxy) CutAfter(dir Direction, n int64) {
	p.mu.Lock()
	p.cutDir, p.cutLeft = dir, n
	p.mu.Unlock()
}

// CutArmed reports whether a CutAfter has not fired yet.
func (p *Proxy) CutArmed() bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cutLeft >= 0
}

// Clear removes every toxic: no latency, no bandwidth limit, no blackhole, no drop, no armed cut.
func (p *Proxy) Clear() {
	p.SetLatency(0, 0)
	p.SetBandwidth(0)
	p.SetBlackhole(false)
	p.SetDrop(Up, nil)
	p.SetDrop(Down, nil)
	p.mu.Lock()
	p.cutLeft = -1
	p.mu.Unlock()
}

// Stats returns the counters.
func (p *Proxy) Stats() Stats {
	p.mu.Lock()
	n := len(p.links)
	p.mu.Unlock()
	return Stats{
		Accepted: p.accepted.Load(), Cut: p.cut.Load(),
		BytesUp: p.bytes[Up].Load(), BytesDown: p.bytes[Down].Load(),
		DroppedUp: p.dropped[Up].Load(), DroppedDown: p.dropped[Down].Load(),
		ActiveLinks: n, BlackholedChunks: p.blackholed.Load(),
	}
}

// pump moves chunks from src to dst until either side fails or the link is cut.
func (p *Proxy) pump(l *link, dir Direction, src, dst net.Conn) {
	defer p.wg.Done()
	defer func() {
		l.close()
		p.mu.Lock()
		delete(p.links, l)
		p.mu.Unlock()
	}()
	var next func() ([]byte, error)
	if p.opts.MQTT {
		fr := &mqttReader{r: src}
		next = fr.next
	} else {
		buf := make([]byte, 32<<10)
		next = func() ([]byte, error) {
			n, err := src.Read(buf)
			if n > 0 {
				return buf[:n], nil
			}
			return nil, err
		}
	}
	for {
		if !p.waitOpen(l, false) {
			return
		}
		chunk, err := next()
		if err != nil {
			return
		}
		if !p.waitOpen(l, true) {
			return
		}
		p.mu.Lock()
		delay := p.latency
		if p.jitter > 0 {
			delay += rand.N(p.jitter)
		}
		p.mu.Unlock()
		if delay > 0 && !sleep(l, delay) {
			return
		}
		p.mu.Lock()
		drop := p.drop[dir]
		p.mu.Unlock()
		if drop != nil && drop(chunk) {
			p.dropped[dir].Add(1)
			continue
		}
		// The cut budget is taken under the lock so that concurrent links share it exactly.
		cutNow := false
		p.mu.Lock()
		if p.cutLeft >= 0 && p.cutDir == dir {
			if int64(len(chunk)) >= p.cutLeft {
				chunk = chunk[:p.cutLeft]
				p.cutLeft = -1
				cutNow = true
			} else {
				p.cutLeft -= int64(len(chunk))
			}
		}
		p.mu.Unlock()
		if err := p.write(l, dir, dst, chunk); err != nil {
			return
		}
		if cutNow {
			p.CutAll()
			return
		}
	}
}

// waitOpen waits while the proxy is blackholed; it reports false if the link closed meanwhile.
func (p *Proxy) waitOpen(l *link, count bool) bool {
	p.mu.Lock()
	open := p.open
	p.mu.Unlock()
	select {
	case <-open:
		return true
	default:
	}
	if count {
		p.blackholed.Add(1)
	}
	for {
		select {
		case <-open:
			return true
		case <-l.done:
			return false
		case <-time.After(50 * time.Millisecond):
			// SetBlackhole(true) after a false replaces the channel: look again.
			p.mu.Lock()
			open = p.open
			p.mu.Unlock()
		}
	}
}

func sleep(l *link, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-l.done:
		return false
	}
}

// write writes chunk to dst, in slices of a tenth of a second's worth under a bandwidth limit.
func (p *Proxy) write(l *link, dir Direction, dst net.Conn, chunk []byte) error {
	for len(chunk) > 0 {
		p.mu.Lock()
		bw := p.bandwidth
		p.mu.Unlock()
		n := len(chunk)
		if bw > 0 {
			n = min(n, int(max(bw/10, 1)))
		}
		start := time.Now()
		w, err := dst.Write(chunk[:n])
		p.bytes[dir].Add(int64(w))
		if err != nil {
			return err
		}
		chunk = chunk[n:]
		if bw > 0 {
			want := time.Duration(int64(n) * int64(time.Second) / bw)
			if d := want - time.Since(start); d > 0 && !sleep(l, d) {
				return io.ErrClosedPipe
			}
		}
	}
	return nil
}
