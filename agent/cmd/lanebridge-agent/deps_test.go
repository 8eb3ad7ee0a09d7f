package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestAgentDependencies keeps the agent binary small and free of hub code: it must not link the
// hub's packages, its broker, or its SQL drivers.
func TestAgentDependencies(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	forbidden := []string{
		"github.com/lanebridge/lanebridge/hub/",
		"github.com/mochi-mqtt/",
		"modernc.org/sqlite",
		"github.com/jackc/pgx",
		"github.com/prometheus/client_golang",
	}
	for _, dep := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(dep, f) {
				t.Errorf("the agent links %s", dep)
			}
		}
	}
}
