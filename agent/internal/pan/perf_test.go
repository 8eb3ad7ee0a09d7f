package pan

import (
	"bytes"
	"testing"
	"time"
)

// TestMaskLongLinesLinear guards against quadratic scans of long digit runs.
func TestMaskLongLinesLinear(t *testing.T) {
	for _, unit := range []string{"4111 1111 1111 1111 ", "1 ", "12345 ", "4111111111111111-"} {
		line := bytes.Repeat([]byte(unit), (1<<20)/len(unit))
		start := time.Now()
		out, _ := Mask(line)
		t.Logf("%q: %v", unit, time.Since(start))
		if d := time.Since(start); d > 2*time.Second {
			t.Errorf("Mask of 1 MiB of %q took %v", unit, d)
		}
		if bytes.Contains(out, []byte("4111 1111 1111 1111")) || bytes.Contains(out, []byte("4111111111111111")) {
			t.Errorf("PAN left in long line of %q", unit)
		}
	}
}
