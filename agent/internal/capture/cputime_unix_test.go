//go:build unix

package capture

import (
	"syscall"
	"time"
)

// processCPU is the user and system CPU time this process used so far (benchmarks report CPU
// per record, which a shared, loaded machine disturbs less than the wall-clock rate).
func processCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}
