package app

import (
	"strings"
	"testing"
	"time"
)

func TestAgentClock(t *testing.T) {
	for _, tt := range []struct {
		env     string
		want    time.Duration
		wantErr string
	}{
		{"", 0, ""},
		{"72h", 72 * time.Hour, ""},
		{"-72h", -72 * time.Hour, ""},
		{"3 days", 0, "LANEBRIDGE_CLOCK_OFFSET=\"3 days\": want a duration"},
	} {
		t.Setenv(clockOffsetEnv, tt.env)
		now, err := agentClock()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("agentClock with %q: %v, want an error containing %q", tt.env, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Fatalf("agentClock with %q: %v", tt.env, err)
		}
		if got := time.Until(now()); (got - tt.want).Abs() > time.Minute {
			t.Errorf("agentClock with %q is off by %v, want %v", tt.env, got, tt.want)
		}
	}
}
