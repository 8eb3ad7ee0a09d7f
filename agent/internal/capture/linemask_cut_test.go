package capture

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/agent/internal/profile"
	firmwareprofiles "github.com/lanebridge/lanebridge/firmware-profiles"
)

// jsonEscape spells every character of s as a JSON \u escape.
func jsonEscape(s string) string {
	var b strings.Builder
	for _, c := range s {
		fmt.Fprintf(&b, `\u%04x`, c)
	}
	return b.String()
}

// cutCases are lines with card data that a cut of a partial line (maxMaskLine, an idle flush)
// must not split from what makes it card data; secret is what must never be let out, in the
// bytes or their JSON-unescaped view.
var cutCases = []struct {
	name, line string
	secret     []string
}{
	{"escaped pan", `{"kind":"sale","tenders":[{"type":"card","ref":"` + jsonEscape("4111111111111111") + `"}],"total":1}`, []string{"4111111111111111", "111111111111111"}},
	{"spaced pan", "CARD 4111 1111 1111 1111 APPROVED", []string{"4111 1111 1111 1111", "1111 1111 1111"}},
	{"escaped fullwidth pan", `{"d":"` + jsonEscape("４１１１１１１１１１１１１１１１") + `"}`, []string{"４１１１１１１１１１１１１１１１", "１１１１１１１１１１１１"}},
	{"pan split by a printer command", "CARD 4111 11\x1bE\x0111 1111 1111 APPROVED", []string{"11 1111 1111"}},
	{"cvv text", "CVV: 987 APPROVED", []string{"987"}},
	{"cvv2 text", "TIP 0.00 CVV2 987", []string{"987"}},
	{"cvv json member", `{"kind":"sale","cvv":"987","total":1}`, []string{"987"}},
	{"cvc nested json member", `{"card":{"cvc": "987"},"total":1}`, []string{"987"}},
	{"escaped pin json member", `{"pin":"` + jsonEscape("9876") + `"}`, []string{"9876"}},
	{"track 1", "%B4111111111111111^DOE/JOHN^2912101000000000?", []string{"DOE/JOHN", "2912101", "111111111111111"}},
	{"track 2", ";4111111111111111=29121010000000000000?", []string{"2912101", "111111111111111"}},
}

