// Package capture reads terminal output from its sources (files, folders, serial taps, printer
// streams), turns it into canonical records and commits them to the spool together with the
// source's read position, so a crash at any moment neither loses nor repeats a record.
package capture

import (
	"context"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

// Committer is the spool as capture sees it. Commit must be durable when it returns.
type Committer interface {
	Commit(ctx context.Context, c spool.Capture) ([]protocol.Record, error)
	Offset(source string) ([]byte, error)
}

// Source is one running capture source.
type Source interface {
	// Run captures until ctx is done; it returns nil on a normal stop.
	Run(ctx context.Context) error
	// Stats returns the source's counters; safe to call while Run runs.
	Stats() Stats
}

// Stats are per-source counters, read by status and metrics.
type Stats struct {
	Records     uint64
	Quarantined uint64
	LastCapture time.Time
}
