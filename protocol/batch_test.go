package protocol

import (
	"bytes"
	"encoding/json"
	"testing"
	"unicode/utf8"
)

// records returns n sealed samples of store and epoch from seq first on, and their JSON.
func records(store, epoch string, first uint64, n int) ([]Record, [][]byte) {
	recs := make([]Record, n)
	raws := make([][]byte, n)
	for i := range recs {
		r := sample(first + uint64(i))
		r.Store, r.Epoch = store, epoch
		r.Seal()
		recs[i] = r
		raws[i], _ = json.Marshal(r)
	}
	return recs, raws
}

// TestAppendBatch: AppendBatch writes what json.Marshal of the Batch writes, and DecodeBatch
// reads it back when the batch is valid.
func TestAppendBatch(t *testing.T) {
	epoch := sample(1).Epoch
	tests := []struct {
		name    string
		h       BatchHeader
		n       int
		decodes bool
	}{
		{"normal", BatchHeader{Store: "S001", Epoch: epoch}, 3, true},
		{"one record", BatchHeader{Store: "S001", Epoch: epoch}, 1, true},
		{"replay", BatchHeader{Store: "S001", Epoch: epoch, Replay: true, CommandID: "replay-0a1b2c"}, 2, true},
		{"replay without command id", BatchHeader{Store: "S001", Epoch: epoch, Replay: true}, 2, true},
		{"command id without replay", BatchHeader{Store: "S001", Epoch: epoch, CommandID: "c1"}, 1, true},
		{"no records", BatchHeader{Store: "S001", Epoch: epoch}, 0, false},
		{"no records, replay", BatchHeader{Store: "S001", Epoch: epoch, Replay: true, CommandID: "c1"}, 0, false},
		{"empty strings", BatchHeader{}, 0, false},
		{"quotes and backslashes", BatchHeader{Store: `S"1`, Epoch: `e\`, Replay: true, CommandID: `\"`}, 1, true},
		{"html characters", BatchHeader{Store: "S<1", Epoch: "e>", CommandID: "a&b"}, 1, true},
		{"control characters", BatchHeader{Store: "S\x01\x1f\x7f", Epoch: "e\t\n\r\b\f", CommandID: "\x1b"}, 1, true},
		{"NUL in epoch", BatchHeader{Store: "S1", Epoch: "e\x00"}, 1, false}, // PostgreSQL cannot store it
		{"unicode", BatchHeader{Store: "Zürich-Ω", Epoch: "日本", CommandID: "line\u2028para\u2029"}, 2, true},
		{"invalid utf-8", BatchHeader{Store: "S\xff", Epoch: "\xc3(", CommandID: "\xed\xa0\x80"}, 1, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			const first = 7
			recs, raws := records(tt.h.Store, tt.h.Epoch, first, tt.n)
			want, err := json.Marshal(Batch{V: Version, Store: tt.h.Store, Epoch: tt.h.Epoch, Records: recs, Replay: tt.h.Replay, CommandID: tt.h.CommandID})
			if err != nil {
				t.Fatal(err)
			}
			got := AppendBatch(nil, tt.h, raws)
			if !bytes.Equal(got, want) {
				t.Fatalf("AppendBatch:\n got %s\nwant %s", got, want)
			}
			// Appending keeps what dst holds.
			if got := AppendBatch([]byte("xy"), tt.h, raws); string(got) != "xy"+string(want) {
				t.Fatalf("AppendBatch onto a prefix: %s", got)
			}
			b, err := DecodeBatch(tt.h.Store, got)
			if !tt.decodes {
				if err == nil {
					t.Fatalf("DecodeBatch accepted %s", got)
				}
				return
			}
			if err != nil {
				t.Fatalf("DecodeBatch: %v", err)
			}
			if b.V != Version || b.Store != tt.h.Store || b.Epoch != tt.h.Epoch || b.Replay != tt.h.Replay || b.CommandID != tt.h.CommandID || len(b.Records) != tt.n {
				t.Fatalf("decoded %+v", b)
			}
			for i, r := range b.Records {
				if r.Seq != first+uint64(i) || !bytes.Equal(r.Wire, raws[i]) {
					t.Fatalf("records[%d]: seq %d, wire %s", i, r.Seq, r.Wire)
				}
			}
		})
	}
}

func FuzzAppendBatch(f *testing.F) {
	f.Add("S001", sample(1).Epoch, "", false, uint8(2))
	f.Add("S001", "e", "replay-0a1b", true, uint8(1))
	f.Add(`S"<\>&`, "\x00\u2028", "\xff", true, uint8(0))
	f.Fuzz(func(t *testing.T, store, epoch, commandID string, replay bool, n uint8) {
		h := BatchHeader{Store: store, Epoch: epoch, Replay: replay, CommandID: commandID}
		recs, raws := records(store, epoch, 1, int(n%4))
		got := AppendBatch(nil, h, raws)
		want, err := json.Marshal(Batch{V: Version, Store: store, Epoch: epoch, Records: recs, Replay: replay, CommandID: commandID})
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, want) {
			t.Fatalf("AppendBatch:\n got %s\nwant %s", got, want)
		}
		var back struct {
			Batch
			Records []json.RawMessage `json:"records"`
		}
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatalf("not JSON: %v\n%s", err, got)
		}
		if back.V != Version || back.Replay != replay || len(back.Records) != len(raws) {
			t.Fatalf("decoded %+v from %s", back, got)
		}
		valid := utf8.ValidString(store) && utf8.ValidString(epoch) && utf8.ValidString(commandID)
		if valid && (back.Store != store || back.Epoch != epoch || back.CommandID != commandID) {
			t.Fatalf("strings changed: %q %q %q from %s", back.Store, back.Epoch, back.CommandID, got)
		}
		if len(raws) > 0 && epoch != "" && ValidateStoreID(store) == nil && valid {
			if _, err := DecodeBatch(store, got); err != nil {
				t.Fatalf("DecodeBatch: %v\n%s", err, got)
			}
		}
	})
}
