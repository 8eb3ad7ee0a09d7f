// Package chaosout writes a fault scenario's result where $LANEBRIDGE_CHAOS_OUT says, in the
// result contract every chaos scenario shares: <dir>/<scenario>.json with the fields of
// [Result]. It also picks and reports a scenario's seed.
package chaosout

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"
)

// Result is one scenario's outcome. Lost and Duplicated must be 0.
type Result struct {
	Scenario string           `json:"scenario"`
	Seed     uint64           `json:"seed"`
	Cycles   int              `json:"cycles"`
	Faults   map[string]int64 `json:"faults"`
	// Captured: records the agent acknowledged as captured; Applied: records the hub applied
	// (distinct); Lost: acknowledged records not there in the end; Duplicated: records applied
	// or posted twice; Posted: ERP postings (0 where the scenario has no ERP).
	Captured   int64   `json:"captured"`
	Applied    int64   `json:"applied"`
	Lost       int64   `json:"lost"`
	Duplicated int64   `json:"duplicated"`
	Posted     int64   `json:"posted"`
	Replay     string  `json:"replay"`
	DurationS  float64 `json:"duration_s"`
}

// Seed returns the seed in the environment variable env, or a new one from the clock.
func Seed(env string) (uint64, error) {
	s := os.Getenv(env)
	if s == "" {
		return uint64(time.Now().UnixNano()), nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s=%q: want an unsigned integer seed (printed by an earlier run): %w", env, s, err)
	}
	return v, nil
}

// Long reports whether the long versions run (LANEBRIDGE_CHAOS=long).
func Long() bool { return os.Getenv("LANEBRIDGE_CHAOS") == "long" }

// Write writes r to $LANEBRIDGE_CHAOS_OUT/<scenario>.json; without the variable it does
// nothing. It returns the path written.
func Write(r Result) (string, error) {
	dir := os.Getenv("LANEBRIDGE_CHAOS_OUT")
	if dir == "" {
		return "", nil
	}
	if r.Faults == nil {
		r.Faults = map[string]int64{}
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", fmt.Errorf("LANEBRIDGE_CHAOS_OUT: %w", err)
	}
	p := filepath.Join(dir, r.Scenario+".json")
	if err := os.WriteFile(p, append(b, '\n'), 0o644); err != nil {
		return "", fmt.Errorf("write chaos result: %w", err)
	}
	return p, nil
}
