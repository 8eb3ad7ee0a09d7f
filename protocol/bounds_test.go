package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"
)

func TestClipAndSafeText(t *testing.T) {
	for _, tc := range []struct{ in, clip, safe string }{
		{"abcd", "abcd", "abcd"},
		{strings.Repeat("a", 10), "aaaa…6 more bytes", strings.Repeat("a", 10)},
		{"aééé", "aé…4 more bytes", "aééé"}, // never cuts inside a rune
		{"a\x00b", "a\x00b", "a\u2400b"},
		{"a\xffb", "a\xffb", "a\uFFFDb"},
	} {
		if got := Clip(tc.in, 4); got != tc.clip {
			t.Errorf("Clip(%q, 4) = %q, want %q", tc.in, got, tc.clip)
		}
		if got := SafeText(tc.in); got != tc.safe {
			t.Errorf("SafeText(%q) = %q, want %q", tc.in, got, tc.safe)
		}
	}
	big := strings.Repeat("x", 1<<20)
	if got := Excerpt(big); len(got) > MaxText+32 || !strings.HasSuffix(got, fmt.Sprintf("…%d more bytes", 1<<20-MaxText)) {
		t.Errorf("Excerpt(1 MiB) is %d bytes ending %q", len(got), got[len(got)-20:])
	}
}

// TestValidateBounds: money beyond ±10^13, seq beyond 2^53 and NUL in text are rejected with
// the field named; the limits themselves pass.
func TestValidateBounds(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(r *Record)
		field string // "" = valid
	}{
		{"total at limit", func(r *Record) { r.Total = MaxMoney }, ""},
		{"total beyond", func(r *Record) { r.Total = MaxMoney + 1 }, "total"},
		{"negative beyond", func(r *Record) { r.Change = -MaxMoney - 1 }, "change"},
		{"line amount", func(r *Record) { r.Lines[1].Amount = 1 << 62 }, "lines[1].amount"},
		{"tender", func(r *Record) { r.Tenders[0].Amount = MaxMoney * 2 }, "tenders[0].amount"},
		{"z gross", func(r *Record) {
			r.Kind, r.Z = KindZReport, &ZReport{Gross: MaxMoney + 1}
		}, "z.gross"},
		{"z tax", func(r *Record) {
			r.Kind, r.Z = KindZReport, &ZReport{Taxes: []Tax{{Code: "A", Amount: -1 << 63}}}
		}, "z.taxes[0].amount"},
		{"seq at limit", func(r *Record) { r.Seq = MaxSeq }, ""},
		{"seq beyond", func(r *Record) { r.Seq = MaxSeq + 1 }, "seq"},
		{"NUL in description", func(r *Record) { r.Lines[0].Description = "Milk\x00" }, "lines[0]"},
		{"NUL in receipt", func(r *Record) { r.Receipt = "1\x00" }, "receipt"},
		{"NUL in source", func(r *Record) { r.Source.Raw = "f\x00" }, "epoch/source"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := sample(1)
			tc.edit(&r)
			r.Seal()
			err := r.Validate()
			var ve *ValidationError
			switch {
			case tc.field == "" && err != nil:
				t.Fatalf("Validate = %v, want valid", err)
			case tc.field != "" && (!errors.As(err, &ve) || ve.Field != tc.field):
				t.Fatalf("Validate = %v, want a ValidationError on %s", err, tc.field)
			}
		})
	}
}

func TestDecodeBatchRejectsInvalidUTF8(t *testing.T) {
	r := sample(1)
	r.Lines[0].Description = "MILK"
	r.Seal()
	b := AppendBatch(nil, BatchHeader{Store: r.Store, Epoch: r.Epoch}, [][]byte{[]byte(strings.Replace(string(mustJSON(t, r)), "MILK", "MI\xffK", 1))})
	if _, err := DecodeBatch(r.Store, b); err == nil || !strings.Contains(err.Error(), "UTF-8") {
		t.Fatalf("DecodeBatch(invalid UTF-8 in a record) = %v, want a UTF-8 error", err)
	}
}

// TestStatusBound: a status with 1 MiB texts and thousands of entries is cut to the limits.
func TestStatusBound(t *testing.T) {
	big := strings.Repeat("y", 1<<20) + "\x00"
	s := Status{Store: "S001", Version: big, LastCapture: map[string]time.Time{}}
	for i := range 3 * MaxStatusList {
		s.Quarantine = append(s.Quarantine, Quarantined{ID: fmt.Sprint(i), Excerpt: big})
		s.Alarms = append(s.Alarms, big)
		s.LastCapture[fmt.Sprintf("T%04d", i)] = time.Time{}
	}
	s.CommandResults = []CommandResult{{ID: "c1", Found: 1 << 20, Seqs: make([]uint64, 1<<20)}}
	if !s.Bound() {
		t.Fatal("Bound reported nothing cut")
	}
	if len(s.Quarantine) != MaxStatusList || len(s.Alarms) != MaxStatusList || len(s.LastCapture) != MaxStatusList {
		t.Fatalf("lists after Bound: %d quarantine, %d alarms, %d terminals", len(s.Quarantine), len(s.Alarms), len(s.LastCapture))
	}
	if len(s.CommandResults[0].Seqs) != 10*MaxStatusList || s.CommandResults[0].Found != 1<<20 {
		t.Fatalf("command result seqs %d, found %d", len(s.CommandResults[0].Seqs), s.CommandResults[0].Found)
	}
	if s.Quarantine[0].ID != "0" || len(s.Quarantine[0].Excerpt) > MaxText+32 || len(s.Version) > MaxText+32 {
		t.Fatalf("texts not clipped: excerpt %d bytes, version %d bytes", len(s.Quarantine[0].Excerpt), len(s.Version))
	}
	small := Status{Store: "S001", Alarms: []string{"spool 80%"}}
	if small.Bound() {
		t.Fatal("Bound cut a small status")
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestStorableJSON(t *testing.T) {
	for _, tc := range []struct {
		in, out string
		ok      bool
	}{
		{`{"a":"x"}`, `{"a":"x"}`, true},
		{`{"a":"x\u0000y"}`, `{"a":"x\u2400y"}`, false},
		{`{"a":"x\\u0000y"}`, `{"a":"x\\u0000y"}`, true}, // a backslash, then text
		{`{"a":"x\\\u0000"}`, `{"a":"x\\\u2400"}`, false},
		{`{"a":"\ud83d\ude00"}`, `{"a":"\ud83d\ude00"}`, true}, // a pair is fine
		{`{"a":"\ud83d"}`, `{"a":"\ud83d"}`, false},
		{`{"a":"\ude00"}`, `{"a":"\ude00"}`, false},
		{`{"a":"\ud83dx\ude00"}`, `{"a":"\ud83dx\ude00"}`, false},
	} {
		if got := string(StorableJSON([]byte(tc.in))); got != tc.out {
			t.Errorf("StorableJSON(%s) = %s, want %s", tc.in, got, tc.out)
		}
		if err := checkStorable([]byte(tc.in)); (err == nil) != tc.ok {
			t.Errorf("checkStorable(%s) = %v, want ok=%v", tc.in, err, tc.ok)
		}
	}
}
