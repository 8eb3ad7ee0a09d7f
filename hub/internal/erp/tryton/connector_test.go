package tryton

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/erp"
	"github.com/lanebridge/lanebridge/protocol"
)

func TestClassify(t *testing.T) {
	for _, tc := range []struct {
		err  error
		perm bool
	}{
		{fmt.Errorf("x: %w", ErrUnknownSKU), true},
		{fmt.Errorf("x: %w", ErrTotalMismatch), true},
		{&Error{Kind: "UserError", Message: "no"}, true},
		{&Error{Kind: "ServerError", Message: "boom"}, false},
		{&Error{Kind: "ConcurrencyException"}, false},
		{context.DeadlineExceeded, false},
	} {
		if got := erp.Permanent(classify(tc.err)); got != tc.perm {
			t.Errorf("Permanent(classify(%v)) = %v, want %v", tc.err, got, tc.perm)
		}
	}
}

func TestToPostingDiscountAndVoided(t *testing.T) {
	r := protocol.Record{Kind: protocol.KindSale, Store: "S001", Terminal: "T1", Receipt: "7", BusinessDate: "2026-11-26",
		Lines: []protocol.Line{
			{SKU: "100001", Quantity: "2", UnitPrice: 129, Amount: 258},
			{SKU: "100002", Quantity: "1", UnitPrice: 249, Amount: 249, Voided: true},
			{SKU: "100004", Quantity: "1", UnitPrice: 899, Amount: 899},
		},
		Discounts: []protocol.Discount{{Description: "10% off", Amount: 115}},
	}
	p, err := ToPosting(erp.Posting{Key: "k", Record: r})
	if err != nil {
		t.Fatal(err)
	}
	if p.Total != 258+899-115 || len(p.Lines) != 3 || p.Lines[2].SKU != "" || p.Lines[2].Quantity != "-1" || p.Lines[2].UnitPrice != 115 {
		t.Fatalf("ToPosting = %+v", p)
	}
}

// TestConnectorIntegration posts a discounted sale and a return through the erp.Connector
// adapter to a real Tryton.
func TestConnectorIntegration(t *testing.T) {
	c := Connector{C: dialTryton(t)}
	ctx := context.Background()
	store := envOr("LANEBRIDGE_TRYTON_STORE", "S001")
	prices, err := c.C.Prices(ctx)
	if err != nil {
		t.Fatal(err)
	}
	p1, ok := prices["100001"]
	if !ok {
		t.Skip("database not seeded with the simulator catalog (100001..); rerun tryton-seed")
	}
	suffix := fmt.Sprint(time.Now().UnixNano())
	sale := protocol.Record{Kind: protocol.KindSale, Store: store, Terminal: "TC", Receipt: "s" + suffix, BusinessDate: time.Now().Format("2006-01-02"),
		Lines:     []protocol.Line{{SKU: "100001", Quantity: "3", UnitPrice: p1, Amount: 3 * p1}},
		Discounts: []protocol.Discount{{Description: "promo", Amount: 10}},
	}
	key := store + "|TC|" + sale.BusinessDate + "|" + sale.Receipt + "|sale"
	if _, found, err := c.Find(ctx, key); err != nil || found {
		t.Fatalf("Find before Post = %v, %v", found, err)
	}
	before := onHand(t, c.C, store, "100001")
	ref, err := c.Post(ctx, erp.Posting{Key: key, Record: sale})
	if err != nil {
		t.Fatalf("Post: %v", err)
	}
	got, found, err := c.Find(ctx, key)
	if err != nil || !found || got != ref {
		t.Fatalf("Find after Post = %q, %v, %v; want %q", got, found, err, ref)
	}
	again, err := c.Post(ctx, erp.Posting{Key: key, Record: sale})
	if err != nil || again != ref {
		t.Fatalf("Post again = %q, %v; want the same %q", again, err, ref)
	}
	if after := onHand(t, c.C, store, "100001"); after != before-3 {
		t.Fatalf("on hand of 100001 went %v → %v, want −3", before, after)
	}
	ret := sale
	ret.Kind, ret.Receipt, ret.OriginalReceipt, ret.Discounts = protocol.KindReturn, "r"+suffix, sale.Receipt, nil
	ret.Lines = []protocol.Line{{SKU: "100001", Quantity: "-1", UnitPrice: p1, Amount: -p1}}
	rkey := store + "|TC|" + ret.BusinessDate + "|" + ret.Receipt + "|return"
	if _, err := c.Post(ctx, erp.Posting{Key: rkey, Record: ret}); err != nil {
		t.Fatalf("Post return: %v", err)
	}
	if after := onHand(t, c.C, store, "100001"); after != before-2 {
		t.Fatalf("on hand of 100001 after return = %v, want %v", after, before-2)
	}
	bad := sale
	bad.Receipt = "x" + suffix
	bad.Lines = []protocol.Line{{SKU: "NO-SUCH", Quantity: "1", UnitPrice: 1, Amount: 1}}
	bad.Discounts = nil
	if _, err := c.Post(ctx, erp.Posting{Key: "bad" + suffix, Record: bad}); !erp.Permanent(err) {
		t.Fatalf("Post(unknown SKU) = %v, want a permanent rejection", err)
	}
	items, err := c.C.Items(ctx)
	if err != nil || len(items) < 10 {
		t.Fatalf("Items = %d, %v", len(items), err)
	}
}

// TestToPostingRefusesOtherMinorUnits: a yen or won record (no minor units) would reach a
// two-decimal company at a hundredth of its value; it is refused as permanent instead.
func TestToPostingRefusesOtherMinorUnits(t *testing.T) {
	base := protocol.Record{Kind: protocol.KindSale, Store: "S001", Terminal: "T1", Receipt: "7", BusinessDate: "2026-11-26",
		Lines: []protocol.Line{{SKU: "100001", Quantity: "1", UnitPrice: 1200, Amount: 1200}}}
	for _, tc := range []struct {
		currency string
		ok       bool
	}{{"", true}, {"USD", true}, {"EUR", true}, {"JPY", false}, {"KRW", false}, {"BHD", false}, {"yen!", false}} {
		r := base
		r.Currency = tc.currency
		_, err := ToPosting(erp.Posting{Key: "k", Record: r})
		if (err == nil) != tc.ok {
			t.Errorf("%q: err = %v, want ok %v", tc.currency, err, tc.ok)
		}
		if err != nil && (!erp.Permanent(err) || !errors.Is(err, ErrCurrency)) {
			t.Errorf("%q: %v is not a permanent currency rejection", tc.currency, err)
		}
	}
}
