// Package clock is the hub's wall clock: time.Now shifted by $LANEBRIDGE_CLOCK_OFFSET.
//
// The offset exists for fault tests only (a hub host whose clock is days off; libfaketime
// cannot move a Go binary's clock, which is read through the vDSO, not libc). It is read once,
// by Load at hub start; unset in production. Durations and timeouts keep using time.Since and
// the monotonic clock: only wall-clock reads (timestamps, retention, close scheduling, alerts,
// trading hours) go through Now.
package clock

import (
	"fmt"
	"os"
	"sync/atomic"
	"time"
)

// OffsetEnv names the tests-only offset, a Go duration such as 72h or -72h.
const OffsetEnv = "LANEBRIDGE_CLOCK_OFFSET"

var offset atomic.Int64

// Load reads $LANEBRIDGE_CLOCK_OFFSET once; an unparsable value is refused.
func Load() error {
	d, err := Parse(os.Getenv(OffsetEnv))
	if err != nil {
		return err
	}
	offset.Store(int64(d))
	return nil
}

// Parse parses an offset value ("" is no offset).
func Parse(v string) (time.Duration, error) {
	if v == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want a duration such as 72h or -72h (tests only), or unset it: %w", OffsetEnv, v, err)
	}
	return d, nil
}

// Offset is the offset in force.
func Offset() time.Duration { return time.Duration(offset.Load()) }

// Now is the hub's wall clock.
func Now() time.Time {
	if d := Offset(); d != 0 {
		return time.Now().Add(d)
	}
	return time.Now()
}
