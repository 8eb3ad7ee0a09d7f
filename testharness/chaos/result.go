package chaos

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// OutEnv names the directory each scenario writes its Result into (<scenario>.json).
const OutEnv = "LANEBRIDGE_CHAOS_OUT"

// Result is one scenario run, the contract shared by every chaos suite of the project (this
// package and the power-cut suite write the same JSON); CHAOS.md is generated from these.
type Result struct {
	Scenario   string         `json:"scenario"`
	Seed       uint64         `json:"seed"`
	Cycles     int            `json:"cycles"`
	Faults     map[string]int `json:"faults"`     // fault name → times injected
	Captured   int            `json:"captured"`   // records emitted by terminals and kept (the promise covers them)
	Applied    int            `json:"applied"`    // of those, applied at the hub
	Lost       int            `json:"lost"`       // captured and never applied, or a sale/return never posted: must be 0
	Duplicated int            `json:"duplicated"` // applied or posted more than once: must be 0
	Posted     int            `json:"posted"`     // sales and returns posted to the ERP
	Replay     string         `json:"replay"`     // the command that runs this scenario again with this seed
	DurationS  float64        `json:"duration_s"`
}

// Write stores r as dir/<scenario>.json (atomically: a temporary file renamed into place).
func (r Result) Write(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return fmt.Errorf("chaos result dir %s: %w", dir, err)
	}
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return fmt.Errorf("chaos result %s: %w", r.Scenario, err)
	}
	path := filepath.Join(dir, r.Scenario+".json")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("chaos result %s: %w", r.Scenario, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("chaos result %s: %w", r.Scenario, err)
	}
	return nil
}

// ReadResults reads every *.json in dir, sorted by scenario. A file that is not a Result is an
// error naming it (CHAOS.md must not silently leave a scenario out).
func ReadResults(dir string) ([]Result, error) {
	names, err := filepath.Glob(filepath.Join(dir, "*.json"))
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, n := range names {
		b, err := os.ReadFile(n)
		if err != nil {
			return nil, fmt.Errorf("chaos result %s: %w", n, err)
		}
		var r Result
		if err := json.Unmarshal(b, &r); err != nil {
			return nil, fmt.Errorf("chaos result %s: not a result (want the fields scenario, seed, cycles, faults, …): %w", n, err)
		}
		if r.Scenario == "" {
			return nil, fmt.Errorf("chaos result %s: no \"scenario\" field", n)
		}
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Scenario < out[j].Scenario })
	return out, nil
}
