package app

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
)

// Exit codes of `lanebridge-agent check`.
const (
	checkSound   = 0
	checkFailed  = 1 // the check could not run (config, the agent holds the file, I/O)
	checkCorrupt = 3
)

// cmdCheck runs the full check of the spool (Open checks only the unacknowledged tail of a
// big spool) and says what it checked: exit 0 sound, 3 corrupt, 1 when it could not check.
func cmdCheck(args []string, stdout, stderr io.Writer) int {
	path, _, err := configFlag("check", args)
	if errors.Is(err, flag.ErrHelp) {
		return checkSound
	}
	if err != nil {
		fmt.Fprintf(stderr, "lanebridge-agent check: %v\n", err)
		return 2
	}
	cfg, err := config.Load(path)
	if err != nil {
		fmt.Fprintf(stderr, "lanebridge-agent check: %v\n", err)
		return checkFailed
	}
	sp := spoolPath(cfg)
	start := time.Now()
	rep, err := spool.Check(sp, spool.Options{OpenTimeout: 2 * time.Second})
	if errors.Is(err, spool.ErrLocked) {
		fmt.Fprintf(stderr, "lanebridge-agent check: %v\nStop the agent first (lanebridge-agent service stop), then run the check again.\n", err)
		return checkFailed
	}
	if err != nil {
		fmt.Fprintf(stderr, "lanebridge-agent check: %v\n", err)
		return checkFailed
	}
	took := time.Since(start).Round(time.Millisecond)
	what := "no records"
	if rep.FirstSeq > 0 {
		what = fmt.Sprintf("%d records (seq %d..%d)", rep.Records, rep.FirstSeq, rep.LastSeq)
	}
	if rep.Problem != nil {
		fmt.Fprintf(stdout, "spool %s: CORRUPT: %v\n", sp, rep.Problem)
		fmt.Fprintf(stdout, "  epoch %s, last seq %d, acknowledged through %d, %.1f MiB\n", rep.Epoch, rep.LastSeq, rep.LastAck, float64(rep.SizeBytes)/(1<<20))
		fmt.Fprintf(stdout, "  Records acknowledged by the hub are kept there. If the damage is in the unacknowledged\n"+
			"  tail the agent moves the file aside at its next start; otherwise stop the agent and move\n"+
			"  %s aside yourself: it then starts a new epoch and captures its sources again\n"+
			"  (the hub counts each receipt once).\n", sp)
		return checkCorrupt
	}
	fmt.Fprintf(stdout, "spool %s: OK: %s checked (pages, meta, every record's seq, epoch and hash), epoch %s, acknowledged through %d, %d quarantined, %.1f MiB, in %s\n",
		sp, what, rep.Epoch, rep.LastAck, rep.Quarantined, float64(rep.SizeBytes)/(1<<20), took)
	return checkSound
}
