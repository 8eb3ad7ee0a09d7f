package profile_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/profile"
	firmwareprofiles "github.com/lanebridge/lanebridge/firmware-profiles"
	"github.com/lanebridge/lanebridge/protocol"
)

// jsonlRecord is a valid canonical line with one line item whose description is desc (a JSON
// string literal body, escapes allowed) and extra JSON members appended.
func jsonlRecord(desc, extra string) string {
	return `{"kind":"sale","terminal":"T1","receipt":"7","business_date":"2026-11-26","lines":[{"description":"` + desc +
		`","quantity":"1","unit_price":100,"amount":100}],"total":100,"tenders":[{"type":"cash","amount":100}]` + extra + `}`
}

// TestCanonicalJSONL is the table of the one canonical JSON lines parser: what becomes a record,
// what is skipped, what is quarantined with which reason, and that card data is masked in all
// of it (records, raw text, reasons) whichever field or JSON spelling carries it.
func TestCanonicalJSONL(t *testing.T) {
	ps := shipped(t)
	def := ps["canonical-jsonl"]
	y, err := firmwareprofiles.FS.ReadFile("canonical-jsonl.yaml")
	if err != nil {
		t.Fatal(err)
	}
	last4, err := profile.Load(bytes.NewReader(append(y, "card:\n  last_four_only: true\n"...)))
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		p       *profile.Profile
		line    string
		skip    bool   // no result at all
		err     string // quarantined with a reason containing this
		raw     string // quarantined raw text contains this
		check   func(t *testing.T, r *protocol.Record)
		flagged bool
	}{
		{name: "valid", line: jsonlRecord("MILK", ""), check: func(t *testing.T, r *protocol.Record) {
			if r.Terminal != "T1" || r.Currency != "USD" || r.Lines[0].Description != "MILK" {
				t.Errorf("record %+v: want terminal T1, profile currency USD, description MILK", r)
			}
		}},
		{name: "crlf and surrounding blanks", line: "  " + jsonlRecord("MILK", "") + " \r"},
		{name: "agent fields dropped", line: jsonlRecord("MILK", `,"epoch":"e1","seq":9,"hash":"ab","captured_at":"2026-11-26T10:00:00Z","source":{"raw":"4111111111111111"}`),
			check: func(t *testing.T, r *protocol.Record) {
				if r.Epoch != "" || r.Seq != 0 || r.Hash != "" || !r.CapturedAt.IsZero() || r.Source != nil {
					t.Errorf("agent-assigned fields kept: %+v", r)
				}
			}},
		{name: "unknown field ignored", line: jsonlRecord("MILK", `,"note":"hello"`)},
		{name: "blank", line: "   ", skip: true},
		{name: "comment", line: "# exported 2026-11-26 4111111111111111", skip: true},
		{name: "indented comment", line: "  # header", skip: true},
		{name: "not json", line: "SALE 12.00 VISA 4111 1111 1111 1111", err: "decode: invalid character", raw: "4111 11** **** 1111"},
		{name: "cut short", line: `{"kind":"sale","terminal":"T1",`, err: "decode: unexpected EOF"},
		{name: "two values", line: jsonlRecord("MILK", "") + jsonlRecord("MILK", ""), err: "text after the JSON record"},
		{name: "trailing brace", line: jsonlRecord("MILK", "") + "}", err: "text after the JSON record"},
		{name: "bad date", line: `{"kind":"sale","terminal":"T1","business_date":"14/03/2024","total":1}`, err: `business_date: "14/03/2024" is not YYYY-MM-DD`},
		{name: "unknown kind", line: `{"kind":"refund","terminal":"T1","business_date":"2026-11-26"}`, err: `unknown kind "refund"`},
		{name: "other terminal", line: strings.Replace(jsonlRecord("MILK", ""), `"T1"`, `"T2"`, 1), err: `terminal "T2", but this source is terminal "T1"`},
		{name: "invariant flagged", line: strings.Replace(jsonlRecord("MILK", ""), `"total":100`, `"total":90`, 1), flagged: true},
		// Card data, in every field and spelling.
		{name: "pan in description", line: jsonlRecord("CARD 4111111111111111", ""), check: wantDesc("CARD 411111******1111")},
		{name: "pan with spaces", line: jsonlRecord("CARD 4111 1111 1111 1111", ""), check: wantDesc("CARD 4111 11** **** 1111")},
		{name: "pan with dashes", line: jsonlRecord("CARD 4111-1111-1111-1111", ""), check: wantDesc("CARD 4111-11**-****-1111")},
		{name: "pan in json escapes", line: jsonlRecord(`\u0034111111111111111`, ""), check: wantDesc("411111******1111")},
		{name: "pan all escaped", line: jsonlRecord(`\u0034\u0031\u0031\u0031\u0020\u0031111 1111 1111`, ""), check: wantDesc("4111 11** **** 1111")},
		{name: "escaped backslash is not an escape", line: jsonlRecord(`\\u0034111`, ""), check: wantDesc(`\u0034111`)},
		{name: "pan in receipt", line: strings.Replace(jsonlRecord("MILK", ""), `"receipt":"7"`, `"receipt":"4111111111111111"`, 1),
			check: func(t *testing.T, r *protocol.Record) {
				if r.Receipt != "411111******1111" {
					t.Errorf("receipt %q", r.Receipt)
				}
			}},
		{name: "pan in card brand", line: strings.Replace(jsonlRecord("MILK", ""), `{"type":"cash","amount":100}`, `{"type":"card","amount":100,"card":{"brand":"4111 1111 1111 1111","last4":"1111"}}`, 1),
			check: func(t *testing.T, r *protocol.Record) {
				if c := r.Tenders[0].Card; c == nil || c.Brand != "4111 11** **** 1111" {
					t.Errorf("card %+v", c)
				}
			}},
		{name: "last four only", p: last4, line: jsonlRecord("CARD 4111111111111111", ""), check: wantDesc("CARD ************1111")},
		{name: "pan in bad date", line: `{"kind":"sale","terminal":"T1","business_date":"4111111111111111","total":1}`, err: `business_date: "411111******1111"`, raw: "411111******1111"},
		{name: "escaped pan in unknown field of a bad line", line: `{"kind":"refund","note":"\u0034111 1111 1111 1111","terminal":"T1","business_date":"2026-11-26"}`,
			err: `unknown kind "refund"`, raw: "4111 11** **** 1111"},
		{name: "pan as a number", line: strings.Replace(jsonlRecord("MILK", ""), `"total":100`, `"total":4111111111111111`, 1), err: "decode", raw: "411111******1111"},
		{name: "track data", line: jsonlRecord("%B4111111111111111^DOE/JOHN^2912101000000000?", ""), err: "track data or a card security code", raw: "[line removed: card data]"},
		{name: "track 2 escaped", line: jsonlRecord(`;4111111111111111\u003d29121010000000000000?`, ""), err: "track data", raw: "[line removed: card data]"},
		{name: "cvv", line: jsonlRecord("CVV2 123", ""), err: "card security code", raw: "[line removed: card data]"},
		{name: "cvv as a json member", line: jsonlRecord("MILK", `,"cvv":"123"`), err: "card security code", raw: "[line removed: card data]"},
		{name: "cvv as a json member of a bad line", line: jsonlRecord("MILK", `,"kind2":1,"cvv":"123","total":"bad"`), err: "card security code", raw: "[line removed: card data]"},
		{name: "pin as a nested json member", line: jsonlRecord("MILK", `,"card":{"pin": "1234"}`), err: "card security code", raw: "[line removed: card data]"},
		{name: "pan in fullwidth digits", line: jsonlRecord("４１１１ １１１１ １１１１ １１１１", ""), check: wantDesc("４１１１ １１" + strings.Repeat("*", 6) + " " + strings.Repeat("*", 12) + " １１１１")},
		{name: "pan in escaped fullwidth digits", line: jsonlRecord(`\uff14\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11\uff11`, ""), check: wantDesc("４１１１１１" + strings.Repeat("*", 18) + "１１１１")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := tt.p
			if p == nil {
				p = def
			}
			ps := p.NewParser("T1")
			res := append(ps.Feed([]byte(tt.line+"\n"), t0), ps.Close()...)
			out, _ := json.Marshal(render(res))
			for _, r := range res {
				out = append(out, r.Raw...)
			}
			for _, pan := range []string{"4111111111111111", "4111 1111 1111 1111", "4111-1111-1111-1111", "DOE/JOHN", "CVV2 123", `"cvv":"123"`, `"pin": "1234"`,
				"４１１１１１１１１１１１１１１１", "４１１１ １１１１ １１１１ １１１１", `\uff11\uff11\uff11\uff11\uff11\uff11`} {
				if bytes.Contains(out, []byte(pan)) {
					t.Fatalf("output holds %q: %s", pan, out)
				}
			}
			if tt.skip {
				if len(res) != 0 {
					t.Fatalf("want no result, got %s", out)
				}
				return
			}
			if len(res) != 1 {
				t.Fatalf("want 1 result, got %d: %s", len(res), out)
			}
			r := res[0]
			if tt.err != "" {
				if r.Err == nil || !strings.Contains(r.Err.Error(), tt.err) || r.Record != nil {
					t.Fatalf("want quarantine with %q, got %s", tt.err, out)
				}
				if !strings.Contains(r.Raw, tt.raw) {
					t.Fatalf("raw %q lacks %q", r.Raw, tt.raw)
				}
				return
			}
			if r.Err != nil || r.Record == nil {
				t.Fatalf("want a record, got %s", out)
			}
			if err := r.Record.ValidateBusiness(); err != nil {
				t.Fatalf("record fails validation: %v", err)
			}
			if got := len(r.Flags) > 0; got != tt.flagged {
				t.Fatalf("flags %v, want flagged %v", r.Flags, tt.flagged)
			}
			if tt.check != nil {
				tt.check(t, r.Record)
			}
		})
	}
}

