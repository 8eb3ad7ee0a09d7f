package tryton

import (
	"context"
	"errors"
	"fmt"
	"os"
	"slices"
	"strconv"
	"testing"
	"time"
)

// dialTryton returns a client for the server named by LANEBRIDGE_TRYTON_*.
// Without LANEBRIDGE_TRYTON_URL the test is skipped, or fails when
// LANEBRIDGE_TRYTON_REQUIRED=1 (CI sets it, so a missing server never passes
// silently). testharness/tryton/ci.sh starts, seeds and tests in one go.
func dialTryton(t *testing.T) *Client {
	t.Helper()
	if testing.Short() {
		t.Skip("integration test against Tryton skipped in -short mode")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c, ok, err := DialEnv(ctx)
	if !ok {
		if os.Getenv("LANEBRIDGE_TRYTON_REQUIRED") == "1" {
			t.Fatalf("LANEBRIDGE_TRYTON_REQUIRED=1 but %s is unset", EnvURL)
		}
		t.Skipf("%s unset; run testharness/tryton/setup.sh and source its env file", EnvURL)
	}
	if err != nil {
		t.Fatalf("DialEnv: %v", err)
	}
	return c
}

func onHand(t *testing.T, c *Client, store, sku string) float64 {
	t.Helper()
	m, err := c.OnHand(context.Background(), store)
	if err != nil {
		t.Fatalf("OnHand(%s): %v", store, err)
	}
	s, ok := m[sku]
	if !ok {
		t.Fatalf("OnHand(%s) has no %s: %v", store, sku, m)
	}
	q, err := strconv.ParseFloat(s, 64)
	if err != nil {
		t.Fatalf("OnHand(%s)[%s] = %q: %v", store, sku, s, err)
	}
	return q
}

func TestTrytonIntegration(t *testing.T) {
	c := dialTryton(t)
	ctx := context.Background()
	store := envOr("LANEBRIDGE_TRYTON_STORE", "S001")

	prices, err := c.Prices(ctx)
	if err != nil {
		t.Fatalf("Prices: %v", err)
	}
	if len(prices) == 0 {
		t.Fatal("Prices: no priced SKU; was the database seeded (tryton-seed)?")
	}
	skus := make([]string, 0, len(prices))
	for sku := range prices {
		skus = append(skus, sku)
	}
	slices.Sort(skus)
	sku, price := skus[0], prices[skus[0]]
	if price <= 0 {
		t.Fatalf("Prices[%s] = %d, want > 0", sku, price)
	}

	// Keys are unique per run so the test can run again on the same database.
	run := time.Now().UTC().Format("150405.000000000")
	day := time.Now().UTC().Truncate(24 * time.Hour)
	key := func(receipt int, kind string) string {
		return fmt.Sprintf("%s|T9|%s|%s-%d|%s", store, day.Format("2006-01-02"), run, receipt, kind)
	}
	posting := func(receipt int, kind string, qty int64) Posting {
		return Posting{
			Key: key(receipt, kind), Warehouse: store, Date: day,
			Lines: []Line{{SKU: sku, Quantity: strconv.FormatInt(qty, 10), UnitPrice: price}},
			Total: qty * price,
		}
	}

	t.Run("sale moves stock and is found by key", func(t *testing.T) {
		before := onHand(t, c, store, sku)
		p := posting(1, "sale", 3)
		if _, found, err := c.FindPosting(ctx, p.Key); err != nil || found {
			t.Fatalf("FindPosting before posting = found %v, %v; want not found", found, err)
		}
		id, err := c.PostSale(ctx, p)
		if err != nil {
			t.Fatalf("PostSale: %v", err)
		}
		got, found, err := c.FindPosting(ctx, p.Key)
		if err != nil || !found || got != id {
			t.Fatalf("FindPosting = %d, %v, %v; want %d, true, nil", got, found, err, id)
		}
		again, err := c.PostSale(ctx, p)
		if err != nil || again != id {
			t.Fatalf("PostSale retry = %d, %v; want %d, nil (the earlier posting)", again, err, id)
		}
		if after := onHand(t, c, store, sku); after != before-3 {
			t.Fatalf("on hand %s after selling 3 = %v, want %v", sku, after, before-3)
		}
		s, err := c.readSale(ctx, id)
		if err != nil || s.State != "done" || len(s.Shipments) != 1 {
			t.Fatalf("sale %d = %+v, %v; want done with one shipment", id, s, err)
		}
	})

	t.Run("return brings stock back", func(t *testing.T) {
		before := onHand(t, c, store, sku)
		p := posting(2, "return", -1)
		id, err := c.PostSale(ctx, p)
		if err != nil {
			t.Fatalf("PostSale(return): %v", err)
		}
		if got, found, err := c.FindPosting(ctx, p.Key); err != nil || !found || got != id {
			t.Fatalf("FindPosting(return) = %d, %v, %v; want %d", got, found, err, id)
		}
		if after := onHand(t, c, store, sku); after != before+1 {
			t.Fatalf("on hand %s after return of 1 = %v, want %v", sku, after, before+1)
		}
		s, err := c.readSale(ctx, id)
		if err != nil || s.State != "done" || len(s.ShipmentReturns) != 1 {
			t.Fatalf("return sale %d = %+v, %v; want done with one return shipment", id, s, err)
		}
	})

	t.Run("interrupted posting is resumed, not duplicated", func(t *testing.T) {
		before := onHand(t, c, store, sku)
		p := posting(3, "sale", 2)
		// A crash right after the create: the draft exists, nothing moved.
		draft, err := c.createSale(ctx, p)
		if err != nil {
			t.Fatalf("createSale: %v", err)
		}
		if mid := onHand(t, c, store, sku); mid != before {
			t.Fatalf("on hand after draft only = %v, want %v", mid, before)
		}
		id, err := c.PostSale(ctx, p)
		if err != nil || id != draft {
			t.Fatalf("PostSale after crash = %d, %v; want the draft %d", id, err, draft)
		}
		if after := onHand(t, c, store, sku); after != before-2 {
			t.Fatalf("on hand after resumed sale of 2 = %v, want %v", after, before-2)
		}
	})

	rejections := []struct {
		name string
		edit func(*Posting)
		want error
	}{
		{"unknown sku", func(p *Posting) { p.Lines[0].SKU = "NO-SUCH-SKU" }, ErrUnknownSKU},
		{"unknown store", func(p *Posting) { p.Warehouse = "S999" }, ErrUnknownWarehouse},
		{"total mismatch", func(p *Posting) { p.Total++ }, ErrTotalMismatch},
		{"no lines", func(p *Posting) { p.Lines = nil }, ErrEmptyPosting},
	}
	for i, tc := range rejections {
		t.Run("rejects "+tc.name, func(t *testing.T) {
			p := posting(100+i, "sale", 1)
			tc.edit(&p)
			before := onHand(t, c, store, sku)
			if _, err := c.PostSale(ctx, p); !errors.Is(err, tc.want) {
				t.Fatalf("PostSale = %v, want %v", err, tc.want)
			}
			if _, found, err := c.FindPosting(ctx, p.Key); err != nil || found {
				t.Fatalf("FindPosting after rejection = found %v, %v; want nothing left", found, err)
			}
			if after := onHand(t, c, store, sku); after != before {
				t.Fatalf("on hand changed by a rejected posting: %v → %v", before, after)
			}
		})
	}
}

// BenchmarkPostSale measures one posting end to end (create, quote, confirm,
// process, shipment done, process): about what the hub's outbox can drain.
func BenchmarkPostSale(b *testing.B) {
	ctx := context.Background()
	c, ok, err := DialEnv(ctx)
	if !ok {
		b.Skipf("%s unset", EnvURL)
	}
	if err != nil {
		b.Fatal(err)
	}
	prices, err := c.Prices(ctx)
	if err != nil || len(prices) == 0 {
		b.Fatalf("Prices = %v, %v", prices, err)
	}
	var sku string
	for s := range prices {
		sku = s
		break
	}
	run := time.Now().UTC().Format("150405.000000000")
	day := time.Now().UTC().Truncate(24 * time.Hour)
	b.ResetTimer()
	for i := range b.N {
		p := Posting{
			Key:       fmt.Sprintf("S001|B1|%s|%s-%d|sale", day.Format("2006-01-02"), run, i),
			Warehouse: "S001", Date: day,
			Lines: []Line{{SKU: sku, Quantity: "1", UnitPrice: prices[sku]}},
			Total: prices[sku],
		}
		if _, err := c.PostSale(ctx, p); err != nil {
			b.Fatal(err)
		}
	}
}
