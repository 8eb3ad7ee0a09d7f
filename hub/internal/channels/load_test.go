package channels

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/channelsim"
)

// latencies tracks, per channel and SKU, when each figure changed and resolves every change
// once the channel confirms a figure at least as new (figures are a per-SKU counter, so newer
// is larger): change → channel updated, coalesced changes included.
type latencies struct {
	mu      sync.Mutex
	pending map[string][]struct {
		v  int64
		at time.Time
	}
	got map[string][]time.Duration // per channel
}

func (l *latencies) changed(channel, sku string, v int64) {
	l.mu.Lock()
	k := channel + "/" + sku
	l.pending[k] = append(l.pending[k], struct {
		v  int64
		at time.Time
	}{v, time.Now()})
	l.mu.Unlock()
}

func (l *latencies) shown(channel, sku, shown string) {
	v, _ := strconv.ParseInt(shown, 10, 64)
	now := time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	k := channel + "/" + sku
	p := l.pending[k]
	i := 0
	for ; i < len(p) && p[i].v <= v; i++ {
		l.got[channel] = append(l.got[channel], now.Sub(p[i].at))
	}
	l.pending[k] = p[i:]
}

func (l *latencies) unresolved(channel string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for k, p := range l.pending {
		if strings.HasPrefix(k, channel+"/") {
			n += len(p)
		}
	}
	return n
}

func pct(d []time.Duration, q float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	return d[min(len(d)-1, int(float64(len(d))*q))]
}

func envInt(name string, def int) int {
	if v, err := strconv.Atoi(os.Getenv(name)); err == nil && v > 0 {
		return v
	}
	return def
}