func jsonlProfile(t *testing.T) *profile.Profile {
	t.Helper()
	y, err := firmwareprofiles.FS.ReadFile("canonical-jsonl.yaml")
	if err != nil {
		t.Fatal(err)
	}
	p, err := profile.Load(bytes.NewReader(y))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// checkNoSecret fails if out, or its JSON-unescaped view, holds a secret.
func checkNoSecret(t *testing.T, what string, out []byte, secrets []string) {
	t.Helper()
	for _, v := range [][]byte{out, profile.UnescapeJSON(out)} {
		for _, s := range secrets {
			if bytes.Contains(v, []byte(s)) {
				i := bytes.Index(v, []byte(s))
				t.Fatalf("%s: %q let out: …%q…", what, s, v[max(0, i-40):min(len(v), i+len(s)+40)])
			}
		}
	}
}

// TestLineMaskerLongLineCut: a line longer than maxMaskLine arriving without LF is cut, wherever
// the cut falls and however the line arrives (TCP segments, serial and dir reads, random
// splits), never through a card number, a JSON escape, a label and its code, or track data.
func TestLineMaskerLongLineCut(t *testing.T) {
	p := jsonlProfile(t)
	rng := rand.New(rand.NewPCG(1, 2))
	chunkings := []struct {
		name string
		next func() int
	}{
		{"1460", func() int { return 1460 }},
		{"4096", func() int { return 4096 }},
		{"random", func() int { return 1 + rng.IntN(3000) }},
	}
	for _, tc := range cutCases {
		for _, ch := range chunkings {
			t.Run(tc.name+"/"+ch.name, func(t *testing.T) {
				// Padding lengths that move the cut over every byte of the card data.
				for pad := maxMaskLine - len(tc.line) - panSpan; pad < maxMaskLine+2*panSpan+len(tc.line); pad++ {
					for _, withPrepare := range []bool{true, false} {
						line := strings.Repeat("x", pad) + " " + tc.line + " " + strings.Repeat("y", 3*panSpan) + "\n"
						lm := &LineMasker{M: pan.New(pan.Options{})}
						if withPrepare {
							lm = newLineMasker(pan.New(pan.Options{}), nil, p)
						}
						var out []byte
						for in := []byte(line); len(in) > 0; {
							n := min(ch.next(), len(in))
							out = append(out, lm.Write(in[:n])...)
							in = in[n:]
						}
						out = append(out, lm.Flush()...)
						checkNoSecret(t, fmt.Sprintf("pad %d, prepare %v", pad, withPrepare), out, tc.secret)
					}
				}
			})
		}
	}
}

// TestLineMaskerIdleFlush: an idle flush (a device pausing) at any byte of a line lets out only
// what no card data can span; the rest follows with the next bytes.
func TestLineMaskerIdleFlush(t *testing.T) {
	p := jsonlProfile(t)
	for _, tc := range cutCases {
		t.Run(tc.name, func(t *testing.T) {
			line := tc.line + " OK\n"
			for k := 1; k < len(line); k++ {
				for j := k; j < len(line); j += 7 { // a second pause later on
					lm := newLineMasker(pan.New(pan.Options{}), nil, p)
					out := lm.Write([]byte(line[:k]))
					out = append(out, lm.FlushIdle()...)
					out = append(out, lm.Write([]byte(line[k:j]))...)
					out = append(out, lm.FlushIdle()...)
					out = append(out, lm.Write([]byte(line[j:]))...)
					out = append(out, lm.Flush()...)
					checkNoSecret(t, fmt.Sprintf("pauses at %d and %d", k, j), out, tc.secret)
				}
			}
		})
	}
	// What no card data can span is let out at once; a tail that could be the start of a card
	// number, escape, label or track is held for the next bytes.
	for _, tt := range []struct{ in, out string }{
		{"THANK YOU", "THANK YOU"},
		{"TOTAL 12.00", "TOTAL 12."},
		{"\x1d\x56\x42\x00", "\x1d\x56\x42\x00"},
		{"\x1dk\x49\x12{B4111111111111111\x1dV\x00", "\x1dk\x49\x12{B411111******1111\x1dV\x00"},
		{"ACCT 4111 11\x1bE\x01", "ACCT"},
		{`{"ref":"\u0034`, `{"ref":"`},
		{"PAID BY CV", "PAID BY"},
		{"CARD 4111 1111", "CARD"},
	} {
		lm := &LineMasker{M: pan.New(pan.Options{})}
		lm.Write([]byte(tt.in))
		if got := string(lm.FlushIdle()); got != tt.out {
			t.Errorf("FlushIdle after %q = %q, want %q", tt.in, got, tt.out)
		}
		if got := string(lm.Flush()); got != tt.in[len(tt.out):] {
			t.Errorf("Flush after %q = %q, want the rest", tt.in, got)
		}
	}
}

// TestLineMaskerEscapesWithoutPrepare: a LineMasker without Prepare (the capture tool without a
// canonical-jsonl profile) still masks a card number spelled in JSON escapes.
func TestLineMaskerEscapesWithoutPrepare(t *testing.T) {
	for _, tt := range []struct{ name, in, want string }{
		{"escaped pan", `{"ref":"` + jsonEscape("4111111111111111") + `"}`, `{"ref":"411111******1111"}`},
		{"partly escaped", `{"ref":"\u0034111 1111 1111 1111"}`, `{"ref":"4111 11** **** 1111"}`},
		{"escaped cvv", `{"cvv":"` + jsonEscape("987") + `"}`, ""},
		{"escapes without card data kept", `{"d":"caf\u00e9 \u0031\u0032"}`, `{"d":"caf\u00e9 \u0031\u0032"}`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			lm := &LineMasker{M: pan.New(pan.Options{})}
			if got := string(lm.Write([]byte(tt.in + "\n"))); got != tt.want+"\n" {
				t.Errorf("got %q, want %q", got, tt.want+"\n")
			}
		})
	}
}
