package profile_test

import (
	"strings"
	"testing"

	"golang.org/x/text/encoding/simplifiedchinese"
)

// A GB18030 receipt laid out with ESC $ columns parses with decoding.multibyte; without the key
// the same bytes decode as CP437 mojibake and the item does not match.
func TestMultiByteProfile(t *testing.T) {
	y := strings.Replace(base, "dialect: plain", "dialect: escpos\n  multibyte: gb18030", 1)
	y = strings.Replace(y, `'^(?P<description>[A-Z]+) (?P<amount>\S+)$'`, `'^(?P<description>\p{Han}+) +(?P<amount>\S+)$'`, 1)
	p := mustLoad(t, y)
	item, err := simplifiedchinese.GB18030.NewEncoder().String("馒头")
	if err != nil {
		t.Fatal(err)
	}
	feed := "START 7 2024-03-14\n" + item + "\x1b$\xf0\x00" + "3.50\nTOTAL 3.50\nCASH 3.50\nEND\n"
	rs := runSteps(p, []step{{feed: feed}, {close: true}})
	if got := summary(rs); got != "sale:7;" {
		t.Fatalf("with multibyte: %s", got)
	}
	if ls := rs[0].Record.Lines; len(ls) != 1 || ls[0].Description != "馒头" || ls[0].Amount != 350 {
		t.Fatalf("lines = %+v, want one 馒头 3.50", ls)
	}
	p2 := mustLoad(t, strings.Replace(y, "\n  multibyte: gb18030", "", 1))
	rs = runSteps(p2, []step{{feed: feed}, {close: true}})
	if len(rs) == 1 && rs[0].Err == nil && len(rs[0].Record.Lines) > 0 {
		t.Fatalf("without multibyte the Han rule matched: %+v", rs[0].Record.Lines)
	}
}
