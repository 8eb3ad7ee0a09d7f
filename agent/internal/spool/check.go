package spool

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	bolt "go.etcd.io/bbolt"
)

// checkInvariants verifies what the spool relies on:
//   - every bucket exists; meta holds a 32-hex-digit epoch, next_seq, last_ack, next_quarantine
//     and created_at;
//   - record keys are 8 bytes and contiguous; the last is next_seq-1, the first is at most
//     last_ack+1 (only acknowledged records are ever purged), and last_ack < next_seq;
//   - every record decodes, has its key as Seq, the spool's epoch, and a hash that matches its
//     canonical form;
//   - offsets, quarantine entries and terminal times decode.
//
// It is the spool's boltfile.Options.Check: boltfile runs it on an existing file at Open,
// after its own walk of every page and before bbolt's tx.Check.
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