// TestChannelPushLoad feeds the pusher the figure changes of STORES stores × RATE records a
// second (each record changes one SKU's figure on every channel) and reports, per channel,
// change → channel confirmed p50/p99/max against the channel's own one-call round trip measured
// first in the same process. The short version (50 stores × 10/s for 2 s) checks only that
// every channel ends at every SKU's latest figure; LANEBRIDGE_BENCH_CHANNELS=1 runs 1,000 × 10/s
// for 30 s (LANEBRIDGE_BENCH_CHANNELS_STORES, _RATE, _SECONDS, _SKUS override;
// LANEBRIDGE_BENCH_CHANNELS_ONLY=name,… keeps only those channels besides shopify-unlimited)
// and, with a Vendure in the environment, includes it.
func TestChannelPushLoad(t *testing.T) {
	full := os.Getenv("LANEBRIDGE_BENCH_CHANNELS") == "1"
	stores, rate, secs, nskus := 50, 10, 2, 200
	if full {
		stores, rate, secs, nskus = 1000, 10, 30, 1000
	}
	stores = envInt("LANEBRIDGE_BENCH_CHANNELS_STORES", stores)
	rate = envInt("LANEBRIDGE_BENCH_CHANNELS_RATE", rate)
	secs = envInt("LANEBRIDGE_BENCH_CHANNELS_SECONDS", secs)
	nskus = envInt("LANEBRIDGE_BENCH_CHANNELS_SKUS", nskus)
	skus := make([]string, nskus)
	for i := range skus {
		skus[i] = fmt.Sprintf("SKU-%05d", i)
	}
	// Channels: a Shopify-shaped simulator with its limit lifted (what the pusher itself costs),
	// and, in the full run, an Amazon-shaped one at the documented 5/s and the real Vendure.
	shop := channelsim.NewShopify("tok", skus...)
	shop.Capacity = 1e9
	srv := httptest.NewServer(shop)
	defer srv.Close()
	sc, _ := NewShopify(ShopifyOptions{Channel: "shopify-unlimited", URL: srv.URL, Token: "tok", LocationID: 7001, API: "rest", Rate: 1e6, Burst: 1000})
	type target struct {
		c    Connector
		skus []string
		base Connector // the baseline's connector when not c: a twin channel, so the baseline spends none of c's burst
	}
	targets := []target{{sc, skus, nil}}
	if full {
		am := channelsim.NewAmazon("tok", "S1", "M1", skus...)
		asrv := httptest.NewServer(am)
		defer asrv.Close()
		ac, _ := NewAmazon(AmazonOptions{Channel: "amazon-5/s", URL: asrv.URL, Token: "tok", SellerID: "S1", MarketplaceID: "M1"})
		targets = append(targets, target{ac, skus, nil})
		// The batch paths at their documented limits: Shopify GraphQL inventorySetQuantities
		// (1,000 points, 50/s; 100 SKUs a call) and Amazon JSON_LISTINGS_FEED (createFeed
		// 0.0083/s burst 15, getFeedDocument burst 10; 1,000 SKUs a feed, simulated processing 1 s).
		twinGQL := func(name string) Connector {
			g := channelsim.NewShopify("tok", skus...)
			gsrv := httptest.NewServer(g)
			t.Cleanup(gsrv.Close)
			c, _ := NewShopify(ShopifyOptions{Channel: name, URL: gsrv.URL, Token: "tok", LocationID: 7001, API: "graphql"})
			return c
		}
		twinFeed := func(name string) Connector {
			f := channelsim.NewAmazon("tok", "S1", "M1", skus...)
			fsrv := httptest.NewServer(f)
			t.Cleanup(fsrv.Close)
			c, _ := NewAmazon(AmazonOptions{Channel: name, URL: fsrv.URL, Token: "tok", SellerID: "S1", MarketplaceID: "M1", API: "feed"})
			return c
		}
		targets = append(targets, target{twinGQL("shopify-graphql"), skus, twinGQL("shopify-graphql")},
			target{twinFeed("amazon-feed"), skus, twinFeed("amazon-feed")})
		if u := os.Getenv("LANEBRIDGE_VENDURE_URL"); u != "" {
			pw, _ := os.ReadFile(os.Getenv("LANEBRIDGE_VENDURE_PASSWORD_FILE"))
			vc, _ := NewVendure(VendureOptions{Channel: "vendure", URL: u, Username: os.Getenv("LANEBRIDGE_VENDURE_USER"),
				Password: strings.TrimSpace(string(pw)), Location: os.Getenv("LANEBRIDGE_VENDURE_WEB_LOCATION")})
			targets = append(targets, target{vc, strings.Split(os.Getenv("LANEBRIDGE_VENDURE_SKUS"), ","), nil})
		}
	}
	if only := os.Getenv("LANEBRIDGE_BENCH_CHANNELS_ONLY"); only != "" { // the unlimited channel always runs
		targets = slices.DeleteFunc(targets, func(tg target) bool {
			return tg.c != Connector(sc) && !slices.Contains(strings.Split(only, ","), tg.c.Name())
		})
	}
	ctx := context.Background()
	baseline := map[string]time.Duration{}
	for _, tg := range targets {
		var d []time.Duration
		bc := tg.c
		if tg.base != nil {
			bc = tg.base
		}
		for i := range 10 {
			start := time.Now()
			if _, err := bc.SetStock(ctx, []Level{{tg.skus[i%len(tg.skus)], "0", 0}}); err != nil {
				t.Fatalf("%s: baseline call: %v", tg.c.Name(), err)
			}
			d = append(d, time.Since(start))
			time.Sleep(250 * time.Millisecond) // inside Amazon's 5/s
		}
		slices.Sort(d)
		baseline[tg.c.Name()] = d[len(d)/2]
	}
	lat := &latencies{pending: map[string][]struct {
		v  int64
		at time.Time
	}{}, got: map[string][]time.Duration{}}
	src := newFakeSource()
	src.changed = make(chan struct{}, 1)
	src.nonBlocking = true
	src.onShown = lat.shown
	var chans []struct {
		c   Connector
		opt ChannelOptions
	}
	for _, tg := range targets {
		chans = append(chans, ch(tg.c, ChannelOptions{Coalesce: 500 * time.Millisecond}))
	}
	startPusher(t, src, newMemState(), nil, chans...)
	counter := map[string]int64{}
	rng := rand.New(rand.NewPCG(1, 2))
	perTick := stores * rate / 100 // every 10 ms
	end := time.Now().Add(time.Duration(secs) * time.Second)
	tick := time.NewTicker(10 * time.Millisecond)
	records := 0
	for time.Now().Before(end) {
		<-tick.C
		for range max(perTick, 1) {
			i := rng.IntN(nskus)
			for _, tg := range targets {
				sku := tg.skus[i%len(tg.skus)]
				k := tg.c.Name() + "/" + sku
				counter[k]++
				lat.changed(tg.c.Name(), sku, counter[k])
				src.Set(tg.c.Name(), sku, strconv.FormatInt(counter[k], 10))
			}
			records++
		}
	}
	tick.Stop()
	time.Sleep(3 * time.Second) // drain
	t.Logf("load: %d stores × %d records/s for %ds = %d records over %d SKUs; coalesce 500ms", stores, rate, secs, records, nskus)
	for _, tg := range targets {
		name := tg.c.Name()
		lat.mu.Lock()
		d := slices.Clone(lat.got[name])
		lat.mu.Unlock()
		slices.Sort(d)
		b := baseline[name]
		t.Logf("%-18s changes %7d  p50 %-10s p99 %-10s max %-10s  one call %-10s p99/call %.0f×  not shown after 3s drain: %d",
			name, len(d), pct(d, 0.5).Round(time.Millisecond), pct(d, 0.99).Round(time.Millisecond), pct(d, 1).Round(time.Millisecond),
			b.Round(time.Microsecond), float64(pct(d, 0.99))/float64(max(b, 1)), lat.unresolved(name))
	}
	// Correctness, in every run: the unlimited channel ends at every SKU's latest figure.
	checkFor(t, 10*time.Second, "the unlimited channel shows every SKU's latest figure", func() bool {
		for _, sku := range skus {
			want, ok := counter[sc.Name()+"/"+sku]
			if got, _ := shop.Shown(sku); ok && got != want {
				return false
			}
		}
		return true
	})
}
