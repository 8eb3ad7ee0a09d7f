package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// ParseCanonicalJSONL is the LineParser of the canonical-jsonl profile: one canonical record
// per line; blank lines and lines starting with '#' are skipped. Agent-assigned fields in the
// input are ignored (the spool assigns them).
func ParseCanonicalJSONL(line []byte) (protocol.Record, bool, error) {
	line = bytes.TrimSpace(line)
	if len(line) == 0 || line[0] == '#' {
		return protocol.Record{}, false, nil
	}
	var r protocol.Record
	if err := json.Unmarshal(line, &r); err != nil {
		return protocol.Record{}, false, fmt.Errorf("not a canonical JSON record: %w", err)
	}
	r.Epoch, r.Seq, r.Hash, r.Source = "", 0, "", nil
	r.CapturedAt = time.Time{}
	if err := r.ValidateBusiness(); err != nil {
		return protocol.Record{}, false, fmt.Errorf("invalid record: %w", err)
	}
	return r, true, nil
}
