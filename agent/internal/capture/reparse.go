package capture

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

// RecordReader reads captured records (the spool).
type RecordReader interface {
	Read(from uint64, max int) ([]protocol.Record, error)
}

// ReparseOptions select what Reparse does.
type ReparseOptions struct {
	ID, Terminal string
	Profile      *profile.Profile
	Since        time.Time // entries before it are fed to the parser but their results ignored
}

// ReparseResult says what Reparse did.
type ReparseResult struct {
	Entries         int
	Captured        int
	AlreadyCaptured int
	StillFailing    []protocol.Quarantined
}

// BusinessKey identifies a record across parses: the same transaction parsed by an old and a
// fixed profile has the same key. A printed receipt number identifies the transaction (with
// the kind: some terminals print a Z report or a no-sale under the last sale's number), so the
// figures are left out: a fix that changes how a captured receipt's total or time is read must
// not capture that receipt a second time. Only without a receipt number do time and total
// tell transactions apart.
func BusinessKey(r protocol.Record) string {
	if r.Receipt != "" {
		return fmt.Sprintf("%s|%s|%s|%s", r.Terminal, r.BusinessDate, r.Receipt, r.Kind)
	}
	return fmt.Sprintf("%s|%s||%s|%s|%d", r.Terminal, r.BusinessDate, r.Kind, r.Time, r.Total)
}

// Reparse parses the raw journal of a source again, from its start up to the committed parse
// cursor, with opts.Profile (typically fixed after input was quarantined), and commits every
// record whose business key is not captured yet: after a profile fix the transactions that were
// quarantined are captured, once; running it again captures nothing more. The journaled input
// the live pipeline has not parsed yet (past its cursor) is left to the pipeline.
//
// The agent must be stopped (the spool and journal are opened for writing). Records that the
// spool has purged (acknowledged and past retention) are not known to it: use Since to keep
// the re-parse within retention.
func Reparse(ctx context.Context, o ReparseOptions, jr *Journal, sp interface {
	Committer
	RecordReader
}) (ReparseResult, error) {
	var res ReparseResult
	have := map[string]bool{}
	for from := uint64(1); ; {
		recs, err := sp.Read(from, 5000)
		if err != nil {
			return res, err
		}
		if len(recs) == 0 {
			break
		}
		for _, r := range recs {
			if r.Terminal == o.Terminal {
				have[BusinessKey(r)] = true
			}
		}
		from = recs[len(recs)-1].Seq + 1
	}
	var cur parseCursor
	if b, err := sp.Offset(OffsetKey(o.ID)); err != nil {
		return res, err
	} else if len(b) > 0 {
		if err := json.Unmarshal(b, &cur); err != nil {
			return res, fmt.Errorf("decode parse cursor: %w", err)
		}
		if !jr.owns(cur) {
			// The cursor is of a journal that was replaced: none of this one is parsed yet,
			// it all belongs to the live pipeline (which resets the cursor when it starts).
			cur = parseCursor{Next: 1}
		}
	}
	ps := o.Profile.NewParser(o.Terminal)
	var recs []protocol.Record
	take := func(es Entry, rs []profile.Result) {
		if es.Time.Before(o.Since) {
			return
		}
		for _, r := range rs {
			ref := fmt.Sprintf("journal:%s/%d reparse", o.ID, es.ID)
			if r.Err == nil && r.Record != nil {
				rec := *r.Record
				if rec.Terminal == "" {
					rec.Terminal = o.Terminal
				}
				if err := rec.ValidateBusiness(); err == nil {
					k := BusinessKey(rec)
					if have[k] {
						res.AlreadyCaptured++
						continue
					}
					have[k] = true
					raw := ref
					if len(r.Flags) > 0 {
						raw += fmt.Sprintf(" flags=%v", r.Flags)
					}
					rec.Source = &protocol.Source{Terminal: o.Terminal, Profile: o.Profile.Name, Raw: raw}
					recs = append(recs, rec)
					continue
				} else {
					r.Err = err
				}
			}
			res.StillFailing = append(res.StillFailing, protocol.Quarantined{Terminal: o.Terminal, At: es.Time, Reason: r.Err.Error() + " [" + ref + "]", Excerpt: excerpt([]byte(r.Raw))})
		}
	}
	for from := uint64(1); cur.Next == 0 || from < cur.Next; {
		es, err := jr.Read(o.ID, from, 512)
		if err != nil {
			return res, err
		}
		if len(es) == 0 {
			break
		}
		for _, e := range es {
			if cur.Next != 0 && e.ID >= cur.Next {
				break
			}
			res.Entries++
			switch e.Kind {
			case EntryData:
				take(e, ps.Feed(e.Data, e.Time))
			case EntryFlush:
				take(e, ps.Flush(e.Time))
			case EntryClose, EntryEOF:
				take(e, ps.Close())
				ps = o.Profile.NewParser(o.Terminal)
			}
		}
		from = es[len(es)-1].ID + 1
	}
	// What is still open at the cursor belongs to the live pipeline; it is not closed here.
	if len(recs) > 0 {
		// Committed without an offset: the live cursor is not touched.
		if _, err := sp.Commit(ctx, spool.Capture{Source: "reparse:" + o.ID, Records: recs}); err != nil {
			return res, fmt.Errorf("commit re-parsed records: %w", err)
		}
	}
	res.Captured = len(recs)
	return res, nil
}
