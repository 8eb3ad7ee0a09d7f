package clock

import (
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    time.Duration
		wantErr string
	}{
		{"", 0, ""},
		{"72h", 72 * time.Hour, ""},
		{"-72h", -72 * time.Hour, ""},
		{"3 days", 0, `LANEBRIDGE_CLOCK_OFFSET="3 days": want a duration`},
	} {
		got, err := Parse(tc.in)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("Parse(%q) error %v, want %q", tc.in, err, tc.wantErr)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("Parse(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

func TestLoadShiftsNow(t *testing.T) {
	t.Setenv(OffsetEnv, "72h")
	if err := Load(); err != nil {
		t.Fatal(err)
	}
	defer offset.Store(0)
	if d := time.Until(Now()); d < 71*time.Hour || d > 73*time.Hour {
		t.Fatalf("Now is %v off time.Now, want 72h", d)
	}
	t.Setenv(OffsetEnv, "soon")
	if err := Load(); err == nil {
		t.Fatal("an unparsable offset was accepted")
	}
}
