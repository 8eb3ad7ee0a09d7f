package terminal

import (
	"bytes"
	"strings"
	"testing"
)

// TestSetSKUs: with SKUs an Epson receipt carries a PLU line under its items, the same day is
// printed otherwise (no extra random draw); other formats and non-numeric SKUs are refused.
func TestSetSKUs(t *testing.T) {
	day := func(skus []string) []byte {
		g, err := New("epson-tm-escpos", "REG01", "2026-11-26", 3, 0)
		if err != nil {
			t.Fatal(err)
		}
		if skus != nil {
			if err := g.SetSKUs(skus); err != nil {
				t.Fatal(err)
			}
		}
		var b bytes.Buffer
		for range 20 {
			b.Write(g.Next())
		}
		return b.Bytes()
	}
	plain, withSKUs := day(nil), day([]string{"100001", "100002"})
	if bytes.Contains(plain, []byte("PLU ")) {
		t.Fatal("PLU lines printed without SKUs")
	}
	if !bytes.Contains(withSKUs, []byte("  PLU 100001\n\r")) && !bytes.Contains(withSKUs, []byte("  PLU 100002\n\r")) {
		t.Fatal("no PLU line printed with SKUs")
	}
	var stripped []string
	for _, l := range strings.Split(string(withSKUs), "\n\r") {
		if !strings.HasPrefix(l, "  PLU 10000") {
			stripped = append(stripped, l)
		}
	}
	if strings.Join(stripped, "\n\r") != string(plain) {
		t.Fatal("SKUs changed the day beyond the PLU lines")
	}

	for _, c := range []struct {
		profile string
		skus    []string
		want    string
	}{
		{"casio-journal", []string{"100001"}, "prints no article numbers"},
		{"epson-tm-escpos", []string{"10A"}, "not a numeric SKU"},
		{"epson-tm-escpos", []string{""}, "not a numeric SKU"},
	} {
		g, err := New(c.profile, "X1", "2026-11-26", 1, 0)
		if err != nil {
			t.Fatal(err)
		}
		if err := g.SetSKUs(c.skus); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s %q: error %v, want %q", c.profile, c.skus, err, c.want)
		}
	}
}