func wantDesc(want string) func(*testing.T, *protocol.Record) {
	return func(t *testing.T, r *protocol.Record) {
		t.Helper()
		if got := r.Lines[0].Description; got != want {
			t.Errorf("description %q, want %q", got, want)
		}
	}
}

// TestCanonicalJSONLEveryString: a card number in any JSON spelling (plain, grouped by escaped
// tabs, line breaks or slashes, no-break spaces, en dashes, \u escapes) in every string the
// record has, and in nested members the record does not know, is masked: neither the record
// nor the raw text kept for quarantine holds its digits in a row.
func TestCanonicalJSONLEveryString(t *testing.T) {
	p := shipped(t)["canonical-jsonl"]
	pan := "4111" + "1111" + "1111" + "1111"
	g := []string{pan[0:4], pan[4:8], pan[8:12], pan[12:16]}
	forms := map[string]string{
		"plain":    pan,
		"tabs":     strings.Join(g, `\t`),
		"newlines": strings.Join(g, `\n`),
		"crlf":     strings.Join(g, `\r\n`),
		"slashes":  strings.Join(g, `\/`),
		"nbsp":     strings.Join(g, `\u00a0`),
		"en dash":  strings.Join(g, `\u2013`),
		"escaped":  `\u0034\u0031\u0031\u0031` + pan[4:],
		"commas":   strings.Join(g, ","),
	}
	fields := []string{
		`"receipt":"%s"`, `"time":"%s"`, `"original_receipt":"%s"`, `"store":"%s"`,
		`"lines":[{"sku":"%s","description":"MILK","quantity":"1","unit_price":100,"amount":100}]`,
		`"lines":[{"description":"%s","quantity":"1","unit_price":100,"amount":100,"department":"%[1]s"}]`,
		`"discounts":[{"description":"%s","amount":0}]`,
		`"taxes":[{"code":"%s","rate":"1","taxable":0,"amount":0}]`,
		`"tenders":[{"type":"card","amount":100,"card":{"brand":"%s","last4":"1111"}}]`,
		`"note":"%s"`, `"extra":{"deep":[{"x":"%s"}]}`, `"z":{"tenders":[{"type":"%s","amount":0}]}`,
	}
	for name, form := range forms {
		for _, f := range fields {
			line := `{"kind":"sale","terminal":"T1","receipt":"7","business_date":"2026-11-26","total":100,` + strings.ReplaceAll(f, "%[1]s", form)
			line = strings.Replace(line, "%s", form, 1) + "}\n"
			parser := p.NewParser("T1")
			res := append(parser.Feed([]byte(line), time.Now()), parser.Close()...)
			if len(res) != 1 {
				t.Fatalf("%s %s: %d results", name, f, len(res))
			}
			var text []byte
			if res[0].Record != nil {
				text, _ = json.Marshal(res[0].Record)
			}
			text = append(append(text, res[0].Raw...), fmt.Sprint(res[0].Err)...)
			var digits []byte
			for _, c := range text {
				if c >= '0' && c <= '9' {
					digits = append(digits, c)
				}
			}
			if bytes.Contains(digits, []byte(pan)) {
				t.Errorf("%s in %s: card number kept: %s", name, f, text)
			}
		}
	}
}
