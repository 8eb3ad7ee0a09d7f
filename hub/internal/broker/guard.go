package broker

import (
	"context"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"log/slog"
	"net"
	"sync"
	"time"

	mqtt "github.com/mochi-mqtt/server/v2"
	"github.com/mochi-mqtt/server/v2/packets"
)

// ChangeLister is implemented by an Authenticator that can tell whose credentials changed. The
// broker then rechecks, every Config.Recheck, the password of each connected client of those
// stores and disconnects the clients it no longer accepts (store disabled or removed, old
// password rotated out), so such changes made by another process take effect within seconds.
type ChangeLister interface {
	// CredentialsChanged returns the stores whose credentials changed after since.
	CredentialsChanged(ctx context.Context, since time.Time) ([]string, error)
}

// Defaults of Config.Recheck, Config.LoginFreeFailures and Config.LoginBackoff.
const (
	DefaultRecheck           = 2 * time.Second
	DefaultLoginFreeFailures = 5
	DefaultLoginBackoff      = time.Second
	// maxLoginBackoff caps the doubling back-off of one address.
	maxLoginBackoff = time.Minute
	// recheckOverlap widens each recheck's window back in time, so a change committed while
	// a client was authenticating, or stamped by a process with a slightly slow clock, is
	// still seen.
	recheckOverlap = time.Minute
)

// session is a connected store client and the password it logged in with.
type session struct{ store, password string }

// sessions tracks connected store clients for rechecks.
type sessions struct {
	mu sync.Mutex
	m  map[*mqtt.Client]session
}

func (s *sessions) add(cl *mqtt.Client, ss session) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[cl] = ss
}

func (s *sessions) remove(cl *mqtt.Client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, cl)
}

// of returns the connected clients of the given stores.
func (s *sessions) of(stores []string) map[*mqtt.Client]session {
	want := make(map[string]bool, len(stores))
	for _, st := range stores {
		want[st] = true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[*mqtt.Client]session{}
	for cl, ss := range s.m {
		if want[ss.store] {
			out[cl] = ss
		}
	}
	return out
}

// recheck runs until ctx ends: every interval it asks lister which stores changed and
// disconnects their clients whose password the Authenticator no longer accepts.
func (h *aclHook) recheck(ctx context.Context, lister ChangeLister, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	since := clock.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		now := clock.Now()
		changed, err := lister.CredentialsChanged(ctx, since.Add(-recheckOverlap))
		if err != nil {
			h.log.Warn("recheck of store credentials failed; retrying", slog.Any("err", err))
			continue
		}
		since = now
		for cl, ss := range h.sessions.of(changed) {
			actx, cancel := context.WithTimeout(ctx, authTimeout)
			ok, err := h.auth.CheckStore(actx, ss.store, ss.password)
			cancel()
			if err == nil && !ok {
				h.log.Warn("store disconnected: its credentials are no longer valid (disabled, removed or rotated out)",
					slog.String("store", ss.store), slog.String("remote", cl.Net.Remote))
				cl.Stop(packets.ErrNotAuthorized)
			}
		}
	}
}

// throttle refuses CONNECTs from an address after repeated failed logins: after free
// consecutive failures, each further one closes the address for base, doubling up to
// maxLoginBackoff. Refusals while closed skip the Authenticator and are logged once per window.
type throttle struct {
	free int
	base time.Duration

	mu sync.Mutex
	m  map[string]*failures
}

type failures struct {
	n      int
	until  time.Time // closed until
	last   time.Time
	logged bool // the current window's first refusal was logged
}

// maxThrottled bounds the addresses remembered; beyond it, idle ones are forgotten.
const maxThrottled = 4096

func newThrottle(free int, base time.Duration) *throttle {
	return &throttle{free: free, base: base, m: map[string]*failures{}}
}

func host(remote string) string {
	if h, _, err := net.SplitHostPort(remote); err == nil {
		return h
	}
	return remote
}

// closed reports whether addr is refused now, and whether this refusal is the window's first
// (to be logged), with the failure count and the window's end.
func (t *throttle) closed(addr string, now time.Time) (closed, first bool, f failures) {
	if t == nil {
		return false, false, f
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	e := t.m[addr]
	if e == nil || !now.Before(e.until) {
		return false, false, f
	}
	first, e.logged = !e.logged, true
	return true, first, *e
}

// fail counts a failed login from addr.
func (t *throttle) fail(addr string, now time.Time) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.m) >= maxThrottled {
		for a, e := range t.m {
			if now.Sub(e.last) > 2*maxLoginBackoff {
				delete(t.m, a)
			}
		}
	}
	e := t.m[addr]
	if e == nil {
		if len(t.m) >= maxThrottled {
			return // flooded from many addresses: those have to do without back-off
		}
		e = &failures{}
		t.m[addr] = e
	}
	if now.Sub(e.last) > 2*maxLoginBackoff {
		e.n = 0 // quiet for long enough: start again
	}
	e.n++
	e.last = now
	if over := e.n - t.free; over > 0 {
		e.until = now.Add(min(t.base<<min(over-1, 16), maxLoginBackoff))
		e.logged = false
	}
}

// ok forgets the failures of addr after a successful login.
func (t *throttle) ok(addr string) {
	if t == nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.m, addr)
}
