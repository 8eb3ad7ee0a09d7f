package app

import (
	"fmt"
	"os"
	"time"
)

// clockOffsetEnv shifts the agent's clock for fault tests: the clock that stamps captured_at,
// ages records for retention and goes into the status the hub compares with its own. It
// stands in for a store PC whose clock is wrong; libfaketime cannot do it, since Go reads the
// clock through the vDSO, not libc. Unset in production.
const clockOffsetEnv = "LANEBRIDGE_CLOCK_OFFSET"

// agentClock returns the agent's clock: time.Now shifted by $LANEBRIDGE_CLOCK_OFFSET (a Go
// duration such as 72h or -72h), or time.Now.
func agentClock() (func() time.Time, error) {
	v := os.Getenv(clockOffsetEnv)
	if v == "" {
		return time.Now, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil {
		return nil, fmt.Errorf("%s=%q: want a duration such as 72h or -72h, or unset it: %w", clockOffsetEnv, v, err)
	}
	return func() time.Time { return time.Now().Add(d) }, nil
}
