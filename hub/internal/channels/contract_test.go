package channels

import (
	"context"
	"errors"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/channelsim"
)

// backend is one channel under the connector contract: the connector, two SKUs the channel
// lists, how to read what it shows, and the faults it can be put in.
type backend struct {
	conn  Connector
	skus  [2]string
	shown func(t *testing.T, sku string) (int64, bool)
	down  func(bool) // nil: the backend cannot be taken down
	// limited: the backend enforces a rate limit the contract provokes without the Pusher.
	limited bool
}

// runConnectorContract is the one suite every connector passes.
func runConnectorContract(t *testing.T, b backend) {
	ctx := context.Background()
	c := b.conn
	a, bb := b.skus[0], b.skus[1]
	if c.Name() == "" {
		t.Fatal("Name is empty")
	}
	if l := c.Limits(); l.MaxBatch < 1 || l.Burst < 1 || l.Rate <= 0 || l.CallsPerLevel < 0 {
		t.Fatalf("Limits %+v: want MaxBatch, Burst >= 1 and Rate > 0", l)
	}
	want := func(sku string, n int64) {
		t.Helper()
		if got, ok := b.shown(t, sku); !ok || got != n {
			t.Fatalf("channel shows %d (listed %v) for %s, want %d", got, ok, sku, n)
		}
	}
	set := func(levels ...Level) []Result {
		t.Helper()
		res, err := c.SetStock(ctx, levels)
		if err != nil {
			t.Fatalf("SetStock(%v): %v", levels, err)
		}
		if len(res) != len(levels) {
			t.Fatalf("SetStock(%d levels) returned %d results", len(levels), len(res))
		}
		for i := range res {
			if res[i].SKU != levels[i].SKU {
				t.Fatalf("result %d is for %q, want %q (results in the order of the levels)", i, res[i].SKU, levels[i].SKU)
			}
		}
		return res
	}
	cases := []struct {
		name   string
		levels []Level
		shown  []string // per level; "" wants ErrRejected
		after  map[string]int64
	}{
		{"whole units", []Level{{a, "7", 1}, {bb, "3", 1}}, []string{"7", "3"}, map[string]int64{a: 7, bb: 3}},
		{"decimals round down", []Level{{a, "2.9", 2}}, []string{"2"}, map[string]int64{a: 2}},
		{"never below zero", []Level{{bb, "-4.5", 3}}, []string{"0"}, map[string]int64{bb: 0}},
		{"unknown SKU rejected, the rest set", []Level{{"NO-SUCH-SKU-42", "5", 4}, {a, "11", 4}}, []string{"", "11"}, map[string]int64{a: 11}},
		{"not a number rejected", []Level{{bb, "lots", 5}, {a, "12", 5}}, []string{"", "12"}, map[string]int64{a: 12, bb: 0}},
		{"repeat changes nothing", []Level{{a, "12", 6}}, []string{"12"}, map[string]int64{a: 12}},
	}
	for _, tc := range cases {
		res := set(tc.levels...)
		for i, r := range res {
			if tc.shown[i] == "" {
				if !errors.Is(r.Err, ErrRejected) {
					t.Fatalf("%s: level %v: err %v, want ErrRejected", tc.name, tc.levels[i], r.Err)
				}
				continue
			}
			if r.Err != nil || r.Shown != tc.shown[i] {
				t.Fatalf("%s: level %v: shown %q err %v, want %q", tc.name, tc.levels[i], r.Shown, r.Err, tc.shown[i])
			}
		}
		for sku, n := range tc.after {
			want(sku, n)
		}
	}
	// A cancelled context returns at once and sets nothing.
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	done := make(chan struct{})
	go func() {
		defer close(done)
		if res, err := c.SetStock(cctx, []Level{{a, "99", 7}}); err == nil && res[0].Err == nil {
			t.Error("SetStock with a cancelled context succeeded")
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("SetStock with a cancelled context did not return")
	}
	want(a, 12)
	if b.down != nil {
		b.down(true)
		res, err := c.SetStock(ctx, []Level{{a, "1", 8}})
		if err == nil && (res[0].Err == nil || errors.Is(res[0].Err, ErrRejected)) {
			t.Fatalf("SetStock on a channel that is down: %+v, %v; want a transient failure", res, err)
		}
		b.down(false)
		set(Level{a, "1", 9})
		want(a, 1)
	}
	if b.limited {
		var rl *RateLimitError
		for i := 0; i < 100 && rl == nil; i++ {
			res, err := c.SetStock(ctx, []Level{{a, "5", 10}, {bb, "5", 10}})
			if !errors.As(err, &rl) {
				for _, r := range res {
					if errors.As(r.Err, &rl) {
						break
					}
				}
			}
		}
		if rl == nil || rl.RetryAfter <= 0 {
			t.Fatalf("100 calls without pause: rate limit error %v; want a *RateLimitError with a retry hint", rl)
		}
	}
}

func TestConnectorContractShopifySimulator(t *testing.T) {
	for _, api := range []string{"graphql", "rest"} {
		t.Run(api, func(t *testing.T) {
			sim := channelsim.NewShopify("shpat_test", "SKU-A", "SKU-B")
			sim.Capacity, sim.Leak = 10, 5
			sim.SetGraphQLLimit(100, 50, 10) // ten mutations at once: the contract's burst reaches THROTTLED
			srv := httptest.NewServer(sim)
			defer srv.Close()
			c, err := NewShopify(ShopifyOptions{Channel: "web", URL: srv.URL, Token: "shpat_test", LocationID: 7001, API: api})
			if err != nil {
				t.Fatal(err)
			}
			runConnectorContract(t, backend{conn: c, skus: [2]string{"SKU-A", "SKU-B"}, down: sim.SetDown, limited: true,
				shown: func(t *testing.T, sku string) (int64, bool) { return sim.Shown(sku) }})
			// A wrong token is the whole call's failure, named.
			bad, _ := NewShopify(ShopifyOptions{Channel: "web", URL: srv.URL, Token: "wrong", LocationID: 7001, API: api})
			if _, err := bad.SetStock(context.Background(), []Level{{"SKU-A", "1", 1}}); err == nil || !strings.Contains(err.Error(), "token") {
				t.Fatalf("wrong token: %v, want an error naming the token", err)
			}
		})
	}
}

func TestConnectorContractAmazonSimulator(t *testing.T) {
	for _, api := range []string{"listings", "feed"} {
		t.Run(api, func(t *testing.T) {
			sim := channelsim.NewAmazon("Atza|test", "A1SELLER", "A1PHAD5NF", "SKU-A", "SKU-B")
			sim.SetFeedDelay(20 * time.Millisecond)
			sim.SetFeedLimit("getFeedDocument", 100, 100) // the contract provokes createFeed's limit, not this one
			srv := httptest.NewServer(sim)
			defer srv.Close()
			o := AmazonOptions{Channel: "amazon", URL: srv.URL, Token: "Atza|test", SellerID: "A1SELLER", MarketplaceID: "A1PHAD5NF", API: api, FeedPoll: 10 * time.Millisecond}
			c, err := NewAmazon(o)
			if err != nil {
				t.Fatal(err)
			}
			runConnectorContract(t, backend{conn: c, skus: [2]string{"SKU-A", "SKU-B"}, down: sim.SetDown, limited: true,
				shown: func(t *testing.T, sku string) (int64, bool) { return sim.Shown(sku) }})
			o.Token = "wrong"
			bad, _ := NewAmazon(o)
			if _, err := bad.SetStock(context.Background(), []Level{{"SKU-A", "1", 1}}); err == nil || !strings.Contains(err.Error(), "token") {
				t.Fatalf("wrong token: %v, want an error naming the token", err)
			}
		})
	}
}

// vendureEnv returns the seeded Vendure's settings (testharness/vendure/setup.sh, started by
// testharness/services.sh); without one the test skips, or fails under CI or when required.
func vendureEnv(t *testing.T) (url, user, password string, skus []string, webLocation string) {
	url = os.Getenv("LANEBRIDGE_VENDURE_URL")
	if url == "" {
		if os.Getenv("CI") != "" || os.Getenv("LANEBRIDGE_VENDURE_REQUIRED") == "1" {
			t.Fatal("LANEBRIDGE_VENDURE_URL is not set: start Vendure with testharness/vendure/setup.sh (services.sh does) and source its env")
		}
		t.Skip("no Vendure: run eval \"$(testharness/services.sh)\" or testharness/vendure/setup.sh and source DIR/env")
	}
	b, err := os.ReadFile(os.Getenv("LANEBRIDGE_VENDURE_PASSWORD_FILE"))
	if err != nil {
		t.Fatalf("read LANEBRIDGE_VENDURE_PASSWORD_FILE: %v", err)
	}
	skus = strings.Split(os.Getenv("LANEBRIDGE_VENDURE_SKUS"), ",")
	if len(skus) < 2 {
		t.Fatalf("LANEBRIDGE_VENDURE_SKUS=%q: want at least two seeded SKUs", os.Getenv("LANEBRIDGE_VENDURE_SKUS"))
	}
	return url, os.Getenv("LANEBRIDGE_VENDURE_USER"), strings.TrimSpace(string(b)), skus, os.Getenv("LANEBRIDGE_VENDURE_WEB_LOCATION")
}

func TestConnectorContractVendure(t *testing.T) {
	url, user, password, skus, web := vendureEnv(t)
	for _, loc := range []string{"", web} {
		name := "variant stockOnHand"
		if loc != "" {
			name = "stock location " + loc
		}
		t.Run(name, func(t *testing.T) {
			c, err := NewVendure(VendureOptions{Channel: "webshop", URL: url, Username: user, Password: password, Location: loc})
			if err != nil {
				t.Fatal(err)
			}
			runConnectorContract(t, backend{conn: c, skus: [2]string{skus[0], skus[1]},
				shown: func(t *testing.T, sku string) (int64, bool) {
					n, ok, err := c.Shown(context.Background(), sku)
					if err != nil {
						t.Fatalf("read Vendure stock of %s: %v", sku, err)
					}
					return n, ok
				}})
		})
	}
	bad, _ := NewVendure(VendureOptions{Channel: "webshop", URL: url, Username: user, Password: "wrong-password"})
	if _, err := bad.SetStock(context.Background(), []Level{{skus[0], "1", 1}}); err == nil || !strings.Contains(err.Error(), "password") {
		t.Fatalf("wrong password: %v, want an error naming the password", err)
	}
}
