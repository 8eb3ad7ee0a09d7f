package protocol

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
)

// TestDecodeBatchFastMatchesGeneral: wherever the single-pass decoder accepts a payload, it
// yields what the general decoder yields; the shapes it must leave to the general decoder
// (which the tests of DecodeBatch cover) are refused by it, not misread.
func TestDecodeBatchFastMatchesGeneral(t *testing.T) {
	_, raws := records("S001", sample(1).Epoch, 1, 3)
	good := AppendBatch(nil, BatchHeader{Store: "S001", Epoch: sample(1).Epoch}, raws)
	replay := AppendBatch(nil, BatchHeader{Store: "S001", Epoch: sample(1).Epoch, Replay: true, CommandID: "c1"}, raws)
	indented := new(bytes.Buffer)
	if err := json.Indent(indented, good, "", "  "); err != nil {
		t.Fatal(err)
	}
	rec := string(raws[0])
	tests := []struct {
		name    string
		payload string
		fast    bool
	}{
		{"agent batch", string(good), true},
		{"replay", string(replay), true},
		{"indented", indented.String(), true},
		{"members reordered", `{"records":[` + rec + `],"epoch":"` + sample(1).Epoch + `","store":"S001","v":1}`, true},
		{"replay false", `{"v":1,"store":"S001","epoch":"e","records":[` + rec + `],"replay":false}`, true},
		{"no records", `{"v":1,"store":"S001","epoch":"e","records":[]}`, true},
		{"unknown member", `{"v":1,"store":"S001","epoch":"e","records":[` + rec + `],"x":1}`, false},
		{"case-folded name", `{"v":1,"Store":"S001","epoch":"e","records":[` + rec + `]}`, false},
		{"repeated member", `{"v":1,"store":"S001","store":"S002","epoch":"e","records":[` + rec + `]}`, false},
		{"escaped store", `{"v":1,"store":"S\u0030","epoch":"e","records":[` + rec + `]}`, false},
		{"invalid utf-8 epoch", "{\"v\":1,\"store\":\"S001\",\"epoch\":\"\xff\",\"records\":[" + rec + "]}", false},
		{"null records", `{"v":1,"store":"S001","epoch":"e","records":null}`, false},
		{"record not an object", `{"v":1,"store":"S001","epoch":"e","records":["x"]}`, false},
		{"broken record", `{"v":1,"store":"S001","epoch":"e","records":[{"seq":]}`, false},
		{"unbalanced record", `{"v":1,"store":"S001","epoch":"e","records":[{"seq":1]}`, false},
		{"string with brackets", `{"v":1,"store":"S001","epoch":"e","records":[{"receipt":"}]\"{","seq":1}]}`, true},
		{"trailing garbage", string(good) + "x", false},
		{"float version", `{"v":1.0,"store":"S001","epoch":"e","records":[` + rec + `]}`, false},
		{"no records member", `{"v":1,"store":"S001","epoch":"e"}`, false},
		{"empty object", `{}`, false},
		{"not an object", `[]`, false},
		{"empty", ``, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, fraws, ok := decodeBatchFast([]byte(tt.payload))
			if ok != tt.fast {
				t.Fatalf("fast path ok = %v, want %v", ok, tt.fast)
			}
			if !ok {
				return
			}
			want, graws, err := decodeBatchGeneral([]byte(tt.payload))
			if err != nil {
				t.Fatalf("fast path accepted what the general decoder refuses: %v", err)
			}
			if !reflect.DeepEqual(b, want) {
				t.Fatalf("fast %+v\ngeneral %+v", b, want)
			}
			if len(fraws) != len(graws) {
				t.Fatalf("%d raw records, general %d", len(fraws), len(graws))
			}
			for i := range fraws {
				if !bytes.Equal(fraws[i], graws[i]) {
					t.Fatalf("raw record %d:\n%s\ngeneral\n%s", i, fraws[i], graws[i])
				}
			}
		})
	}
}

