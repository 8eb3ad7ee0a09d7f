package profile

import (
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/pan"
	"github.com/lanebridge/lanebridge/protocol"
)

// TestGuardRecord: the second guard never keeps an unmasked record. A record whose masked
// encoding no longer decodes (a card number in a number field) is quarantined with the masked
// text, not kept as it was.
func TestGuardRecord(t *testing.T) {
	rec := func(desc string, total int64) protocol.Record {
		return protocol.Record{Kind: protocol.KindSale, Terminal: "T1", BusinessDate: "2026-11-26", Total: total,
			Lines: []protocol.Line{{Description: desc}}}
	}
	tests := []struct {
		name     string
		r        protocol.Record
		err      string // quarantined with a reason containing this
		raw      string // the raw text returned contains this
		wantDesc string
	}{
		{name: "clean", r: rec("MILK", 100), raw: "the line", wantDesc: "MILK"},
		{name: "pan in a string", r: rec("CARD 4111111111111111", 100), raw: "411111******1111", wantDesc: "CARD 411111******1111"},
		{name: "pan in a number field", r: rec("MILK", 4111111111111111), err: "card number", raw: `"total":411111******1111`},
		{name: "cvv", r: rec("CVV 123", 100), err: "card security code", raw: cardDataRemoved},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, raw, err := guardRecord(pan.New(pan.Options{}), tt.r, "the line")
			if strings.Contains(raw, "4111111111111111") || strings.Contains(raw, "CVV 123") {
				t.Fatalf("raw holds card data: %s", raw)
			}
			if !strings.Contains(raw, tt.raw) {
				t.Errorf("raw %q lacks %q", raw, tt.raw)
			}
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) {
					t.Fatalf("err %v, want one containing %q", err, tt.err)
				}
				return
			}
			if err != nil {
				t.Fatalf("err %v", err)
			}
			if got.Lines[0].Description != tt.wantDesc {
				t.Errorf("description %q, want %q", got.Lines[0].Description, tt.wantDesc)
			}
		})
	}
}
