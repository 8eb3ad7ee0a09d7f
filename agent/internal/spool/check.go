package spool

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"runtime/debug"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	bolt "go.etcd.io/bbolt"
	bolterrors "go.etcd.io/bbolt/errors"
)

// maxCheckErrors bounds how many problems a failed check reports.
const maxCheckErrors = 5

// checkFile opens the existing spool file read-only (so a corrupt file is never written to)
// and checks it. It returns nil, an error wrapping errCorrupt, or another error (lock held,
// permissions, I/O) that must not be mistaken for corruption.
//
// A corrupt page can make bbolt panic or fault (a truncated file faults on the mmap), so the
// check runs with debug.SetPanicOnFault and recovers. bbolt's tx.Check runs in a goroutine
// of its own that nothing can recover; the spool's own walk, which reads every page that
// tx.Check reads, runs first, and the freelist is loaded in Open, to keep it out of reach.
func checkFile(path string, o Options) (err error) {
	fi, err := os.Stat(path)
	if err != nil {
		return fmt.Errorf("check: %w", err)
	}
	if fi.Size() == 0 {
		return fmt.Errorf("%w: the file is empty", errCorrupt)
	}

	var file *os.File // captured so a panic can still release the lock
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if p := recover(); p != nil {
			if file != nil {
				_ = file.Close()
			}
			err = fmt.Errorf("%w: reading the file panicked: %v", errCorrupt, p)
		}
	}()

	db, err := bolt.Open(path, fileMode, &bolt.Options{
		ReadOnly:        true,
		Timeout:         o.OpenTimeout,
		PreLoadFreelist: true,
		FreelistType:    bolt.FreelistMapType,
		OpenFile: func(name string, flag int, perm os.FileMode) (*os.File, error) {
			f, err := os.OpenFile(name, flag, perm)
			file = f
			return f, err
		},
	})
	if err != nil {
		switch {
		case errors.Is(err, bolterrors.ErrTimeout):
			return lockErr(err)
		case errors.Is(err, bolterrors.ErrInvalid), errors.Is(err, bolterrors.ErrChecksum),
			errors.Is(err, bolterrors.ErrVersionMismatch), strings.Contains(err.Error(), "file size too small"):
			return fmt.Errorf("%w: %w", errCorrupt, err)
		default:
			return fmt.Errorf("check: %w", err)
		}
	}
	tx, err := db.Begin(false)
	if err != nil {
		_ = db.Close()
		return fmt.Errorf("check: %w", err)
	}
	// On a panic the deferred recover above runs first and db is abandoned: closing it
	// would wait for this transaction's mmap lock.
	if cerr := checkTx(tx, fi.Size()); cerr != nil {
		_ = tx.Rollback()
		_ = db.Close()
		return cerr
	}
	_ = tx.Rollback()
	if err := db.Close(); err != nil {
		return fmt.Errorf("check: close: %w", err)
	}
	return nil
}

// checkTx runs the spool's invariants, then bbolt's own check.
func checkTx(tx *bolt.Tx, fileSize int64) error {
	if tx.Size() > fileSize {
		return fmt.Errorf("%w: file is truncated: %d bytes, its pages need %d", errCorrupt, fileSize, tx.Size())
	}
	if err := checkInvariants(tx); err != nil {
		return err
	}
	var errs []string
	n := 0
	for err := range tx.Check() {
		n++
		if len(errs) < maxCheckErrors {
			errs = append(errs, err.Error())
		}
	}
	if n > 0 {
		return fmt.Errorf("%w: bbolt check found %d problems: %s", errCorrupt, n, strings.Join(errs, "; "))
	}
	return nil
}

// checkInvariants verifies what the spool relies on:
//   - every bucket exists; meta holds a 32-hex-digit epoch, next_seq, last_ack, next_quarantine
//     and created_at;
//   - record keys are 8 bytes and contiguous; the last is next_seq-1, the first is at most
//     last_ack+1 (only acknowledged records are ever purged), and last_ack < next_seq;
//   - every record decodes, has its key as Seq, the spool's epoch, and a hash that matches its
//     canonical form;
//   - offsets, quarantine entries and terminal times decode.
//
// It reads every key and value of every bucket, so it touches every page bbolt's check does.
func checkInvariants(tx *bolt.Tx) error {
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

	var first, prev uint64
	var rec protocol.Record
	err = tx.Bucket(bucketRecords).ForEach(func(k, v []byte) error {
		if len(k) != 8 {
			return corrupt("record key %x is not 8 bytes", k)
		}
		seq := binary.BigEndian.Uint64(k)
		switch {
		case prev == 0:
			first = seq
		case seq != prev+1:
			return corrupt("records jump from seq %d to %d", prev, seq)
		}
		prev = seq
		rec = protocol.Record{}
		if err := json.Unmarshal(v, &rec); err != nil {
			return corrupt("record %d does not decode: %v", seq, err)
		}
		if rec.Seq != seq || rec.Epoch != epoch {
			return corrupt("record under key %d says seq %d epoch %q", seq, rec.Seq, rec.Epoch)
		}
		if rec.Hash != rec.ComputeHash() {
			return corrupt("record %d: hash does not match its content", seq)
		}
		return nil
	})
	if err != nil {
		return err
	}
	switch {
	case prev == 0 && lastAck != nextSeq-1:
		return corrupt("no records, but next_seq %d and last_ack %d leave unacknowledged records missing", nextSeq, lastAck)
	case prev != 0 && prev != nextSeq-1:
		return corrupt("last record is seq %d but next_seq is %d", prev, nextSeq)
	case prev != 0 && first > lastAck+1:
		return corrupt("records start at seq %d but only %d are acknowledged: unacknowledged records missing", first, lastAck)
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
