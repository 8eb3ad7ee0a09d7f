package inventory

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

// Journal is the part of the spool the overlay reads: the agent's own captured records.
// Safe for concurrent use (spool.Spool implements it).
type Journal interface {
	Epoch() string
	LastSeq() uint64
	// ReadRaw returns the stored JSON of up to max records with seq >= from, in seq order.
	ReadRaw(from uint64, max int) ([]spool.RawRecord, error)
}

const overlayChunk = 1000

// overlay is the net quantity per SKU of the agent's own sale and return lines (not voided)
// captured after the item master's AppliedThrough: what the hub's Available figures do not
// yet account for. It is folded in incrementally from the journal, never recomputed per lookup.
// Not safe for concurrent use (Service guards it).
type overlay struct {
	base    uint64         // records with seq > base count
	through uint64         // highest seq folded in
	sold    map[string]Qty // net quantity sold (returns are negative)
	// idle is set while no item master has been applied: there is nothing to adjust, so
	// captured records are not read at all (a backlog drain costs the overlay nothing).
	idle bool
}

// reset starts counting after the version described by m. Records of another epoch than the
// journal's (a spool recreated after corruption) are not the ones the hub's figures cover, so
// then every retained record of the journal's epoch counts.
func (o *overlay) reset(m Meta, journalEpoch string) {
	o.base = 0
	if m.Epoch != "" && m.Epoch == journalEpoch {
		o.base = m.AppliedThrough
	}
	o.through = o.base
	o.sold = map[string]Qty{}
	o.idle = m.Version == 0
}

// catchUp folds in every record of j with seq in (through, LastSeq].
func (o *overlay) catchUp(j Journal) error {
	if j == nil || o.idle {
		return nil
	}
	last := j.LastSeq()
	for o.through < last {
		raws, err := j.ReadRaw(o.through+1, overlayChunk)
		if err != nil {
			return fmt.Errorf("inventory overlay: %w", err)
		}
		if len(raws) == 0 {
			return nil
		}
		for _, r := range raws {
			if err := o.fold(r.JSON); err != nil {
				return fmt.Errorf("inventory overlay: seq %d: %w", r.Seq, err)
			}
			o.through = r.Seq
		}
	}
	return nil
}

type lineRecord struct {
	Kind  protocol.Kind `json:"kind"`
	Lines []struct {
		SKU      string `json:"sku"`
		Quantity string `json:"quantity"`
		Voided   bool   `json:"voided"`
	} `json:"lines"`
}

var (
	prefixKind   = []byte(`{"kind":`)
	prefixSale   = []byte(`{"kind":"sale"`)
	prefixReturn = []byte(`{"kind":"return"`)
)

// fold adds one stored record. Records are the spool's canonical JSON, kind first, so most
// records that move no stock are skipped without decoding.
func (o *overlay) fold(raw []byte) error {
	if bytes.HasPrefix(raw, prefixKind) && !bytes.HasPrefix(raw, prefixSale) && !bytes.HasPrefix(raw, prefixReturn) {
		return nil
	}
	var r lineRecord
	if err := json.Unmarshal(raw, &r); err != nil {
		return fmt.Errorf("decode: %w", err)
	}
	if r.Kind != protocol.KindSale && r.Kind != protocol.KindReturn {
		return nil
	}
	for _, l := range r.Lines {
		if l.SKU == "" || l.Voided {
			continue
		}
		q, err := ParseQty(l.Quantity)
		if err != nil {
			return err
		}
		// Returns carry negative quantities: adding the signed quantity nets them out.
		s, err := o.sold[l.SKU].Add(q)
		if err != nil {
			return fmt.Errorf("sku %q: %w", l.SKU, err)
		}
		o.sold[l.SKU] = s
	}
	return nil
}

// available is base minus what was sold locally since the version.
func (o *overlay) available(sku string, base Qty) (Qty, error) {
	return base.Sub(o.sold[sku])
}
