package auth

import (
	"sync"
	"time"
)

// Throttle slows down password guessing: after Free failed logins for a key (a user name or a
// client address), the next attempt must wait Base after the last, doubling with each further
// failure up to Max. A success forgets the key. It is in memory: a restart forgets, which costs an attacker
// a restart they cannot cause.
type Throttle struct {
	Free      int
	Base, Max time.Duration
	Now       func() time.Time // nil: time.Now

	mu sync.Mutex
	m  map[string]*strikes
}

type strikes struct {
	n    int
	last time.Time
}

// NewThrottle returns a throttle with 3 free failures, 1s base delay and a 15 minute cap.
func NewThrottle(now func() time.Time) *Throttle {
	return &Throttle{Free: 3, Base: time.Second, Max: 15 * time.Minute, Now: now}
}

func (t *Throttle) now() time.Time {
	if t.Now != nil {
		return t.Now()
	}
	return time.Now()
}

// delay is how long after the last failure the next attempt must wait.
func (t *Throttle) delay(n int) time.Duration {
	if n < t.Free {
		return 0
	}
	d := t.Base
	for i := t.Free; i < n && d < t.Max; i++ {
		d *= 2
	}
	return min(d, t.Max)
}

// Try asks for an attempt for all of keys. It returns how long the caller must wait first
// (nothing is counted then), or 0: the attempt is allowed and counted as a failure until
// Succeed, so that concurrent guesses cannot all slip through before the first one fails.
func (t *Throttle) Try(keys ...string) time.Duration {
	t.mu.Lock()
	defer t.mu.Unlock()
	now := t.now()
	var wait time.Duration
	for _, k := range keys {
		if s := t.m[k]; s != nil {
			wait = max(wait, s.last.Add(t.delay(s.n)).Sub(now))
		}
	}
	if wait > 0 {
		return wait
	}
	if t.m == nil {
		t.m = map[string]*strikes{}
	}
	if len(t.m) > 100000 {
		t.forget(now)
	}
	for _, k := range keys {
		s := t.m[k]
		if s == nil {
			s = &strikes{}
			t.m[k] = s
		}
		s.n++
		s.last = now
	}
	return 0
}

// Succeed forgets the keys' failures.
func (t *Throttle) Succeed(keys ...string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, k := range keys {
		delete(t.m, k)
	}
}

// forget drops keys whose last failure is older than twice the cap, bounding the memory an
// attacker spraying addresses or names can fill.
func (t *Throttle) forget(now time.Time) {
	for k, s := range t.m {
		if now.Sub(s.last) > 2*t.Max {
			delete(t.m, k)
		}
	}
}
