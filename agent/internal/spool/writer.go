package spool

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// Capture is what one capture source hands to Commit: records, its new read offset and the
// input it could not parse, all committed together or not at all.
type Capture struct {
	// Source is the capture source id (e.g. the terminal id); the key of its offset.
	Source string
	// Records have their business fields filled in; Store, Epoch, Seq, CapturedAt and Hash
	// are assigned by the spool. Commit does not modify the caller's slice.
	Records []protocol.Record
	// Offset is Source's new read offset, committed in the same transaction (nil: unchanged).
	Offset []byte
	// Quarantine holds unparseable input, already masked. The spool assigns ID when empty and
	// At when zero.
	Quarantine []protocol.Quarantined
}

type request struct {
	capture *Capture // nil for an ack
	ack     *ackReq
	compact bool        // Compact: runs alone, between two commits
	res     chan result // buffered, capacity 1
}

type ackReq struct{ through uint64 }

type result struct {
	records   []protocol.Record
	compacted *CompactResult
	err       error
}

// Commit captures c: it stamps each record with Store, Epoch, the next store-wide Seq (gap-free,
// from 1), CapturedAt and Hash, and writes records, offset and quarantine in one bbolt
// transaction. It returns the stamped records only after that transaction's fsync returned;
// only then are they captured. Concurrent calls are group-committed (many calls, one fsync).
//
// ctx bounds only the wait to hand the capture to the writer; once handed over, Commit waits
// for the outcome, because a caller that stopped waiting could not know whether its records
// were captured. An error wrapping ErrInvalidCapture means nothing was written; an error
// wrapping ErrFailed means the spool is dead and the process must restart.
func (s *Spool) Commit(ctx context.Context, c Capture) ([]protocol.Record, error) {
	if err := validateCapture(&c); err != nil {
		return nil, err
	}
	if len(c.Records) == 0 && c.Offset == nil && len(c.Quarantine) == 0 {
		return nil, nil
	}
	c.Records = append([]protocol.Record(nil), c.Records...)
	c.Quarantine = append([]protocol.Quarantined(nil), c.Quarantine...)
	if c.Offset != nil {
		c.Offset = append([]byte{}, c.Offset...)
	}
	res, err := s.submit(ctx, &request{capture: &c})
	if err != nil {
		return nil, fmt.Errorf("spool commit: %w", err)
	}
	return res.records, nil
}

// Ack records that the hub durably applied every record of epoch with seq <= through. It is
// persisted (fsynced, group-committed with captures) before it returns. An ack of another
// epoch returns ErrEpochMismatch, one beyond LastSeq returns ErrAckBeyondLast, and one at or
// below LastAck is a no-op: the acknowledgement never moves backwards.
func (s *Spool) Ack(epoch string, through uint64) error {
	if epoch != s.epoch {
		return fmt.Errorf("spool ack %s/%d: %w (spool epoch %s)", epoch, through, ErrEpochMismatch, s.epoch)
	}
	if through <= s.LastAck() {
		return nil
	}
	if _, err := s.submit(context.Background(), &request{ack: &ackReq{through: through}}); err != nil {
		return fmt.Errorf("spool ack %d: %w", through, err)
	}
	return nil
}

func (s *Spool) submit(ctx context.Context, r *request) (result, error) {
	if err := s.writable(); err != nil {
		return result{}, err
	}
	if err := context.Cause(ctx); err != nil {
		return result{}, err
	}
	r.res = make(chan result, 1)
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return result{}, ErrClosed
	}
	select {
	case s.reqs <- r:
		s.closeMu.RUnlock()
	case <-ctx.Done():
		s.closeMu.RUnlock()
		return result{}, context.Cause(ctx)
	}
	res := <-r.res
	return res, res.err
}

func validateCapture(c *Capture) error {
	if c.Source == "" && c.Offset != nil {
		return fmt.Errorf("spool commit: %w: offset without a source", ErrInvalidCapture)
	}
	if len(c.Source) > maxSourceLen {
		return fmt.Errorf("spool commit: %w: source id longer than %d bytes", ErrInvalidCapture, maxSourceLen)
	}
	for i := range c.Records {
		if err := c.Records[i].ValidateBusiness(); err != nil {
			return fmt.Errorf("spool commit: %w: records[%d]: %w", ErrInvalidCapture, i, err)
		}
	}
	return nil
}

