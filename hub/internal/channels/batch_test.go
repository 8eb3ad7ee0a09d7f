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

// feedChannel is an Amazon simulator with fast feed processing and a feed connector for it.
func feedChannel(t *testing.T, skus ...string) (*channelsim.Amazon, *Amazon) {
	t.Helper()
	sim := channelsim.NewAmazon("tok", "S1", "M1", skus...)
	sim.SetFeedDelay(20 * time.Millisecond)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := NewAmazon(AmazonOptions{Channel: "amazon", URL: srv.URL, Token: "tok", SellerID: "S1", MarketplaceID: "M1", API: "feed", FeedPoll: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

// Amazon feed: 1,000 SKUs (one of them unknown to the marketplace) go in one feed of a handful
// of requests; the processing report's ERROR issue rejects only that SKU.
func TestAmazonFeedBatch(t *testing.T) {
	skus := skuList(1000)
	sim, c := feedChannel(t, skus[1:]...) // SKU-0000 has no listing
	if l := c.Limits(); l.MaxBatch != 1000 || l.CallsPerLevel != 0 || l.Rate > 0.0083 {
		t.Fatalf("Limits %+v: want feeds of 1000 at under createFeed's 0.0083/s", l)
	}
	levels := make([]Level, len(skus))
	for i, sku := range skus {
		levels[i] = Level{sku, fmt.Sprint(i), 1}
	}
	res, err := c.SetStock(context.Background(), levels)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if i == 0 {
			if !errors.Is(r.Err, ErrRejected) {
				t.Fatalf("unlisted SKU: %v, want ErrRejected", r.Err)
			}
			continue
		}
		if n, _ := sim.Shown(skus[i]); r.Err != nil || r.Shown != fmt.Sprint(i) || n != int64(i) {
			t.Fatalf("%s: shown %q (channel %d) err %v", skus[i], r.Shown, n, r.Err)
		}
	}
	// createFeedDocument, upload, createFeed, a few getFeed, getFeedDocument, download.
	if calls, _ := sim.Calls(); sim.Feeds() != 1 || calls > 10 {
		t.Fatalf("%d feeds, %d requests for 1,000 SKUs; want 1 feed and at most 10 requests", sim.Feeds(), calls)
	}
}

// createFeed's 429 (burst spent) is the call's *RateLimitError with the x-amzn-RateLimit-Limit
// hint, and the Pusher waits it out: no request comes early, and the latest figure arrives.
func TestAmazonFeedRateLimited(t *testing.T) {
	sim, c := feedChannel(t, "A", "B")
	sim.SetFeedLimit("createFeed", 2, 1) // one feed, then one each 500 ms
	ctx := context.Background()
	if _, err := c.SetStock(ctx, []Level{{"A", "1", 1}}); err != nil {
		t.Fatal(err)
	}
	var rl *RateLimitError
	if _, err := c.SetStock(ctx, []Level{{"A", "2", 2}}); !errors.As(err, &rl) || rl.RetryAfter != 500*time.Millisecond {
		t.Fatalf("second feed at once: %v, want a *RateLimitError of 500ms", err)
	}
	time.Sleep(rl.RetryAfter)
	src := newFakeSource()
	startPusher(t, src, newMemState(), nil, ch(c, ChannelOptions{Coalesce: 10 * time.Millisecond, Rate: 1000, Burst: 1000}))
	_, before := sim.Calls()
	for v := 1; v <= 30; v++ {
		src.Set("amazon", "A", fmt.Sprint(v))
		src.Set("amazon", "B", fmt.Sprint(v))
		time.Sleep(20 * time.Millisecond)
	}
	checkFor(t, 20*time.Second, "latest figure shown", func() bool { n, _ := sim.Shown("A"); m, _ := sim.Shown("B"); return n == 30 && m == 30 })
	if _, after := sim.Calls(); after == before {
		t.Fatal("the Pusher was never rate limited: the test proves nothing")
	}
	if early := sim.Early(); early != 0 {
		t.Fatalf("%d requests came before the 429's hint ran out", early)
	}
}
