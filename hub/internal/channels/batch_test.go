package channels

import (
	"context"
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/channelsim"
)

func skuList(n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("SKU-%04d", i)
	}
	return out
}

// Shopify GraphQL: 300 SKUs go in 3 inventorySetQuantities calls of 100; one SKU the shop
// cannot stock (a userError naming its index) is rejected alone and the rest are set.
func TestShopifyGraphQLBatch(t *testing.T) {
	skus := skuList(300)
	sim := channelsim.NewShopify("tok", skus...)
	sim.Unstock("SKU-0042")
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, err := NewShopify(ShopifyOptions{Channel: "web", URL: srv.URL, Token: "tok", LocationID: 7001})
	if err != nil {
		t.Fatal(err)
	}
	if l := c.Limits(); l.MaxBatch != 100 || l.CallsPerLevel != 0 {
		t.Fatalf("Limits %+v: want batches of 100 costing one call", l)
	}
	ctx := context.Background()
	for start := 0; start < len(skus); start += 100 {
		var levels []Level
		for _, sku := range skus[start : start+100] {
			levels = append(levels, Level{sku, "5", 1})
		}
		res, err := c.SetStock(ctx, levels)
		if err != nil {
			t.Fatal(err)
		}
		for i, r := range res {
			if levels[i].SKU == "SKU-0042" {
				if !errors.Is(r.Err, ErrRejected) {
					t.Fatalf("unstocked SKU: %v, want ErrRejected", r.Err)
				}
			} else if r.Err != nil || r.Shown != "5" {
				t.Fatalf("%s: shown %q err %v", levels[i].SKU, r.Shown, r.Err)
			}
		}
	}
	for _, sku := range skus {
		n, ok := sim.Shown(sku)
		if sku == "SKU-0042" && ok || sku != "SKU-0042" && (!ok || n != 5) {
			t.Fatalf("%s shows %d (set %v)", sku, n, ok)
		}
	}
	// 3 batches + 1 resend of the batch with the bad SKU (the mutation is all or nothing).
	if calls, throttled := sim.GraphQLCalls(); calls != 4 || throttled != 0 {
		t.Fatalf("GraphQL calls %d (throttled %d), want 4 for 300 SKUs", calls, throttled)
	}
}

// THROTTLED: the answer becomes a *RateLimitError whose hint is the restore time of the
// missing points, and a Pusher honours it (no request before the hint runs out).
func TestShopifyGraphQLThrottled(t *testing.T) {
	sim := channelsim.NewShopify("tok", "A", "B")
	sim.SetGraphQLLimit(20, 10, 10) // two mutations, then one a second
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, _ := NewShopify(ShopifyOptions{Channel: "web", URL: srv.URL, Token: "tok", LocationID: 7001})
	ctx := context.Background()
	var rl *RateLimitError
	for i := 0; i < 3; i++ {
		_, err := c.SetStock(ctx, []Level{{"A", "1", 1}, {"B", "2", 1}})
		if i < 2 && err != nil {
			t.Fatalf("call %d: %v", i, err)
		}
		if i == 2 && !errors.As(err, &rl) {
			t.Fatalf("third call: %v, want a *RateLimitError", err)
		}
	}
	if rl.RetryAfter < 500*time.Millisecond || rl.RetryAfter > 1500*time.Millisecond {
		t.Fatalf("retry hint %s, want about 1s (10 points at 10/s)", rl.RetryAfter)
	}
	time.Sleep(rl.RetryAfter) // the direct calls' own hint
	_, before := sim.GraphQLCalls()
	// Through the Pusher with its own bucket lifted: THROTTLED answers are waited out.
	src := newFakeSource()
	startPusher(t, src, newMemState(), nil, ch(c, ChannelOptions{Coalesce: 10 * time.Millisecond, Rate: 1000, Burst: 1000}))
	for v := 1; v <= 20; v++ {
		src.Set("web", "A", fmt.Sprint(v))
		src.Set("web", "B", fmt.Sprint(v))
		if v%5 == 0 {
			checkFor(t, 20*time.Second, "latest figure shown", func() bool { n, _ := sim.Shown("A"); m, _ := sim.Shown("B"); return n == int64(v) && m == int64(v) })
		}
	}
	if _, after := sim.GraphQLCalls(); after == before {
		t.Fatal("the Pusher was never THROTTLED: the test proves nothing")
	}
	if early := sim.Early(); early != 0 {
		t.Fatalf("%d requests came before the THROTTLED hint ran out", early)
	}
}