// FuzzDecodeBatchFast: DecodeBatch (single-pass where it applies) and the general decoder agree on
// every input: both fail, or both return the same batch.
func FuzzDecodeBatchFast(f *testing.F) {
	_, raws := records("S001", sample(1).Epoch, 1, 2)
	f.Add(AppendBatch(nil, BatchHeader{Store: "S001", Epoch: sample(1).Epoch}, raws))
	f.Add([]byte(`{"v":1,"store":"S001","epoch":"e","records":[{"receipt":"}]\"{","seq":1}]}`))
	f.Fuzz(func(t *testing.T, payload []byte) {
		got, err := DecodeBatch("S001", payload)
		b, graws, gerr := decodeBatchGeneral(payload)
		var want *Batch
		if gerr == nil {
			for i := range graws {
				b.Records[i].Wire = graws[i]
			}
			want, gerr = validateBatch("S001", &b)
		}
		if (err == nil) != (gerr == nil) {
			t.Fatalf("DecodeBatch err %v, general %v", err, gerr)
		}
		if err != nil {
			if err.Error() != gerr.Error() {
				t.Fatalf("DecodeBatch err %q, general %q", err, gerr)
			}
			return
		}
		for i := range got.Records {
			if !bytes.Equal(got.Records[i].Wire, want.Records[i].Wire) {
				t.Fatalf("record %d wire differs", i)
			}
			got.Records[i].Wire, want.Records[i].Wire = nil, nil
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("DecodeBatch %+v\ngeneral %+v", got, want)
		}
	})
}

// TestValidQuantityShapes pins the hand-written checks to the patterns they replace.
func TestValidQuantityShapes(t *testing.T) {
	for q, want := range map[string]bool{"2": true, "-1": true, "0.456": true, "123456789012": true, "1234567890123": false,
		"1.123456": true, "1.1234567": false, "1.": false, ".5": false, "-": false, "": false, "--1": false, "1.2.3": false,
		"+1": false, "1e3": false, " 1": false, "١": false, "-0.0": true} {
		if got := ValidQuantity(q); got != want {
			t.Errorf("ValidQuantity(%q) = %v, want %v", q, got, want)
		}
	}
	for d, want := range map[string]bool{"2026-11-26": true, "2026-1-26": false, "2026-11-26\n": false, "20261126": false, "2026/11/26": false, "２026-11-26": false} {
		if got := isDate(d); got != want {
			t.Errorf("isDate(%q) = %v, want %v", d, got, want)
		}
	}
}

// FuzzDecodeRecordFast: wherever the hand-written record decoder succeeds, encoding/json
// decodes the same bytes to the same Record.
func FuzzDecodeRecordFast(f *testing.F) {
	r := sample(1)
	r.Z = &ZReport{Counter: 3, Gross: 5, Net: 4, Refunds: Counted{1, 2}, Voids: Counted{3, 4}, NoSaleCount: 1,
		Tenders: []TenderTotal{{Type: "cash", Count: 2, Amount: 9}}, Taxes: []Tax{{Code: "A", Taxable: 1, Amount: 2}}, GrandTotal: 77}
	r.Lines[0].Voided = true
	r.Change, r.OriginalReceipt = 5, "77"
	full, _ := json.Marshal(r)
	f.Add(full)
	plain, _ := json.Marshal(sample(2))
	f.Add(plain)
	f.Add([]byte(`{"kind":"sale","lines":[],"taxes":[],"tenders":[{"type":"card","amount":-0,"card":{}}],"seq":9007199254740993}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var got Record
		if !decodeRecordFast(b, &got) {
			return
		}
		var want Record
		if err := json.Unmarshal(b, &want); err != nil {
			t.Fatalf("fast decoder accepted what encoding/json refuses (%v): %s", err, b)
		}
		if !reflect.DeepEqual(got, want) {
			t.Fatalf("fast %+v\njson %+v", got, want)
		}
	})
}

// TestDecodeRecordFastTakesAgentRecords: the records an agent sends (Go's encoder) go through
// the hand-written decoder, not the fallback.
func TestDecodeRecordFastTakesAgentRecords(t *testing.T) {
	r := sample(1)
	r.Z = &ZReport{Gross: 5, Tenders: []TenderTotal{{Type: "cash", Amount: 9}}}
	for _, rec := range []Record{sample(1), r} {
		b, _ := json.Marshal(rec)
		var got Record
		if !decodeRecordFast(b, &got) {
			t.Fatalf("fast decoder refused %s", b)
		}
		rec.Wire = nil
		if !reflect.DeepEqual(got, rec) {
			t.Fatalf("got %+v\nwant %+v", got, rec)
		}
	}
}
