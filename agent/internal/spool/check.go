package spool

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/boltfile"
	"github.com/lanebridge/lanebridge/protocol"
	bolt "go.etcd.io/bbolt"
)

// fullCheckAtOpen is the spool size, in records, up to which Open checks every record; above
// it Open checks the unacknowledged tail only and the full check runs on demand (Check, the
// `lanebridge-agent check` command). Checking a record costs about a microsecond (a hash of
// its stored bytes), so this bounds Open's record check to a fraction of a second.
var fullCheckAtOpen uint64 = 100_000 // a variable for tests

// deepCheckMaxBytes is the file length up to which Open also walks every page and runs bbolt's
// tx.Check (which catches, for one, a freelist that names a page in use).
var deepCheckMaxBytes int64 = 96 << 20 // a variable for tests

// checkInvariants verifies what the spool relies on:
//   - every bucket exists; meta holds a 32-hex-digit epoch, next_seq, last_ack, next_quarantine
//     and created_at;
//   - record keys are 8 bytes; the last is next_seq-1, the first is at most last_ack+1 (only
//     acknowledged records are ever purged), and last_ack < next_seq;
//   - the checked records are contiguous, each with its key as Seq, the spool's epoch, and a
//     hash that matches its stored bytes (checkRecord);
//   - offsets, quarantine entries and terminal times decode.
//
// With full set (Check) every record is checked; without it (Open) only the unacknowledged
// tail (last_ack+1 ... next_seq-1: what has still to reach the hub), or every record when the
// spool holds at most fullCheckAtOpen. Acknowledged records are at the hub already; damage to
// them matters only to a replay, and Check, Compact and a replay's read find it.
func checkInvariants(tx *bolt.Tx, full bool) error {
	corrupt := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{errCorrupt}, args...)...)
	}
	for _, name := range allBuckets {
		if tx.Bucket(name) == nil {
			return corrupt("bucket %s missing", name)
		}
	}
	meta := tx.Bucket(bucketMeta)
	epoch := string(meta.Get(keyEpoch))
	if b, err := hex.DecodeString(epoch); err != nil || len(b) != 16 {
		return corrupt("meta epoch %q is not 32 hex digits", epoch)
	}
	if v := string(meta.Get(keyVersion)); v != formatVersion {
		return corrupt("meta version %q, want %q", v, formatVersion)
	}
	if _, err := time.Parse(time.RFC3339Nano, string(meta.Get(keyCreatedAt))); err != nil {
		return corrupt("meta created_at: %v", err)
	}
	nextSeq, err := getU64(meta, keyNextSeq)
	if err != nil {
		return err
	}
	lastAck, err := getU64(meta, keyLastAck)
	if err != nil {
		return err
	}
	nextQuar, err := getU64(meta, keyNextQuar)
	if err != nil {
		return err
	}
	if nextSeq == 0 || lastAck >= nextSeq {
		return corrupt("meta next_seq %d, last_ack %d: want last_ack < next_seq", nextSeq, lastAck)
	}

	c := tx.Bucket(bucketRecords).Cursor()
	fk, _ := c.First()
	lk, _ := c.Last()
	for _, k := range [][]byte{fk, lk} {
		if k != nil && len(k) != 8 {
			return corrupt("record key %x is not 8 bytes", k)
		}
	}
	var first, last uint64
	if fk != nil {
		first, last = binary.BigEndian.Uint64(fk), binary.BigEndian.Uint64(lk)
	}
	switch {
	case fk == nil && lastAck != nextSeq-1:
		return corrupt("no records, but next_seq %d and last_ack %d leave unacknowledged records missing", nextSeq, lastAck)
	case fk != nil && last != nextSeq-1:
		return corrupt("last record is seq %d but next_seq is %d", last, nextSeq)
	case fk != nil && first > lastAck+1:
		return corrupt("records start at seq %d but only %d are acknowledged: unacknowledged records missing", first, lastAck)
	}
	if fk != nil {
		from := first // everything
		if !full && last-first+1 > fullCheckAtOpen {
			from = lastAck + 1 // the unacknowledged tail
		}
		want := from
		k, v := c.Seek(u64(from))
		for ; k != nil; k, v = c.Next() {
			if len(k) != 8 {
				return corrupt("record key %x is not 8 bytes", k)
			}
			seq := binary.BigEndian.Uint64(k)
			if seq != want {
				return corrupt("records jump from seq %d to %d", want-1, seq)
			}
			if err := checkRecord(seq, v, epoch); err != nil {
				return corrupt("%v", err)
			}
			want++
		}
		if want != nextSeq {
			return corrupt("records end at seq %d but next_seq is %d", want-1, nextSeq)
		}
	}

	err = tx.Bucket(bucketQuarantine).ForEach(func(k, v []byte) error {
		if len(k) != 8 || binary.BigEndian.Uint64(k) >= nextQuar {
			return corrupt("quarantine key %x out of range (next %d)", k, nextQuar)
		}
		var q protocol.Quarantined
		if err := json.Unmarshal(v, &q); err != nil {
			return corrupt("quarantine %x does not decode: %v", k, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	err = tx.Bucket(bucketTerminals).ForEach(func(k, v []byte) error {
		var t time.Time
		if err := t.UnmarshalText(v); err != nil {
			return corrupt("terminal %q time: %v", k, err)
		}
		return nil
	})
	if err != nil {
		return err
	}
	// Offsets are opaque bytes; reading every byte touches their pages.
	var sink byte
	err = tx.Bucket(bucketOffsets).ForEach(func(k, v []byte) error {
		for _, b := range v {
			sink ^= b
		}
		return nil
	})
	_ = sink
	return err
}

// checkRecord checks a stored record against its key and the spool's epoch, and its hash
// against its content. The spool stores Go's encoding of the sealed record, which is the
// canonical form plus the "hash" member, so the hash is checked on the stored bytes without
// decoding (as the hub does with the wire form); bytes in any other shape are decoded and
// hashed again.
func checkRecord(seq uint64, v []byte, epoch string) error {
	if storedHashOK(v) && bytes.Contains(v, []byte(`,"epoch":"`+epoch+`","seq":`+strconv.FormatUint(seq, 10)+`,`)) {
		return nil
	}
	var rec protocol.Record
	if err := json.Unmarshal(v, &rec); err != nil {
		return fmt.Errorf("record %d does not decode: %v", seq, err)
	}
	if rec.Seq != seq || rec.Epoch != epoch {
		return fmt.Errorf("record under key %d says seq %d epoch %q", seq, rec.Seq, rec.Epoch)
	}
	if rec.Hash != rec.ComputeHash() {
		return fmt.Errorf("record %d: hash does not match its content", seq)
	}
	return nil
}

// storedHashOK reports whether v, with its `,"hash":"<64 hex>"` member removed, hashes to that
// hash. An unescaped `,"hash":"` occurs only as a member: quotes inside JSON strings are
// escaped, and the canonical form has no other member named hash.
func storedHashOK(v []byte) bool {
	const prefix = `,"hash":"`
	i := bytes.Index(v, []byte(prefix))
	if i < 0 || len(v) < i+len(prefix)+65 || v[i+len(prefix)+64] != '"' {
		return false
	}
	want := v[i+len(prefix) : i+len(prefix)+64]
	h := sha256.New()
	h.Write(v[:i])
	h.Write(v[i+len(prefix)+65:])
	var sum [sha256.Size]byte
	var got [2 * sha256.Size]byte
	hex.Encode(got[:], h.Sum(sum[:0]))
	return bytes.Equal(got[:], want)
}

// ErrCorrupt is wrapped by the problem Check reports for a corrupt file.
var ErrCorrupt = boltfile.ErrCorrupt

// CheckReport is what Check read of a spool.
type CheckReport struct {
	Epoch            string
	FirstSeq         uint64 // 0: no records
	LastSeq, LastAck uint64
	Records          uint64 // records checked: all of them
	Quarantined      uint64
	SizeBytes        int64 // the file's length
	// Problem is the corruption found (wrapping ErrCorrupt); nil when the file is sound.
	Problem error
}

// Check runs the full check of the spool at path, read-only: bbolt's own checks and a walk of
// every page, and the spool's invariants on every record (Open checks only the
// unacknowledged tail of a big spool). It never moves or changes the file. Corruption is
// reported in CheckReport.Problem; the error is for a check that could not run: the agent
// holds the file (ErrLocked, after opts.OpenTimeout, default DefaultReadOnlyTimeout), the
// file is missing, I/O.
func Check(path string, opts Options) (CheckReport, error) {
	o, err := opts.withDefaults(true)
	if err != nil {
		return CheckReport{}, err
	}
	var rep CheckReport
	if fi, err := os.Stat(path); err == nil {
		rep.SizeBytes = fi.Size()
	}
	err = boltfile.Verify(path, boltfile.Options{Name: "spool", Timeout: o.OpenTimeout, Check: func(tx *bolt.Tx) error {
		if m := tx.Bucket(bucketMeta); m != nil {
			rep.Epoch = string(m.Get(keyEpoch))
			rep.LastSeq, _ = getU64(m, keyNextSeq)
			rep.LastSeq = max(rep.LastSeq, 1) - 1
			rep.LastAck, _ = getU64(m, keyLastAck)
		}
		if b := tx.Bucket(bucketRecords); b != nil {
			if k, _ := b.Cursor().First(); len(k) == 8 {
				rep.FirstSeq = binary.BigEndian.Uint64(k)
				rep.Records = rep.LastSeq - rep.FirstSeq + 1
			}
		}
		if b := tx.Bucket(bucketQuarantine); b != nil {
			rep.Quarantined = uint64(b.Stats().KeyN)
		}
		return checkInvariants(tx, true)
	}})
	switch {
	case errors.Is(err, ErrCorrupt):
		rep.Problem = err
	case err != nil:
		return rep, fmt.Errorf("check spool %s: %w", path, err)
	}
	return rep, nil
}
