package capture

import (
	"bytes"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/protocol"
)

// MaskLine masks card data in a raw input line (PANs to first 6 + last 4; track data and
// CVV/PIN lines dropped) and is applied before anything is written, quarantine included.
func MaskLine(line []byte) []byte {
	out, _ := pan.Mask(line)
	return out
}

func maskText(s string) string {
	if len(s) < 13 {
		return s
	}
	out, res := pan.Mask([]byte(s))
	if !res.Changed() {
		return s
	}
	return string(out)
}

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
	// Free text may carry a card number typed by a cashier; structured card data is only ever
	// brand and last 4 (validated below).
	for i := range r.Lines {
		r.Lines[i].Description = maskText(r.Lines[i].Description)
	}
	for i := range r.Discounts {
		r.Discounts[i].Description = maskText(r.Discounts[i].Description)
	}
	if err := r.ValidateBusiness(); err != nil {
		return protocol.Record{}, false, fmt.Errorf("invalid record: %w", err)
	}
	return r, true, nil
}
