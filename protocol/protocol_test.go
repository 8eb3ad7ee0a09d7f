package protocol

import (
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite golden files")

func sample(seq uint64) Record {
	r := Record{
		Kind: KindSale, Store: "S001", Terminal: "T1", Receipt: "1001", BusinessDate: "2026-11-26",
		Time: "2026-11-26T09:15:00-05:00", Currency: "USD",
		Lines:     []Line{{SKU: "100001", Description: "Milk 1L", Quantity: "2", UnitPrice: 129, Amount: 258, Department: "DAIRY"}, {SKU: "100005", Description: "Apples kg", Quantity: "0.456", UnitPrice: 299, Amount: 136}},
		Discounts: []Discount{{Description: "loyalty", Amount: 10}},
		Taxes:     []Tax{{Code: "T1", Rate: "8.25", Taxable: 384, Amount: 32}},
		Total:     416,
		Tenders:   []Tender{{Type: TenderCard, Amount: 416, Card: &Card{Brand: "visa", Last4: "1111"}}},
		Epoch:     "0f1e2d3c4b5a69788796a5b4c3d2e1f0", Seq: seq,
		CapturedAt: time.Date(2026, 11, 26, 14, 15, 0, 123000, time.UTC),
		Source:     &Source{Terminal: "T1", Profile: "canonical-jsonl", Raw: "file:T1.jsonl@0"},
	}
	r.Seal()
	return r
}

// TestGoldenV1: the v1 samples under testdata/v1 must decode forever.
func TestGoldenV1(t *testing.T) {
	b := Batch{V: 1, Store: "S001", Epoch: sample(1).Epoch, Records: []Record{sample(1), sample(2)}}
	path := filepath.Join("testdata", "v1", "batch.json")
	if *update {
		out, _ := json.MarshalIndent(b, "", "  ")
		if err := os.WriteFile(path, append(out, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, name := range []string{"batch.json", "batch-with-unknown-fields.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "v1", name))
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeBatch("S001", raw)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got.Records) != 2 || got.Records[1].Seq != 2 || got.Records[0].Lines[1].Quantity != "0.456" || got.Records[0].Total != 416 {
			t.Fatalf("%s decoded to %+v", name, got)
		}
	}
	for _, name := range []string{"ack.json", "status.json"} {
		raw, err := os.ReadFile(filepath.Join("testdata", "v1", name))
		if err != nil {
			t.Fatal(err)
		}
		switch name {
		case "ack.json":
			if a, err := DecodeAck(raw); err != nil || a.AppliedThrough != 42 || a.ResendFrom != 43 {
				t.Fatalf("ack: %+v %v", a, err)
			}
		case "status.json":
			if s, err := DecodeStatus("S001", raw); err != nil || s.Backlog != 7 || s.State != "online" {
				t.Fatalf("status: %+v %v", s, err)
			}
		}
	}
}

func TestDecodeBatchRejects(t *testing.T) {
	good := func() Batch {
		return Batch{V: 1, Store: "S001", Epoch: sample(1).Epoch, Records: []Record{sample(1), sample(2)}}
	}
	enc := func(b Batch) []byte { out, _ := json.Marshal(b); return out }
	tamper := good()
	tamper.Records[1].Total = 1
	gap := good()
	gap.Records[1] = sample(3)
	other := good()
	other.Store = "S002"
	tests := []struct {
		name    string
		store   string
		payload []byte
		want    error
		wantMsg string
	}{
		{"not json", "S001", []byte("{"), ErrDecode, ""},
		{"newer version", "S001", []byte(`{"v":2,"store":"S001"}`), ErrTooNew, ""},
		{"older version", "S001", []byte(`{"v":0,"store":"S001"}`), ErrTooOld, ""},
		{"topic of another store", "S002", enc(good()), ErrWrongStore, ""},
		{"records of another store", "S002", enc(other), ErrWrongStore, ""},
		{"tampered record", "S001", enc(tamper), nil, "hash"},
		{"gap inside batch", "S001", enc(gap), nil, "contiguous"},
		{"empty", "S001", []byte(`{"v":1,"store":"S001","epoch":"e","records":[]}`), nil, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := DecodeBatch(tt.store, tt.payload)
			if err == nil || b != nil {
				t.Fatalf("DecodeBatch accepted it: %+v", b)
			}
			if tt.want != nil && !errors.Is(err, tt.want) {
				t.Fatalf("err = %v, want %v", err, tt.want)
			}
			if tt.wantMsg != "" && !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("err = %v, want it to mention %q", err, tt.wantMsg)
			}
		})
	}
}

func TestValidateStoreID(t *testing.T) {
	for id, ok := range map[string]bool{"S001": true, "store-12_b": true, "": false, "a/b": false, "a+": false, "#": false, "a\x00b": false, "a b": false, strings.Repeat("x", 65): false} {
		if err := ValidateStoreID(id); (err == nil) != ok {
			t.Errorf("ValidateStoreID(%q) = %v, want ok=%v", id, err, ok)
		}
	}
}

func TestTopics(t *testing.T) {
	if got := RecordsTopic("S001"); got != "lanebridge/v1/S001/up/records" {
		t.Fatal(got)
	}
	tests := []struct {
		topic, store, suffix string
		ok                   bool
	}{
		{"lanebridge/v1/S001/up/records", "S001", "up/records", true},
		{"lanebridge/v1/S001/down/acks", "S001", "down/acks", true},
		{"lanebridge/v2/S001/up/records", "", "", false},
		{"lanebridge/v1/S+1/up/records", "", "", false},
		{"lanebridge/v1/S001/up", "", "", false},
		{"other/v1/S001/up/records", "", "", false},
	}
	for _, tt := range tests {
		s, suf, err := ParseTopic(tt.topic)
		if (err == nil) != tt.ok || s != tt.store || suf != tt.suffix {
			t.Errorf("ParseTopic(%q) = %q, %q, %v", tt.topic, s, suf, err)
		}
	}
}

func TestCanonicalIsStable(t *testing.T) {
	a, b := sample(1), sample(1)
	if a.Hash != b.Hash || a.Hash != a.ComputeHash() {
		t.Fatal("hash not stable")
	}
	// A round trip through JSON keeps the hash valid.
	raw, _ := json.Marshal(a)
	var c Record
	if err := json.Unmarshal(raw, &c); err != nil {
		t.Fatal(err)
	}
	if err := c.Validate(); err != nil {
		t.Fatalf("round trip: %v", err)
	}
}

func FuzzDecodeBatch(f *testing.F) {
	good, _ := json.Marshal(Batch{V: 1, Store: "S001", Epoch: sample(1).Epoch, Records: []Record{sample(1), sample(2)}})
	f.Add(good)
	f.Add([]byte(`{"v":1}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		b, err := DecodeBatch("S001", payload)
		if err != nil {
			return
		}
		for i, r := range b.Records {
			if r.Validate() != nil || (i > 0 && r.Seq != b.Records[i-1].Seq+1) {
				t.Fatalf("accepted an invalid batch: %+v", b)
			}
		}
	})
}

func TestBusinessKeyAndContentHash(t *testing.T) {
	r := sample(7)
	r.Receipt = "000123"
	if got, want := r.BusinessKey(), r.Store+"|"+r.Terminal+"|"+r.BusinessDate+"|000123|"+string(r.Kind); got != want {
		t.Fatalf("BusinessKey = %q, want %q", got, want)
	}
	noReceipt := r
	noReceipt.Receipt = ""
	if got := noReceipt.BusinessKey(); !strings.Contains(got, "|@"+r.Epoch+":7|") {
		t.Fatalf("BusinessKey without receipt = %q, want the record's identity", got)
	}
	// A re-capture (new epoch, seq, capture time, source) is the same content; other figures are not.
	again := r
	again.Epoch, again.Seq, again.CapturedAt, again.Source = "other-epoch", 99, r.CapturedAt.Add(time.Hour), &Source{Raw: "x"}
	again.Seal()
	if again.ContentHash() != r.ContentHash() || again.BusinessKey() != r.BusinessKey() {
		t.Fatal("a re-capture changed the content hash or the business key")
	}
	changed := r
	changed.Total++
	if changed.ContentHash() == r.ContentHash() {
		t.Fatal("another total has the same content hash")
	}
}
