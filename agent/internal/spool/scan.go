package spool

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"fmt"

	bolt "go.etcd.io/bbolt"

	"github.com/lanebridge/lanebridge/protocol"
)

// scanChunk bounds the records one read transaction of a scan visits, so a long scan never
// holds a read transaction (and with it bbolt's remap of a growing file) for long.
const scanChunk = 5000

// ReceiptRange selects records of one terminal by numeric receipt number.
type ReceiptRange struct {
	Terminal string
	// BusinessDate (YYYY-MM-DD) restricts the match; empty matches any date.
	BusinessDate string
	// From and To are inclusive. Receipts are numbered by protocol.ReceiptNumber ("000123" is
	// 123), as the hub numbers them for gap detection.
	From, To int64
}

// ScanReceipts returns, in seq order, up to max stored records that match rr (all kinds that
// carry a receipt number). It reads every retained record, in chunks of read transactions,
// skipping without decoding those whose JSON cannot name the terminal. truncated is set when
// more than max matched.
func (s *Spool) ScanReceipts(rr ReceiptRange, max int) (out []RawRecord, truncated bool, err error) {
	needle, _ := json.Marshal(rr.Terminal) // the stored form of the terminal, same escaping
	needle = append([]byte(`"terminal":`), needle...)
	var hdr struct {
		Terminal     string `json:"terminal"`
		BusinessDate string `json:"business_date"`
		Receipt      string `json:"receipt"`
	}
	from := uint64(0)
	for {
		var n int
		err := s.view(func(tx *bolt.Tx) error {
			c := tx.Bucket(bucketRecords).Cursor()
			for k, v := c.Seek(u64(from)); k != nil; k, v = c.Next() {
				seq := binary.BigEndian.Uint64(k)
				if n == scanChunk {
					from = seq
					return nil
				}
				n++
				if !bytes.Contains(v, needle) {
					continue
				}
				hdr.Terminal, hdr.BusinessDate, hdr.Receipt = "", "", ""
				if err := json.Unmarshal(v, &hdr); err != nil {
					return fmt.Errorf("decode seq %d: %w", seq, err)
				}
				if hdr.Terminal != rr.Terminal || (rr.BusinessDate != "" && hdr.BusinessDate != rr.BusinessDate) {
					continue
				}
				num, ok := protocol.ReceiptNumber(hdr.Receipt)
				if !ok || num < rr.From || num > rr.To {
					continue
				}
				if len(out) == max {
					truncated = true
					n = 0 // stop
					return nil
				}
				out = append(out, RawRecord{Seq: seq, JSON: append([]byte(nil), v...)})
			}
			n = 0 // end of records
			return nil
		})
		if err != nil {
			return nil, false, fmt.Errorf("spool scan receipts %s %s %d-%d: %w", rr.Terminal, rr.BusinessDate, rr.From, rr.To, err)
		}
		if n < scanChunk {
			return out, truncated, nil
		}
	}
}

// ReadRange returns, in seq order, up to max stored records with from <= seq <= to; truncated
// is set when more are stored in the range.
func (s *Spool) ReadRange(from, to uint64, max int) (out []RawRecord, truncated bool, err error) {
	for from <= to {
		raws, err := s.ReadRaw(from, min(scanChunk, max+1-len(out)))
		if err != nil {
			return nil, false, err
		}
		for _, r := range raws {
			if r.Seq > to {
				return out, false, nil
			}
			if len(out) == max {
				return out, true, nil
			}
			out = append(out, r)
		}
		if len(raws) == 0 || raws[len(raws)-1].Seq == ^uint64(0) {
			return out, false, nil
		}
		from = raws[len(raws)-1].Seq + 1
	}
	return out, false, nil
}