// writer is the only goroutine that writes captures and acks. It takes whatever requests are
// queued (up to maxBatchRequests / maxBatchRecords) and commits them in one transaction.
func (s *Spool) writer() {
	defer close(s.done)
	batch := make([]*request, 0, maxBatchRequests)
	for {
		r, ok := <-s.reqs
		if !ok {
			return
		}
		if r.compact {
			s.runCompact(r)
			continue
		}
		batch = append(batch[:0], r)
		n := recordsOf(r)
		var compact *request
	drain:
		for len(batch) < maxBatchRequests && n < maxBatchRecords {
			select {
			case r, ok := <-s.reqs:
				if !ok {
					break drain // closed: commit what we have, the outer receive then returns
				}
				if r.compact {
					compact = r
					break drain
				}
				batch = append(batch, r)
				n += recordsOf(r)
			default:
				break drain
			}
		}
		s.commitBatch(batch)
		clear(batch)
		if compact != nil {
			s.runCompact(compact)
		}
	}
}

func recordsOf(r *request) int {
	if r.capture == nil {
		return 0
	}
	return len(r.capture.Records)
}

// commitBatch writes one group of requests in one transaction. A request whose ack is invalid
// gets its own error; any error of the transaction itself fails the whole spool.
func (s *Spool) commitBatch(batch []*request) {
	if err := s.writable(); err != nil {
		for _, r := range batch {
			r.res <- result{err: err}
		}
		return
	}
	results := make([]result, len(batch))
	s.mu.RLock()
	nextSeq, lastAck, nextQuar := s.st.nextSeq, s.st.lastAck, s.st.nextQuar
	s.mu.RUnlock()
	firstSeq := nextSeq
	ackedBefore := lastAck
	now := s.opts.Now().UTC().Truncate(time.Microsecond)
	terminals := map[string]time.Time{}
	quarantined := uint64(0)
	var oldest time.Time
	oldestChanged := false

	err := func() error {
		tx, err := s.db.Begin(true)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		defer func() { _ = tx.Rollback() }() // no-op after a successful Commit
		recs, offs, quar, meta := tx.Bucket(bucketRecords), tx.Bucket(bucketOffsets), tx.Bucket(bucketQuarantine), tx.Bucket(bucketMeta)
		// Keys only ever grow at the end: fill pages instead of splitting them half-empty.
		recs.FillPercent, quar.FillPercent = appendFillPercent, appendFillPercent
		for i, r := range batch {
			if r.ack != nil {
				switch {
				case r.ack.through >= nextSeq:
					results[i].err = fmt.Errorf("%w: through %d, last seq %d", ErrAckBeyondLast, r.ack.through, nextSeq-1)
				case r.ack.through > lastAck:
					lastAck = r.ack.through
				}
				continue
			}
			c := r.capture
			out := c.Records
			for j := range out {
				rec := &out[j]
				rec.Store, rec.Epoch, rec.Seq, rec.CapturedAt = s.opts.Store, s.epoch, nextSeq, now
				v, err := sealEncode(rec)
				if err != nil {
					return fmt.Errorf("encode seq %d: %w", nextSeq, err)
				}
				if err := recs.Put(u64(nextSeq), v); err != nil {
					return fmt.Errorf("put seq %d: %w", nextSeq, err)
				}
				terminals[rec.Terminal] = now
				nextSeq++
			}
			if c.Offset != nil {
				if err := offs.Put([]byte(c.Source), c.Offset); err != nil {
					return fmt.Errorf("put offset %q: %w", c.Source, err)
				}
			}
			for j := range c.Quarantine {
				q := &c.Quarantine[j]
				if q.ID == "" {
					q.ID = s.epoch[:8] + "-q" + strconv.FormatUint(nextQuar, 10)
				}
				if q.At.IsZero() {
					q.At = now
				}
				v, err := json.Marshal(q)
				if err != nil {
					return fmt.Errorf("encode quarantine %s: %w", q.ID, err)
				}
				if err := quar.Put(u64(nextQuar), v); err != nil {
					return fmt.Errorf("put quarantine %s: %w", q.ID, err)
				}
				nextQuar++
				quarantined++
			}
			results[i].records = out
		}
		if nextSeq != firstSeq {
			if err := meta.Put(keyNextSeq, u64(nextSeq)); err != nil {
				return fmt.Errorf("put next_seq: %w", err)
			}
			tb := tx.Bucket(bucketTerminals)
			for term, t := range terminals {
				v, _ := t.MarshalText()
				if err := tb.Put([]byte(term), v); err != nil {
					return fmt.Errorf("put terminal %q: %w", term, err)
				}
			}
		}
		if lastAck != ackedBefore {
			if err := meta.Put(keyLastAck, u64(lastAck)); err != nil {
				return fmt.Errorf("put last_ack: %w", err)
			}
		}
		if quarantined > 0 {
			if err := meta.Put(keyNextQuar, u64(nextQuar)); err != nil {
				return fmt.Errorf("put next_quarantine: %w", err)
			}
		}
		switch {
		case lastAck == nextSeq-1:
			oldest, oldestChanged = time.Time{}, true
		case lastAck != ackedBefore || ackedBefore == firstSeq-1:
			// LastAck+1 moved, or the backlog was empty before this batch.
			// A failure here only blurs a statistic: it must not fail the capture.
			t, err := capturedAt(tx, lastAck+1)
			if err != nil {
				s.log.Error("cannot read oldest unsent record", "seq", lastAck+1, "err", err)
			}
			oldest, oldestChanged = t, true
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		return nil
	}()
	if err != nil {
		s.fail(err)
		err = fmt.Errorf("%w: %w", ErrFailed, err)
		for _, r := range batch {
			r.res <- result{err: err}
		}
		return
	}
	s.txN.Add(1)

	// The transaction is durable: publish the new state, then answer the callers.
	s.mu.Lock()
	s.st.nextSeq, s.st.lastAck, s.st.nextQuar = nextSeq, lastAck, nextQuar
	s.st.quarantineN += quarantined
	for term, t := range terminals {
		s.st.lastCapture[term] = t
	}
	if oldestChanged {
		s.st.oldestUnsent = oldest
	}
	s.mu.Unlock()
	for i, r := range batch {
		r.res <- results[i]
	}
	if nextSeq != firstSeq {
		select {
		case s.notify <- struct{}{}:
		default:
		}
		s.refreshSize()
	}
}

func (s *Spool) runCompact(r *request) {
	if err := s.writable(); err != nil {
		r.res <- result{err: err}
		return
	}
	res, err := s.compact()
	r.res <- result{compacted: &res, err: err}
}

// sealEncode sets rec.Hash from its canonical form and returns json.Marshal(rec), encoding the
// record once: the canonical form (Hash empty) is the stored encoding without the "hash" field,
// which Go's encoder writes just before "source" (the last field) or the closing brace. The
// splice is checked against the encoding of Source; if it does not fit, the record is encoded
// again the ordinary way.
func sealEncode(rec *protocol.Record) ([]byte, error) {
	rec.Hash = ""
	canon := rec.Canonical()
	sum := sha256.Sum256(canon)
	rec.Hash = hex.EncodeToString(sum[:])
	at := len(canon) - 1 // before the closing brace
	if rec.Source != nil {
		src, err := json.Marshal(rec.Source)
		if err != nil {
			return nil, err
		}
		tail := len(`,"source":`) + len(src) + 1
		if tail > len(canon) || !bytes.HasPrefix(canon[len(canon)-tail:], []byte(`,"source":`)) ||
			!bytes.Equal(canon[len(canon)-tail+len(`,"source":`):len(canon)-1], src) {
			return json.Marshal(rec)
		}
		at = len(canon) - tail
	}
	if at < 1 || canon[len(canon)-1] != '}' {
		return json.Marshal(rec)
	}
	out := make([]byte, 0, len(canon)+len(`,"hash":""`)+len(rec.Hash))
	out = append(out, canon[:at]...)
	out = append(out, `,"hash":"`...)
	out = append(out, rec.Hash...)
	out = append(out, '"')
	return append(out, canon[at:]...), nil
}
