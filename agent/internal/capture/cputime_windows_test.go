package capture

import "time"

// processCPU is not measured on Windows (benchmarks then report 0 CPU per record).
func processCPU() time.Duration { return 0 }
