package channels

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/testharness/channelsim"
)

// fakeSource stands in for the availability engine (hub/internal/availability, branch avail)
// with exactly the interface it implements: versioned figures per channel, newest per SKU.
// Its Changed channel is unbuffered and Set sends with a deadline, so a Pusher that stops
// draining it is caught (blocked counts the sends that timed out).
type fakeSource struct {
	mu      sync.Mutex
	version int64
	figs    map[string]map[string]ChannelFigure
	shown   map[string]string // channel/sku → last RecordShown
	changed chan struct{}
	blocked atomic.Int64
	// nonBlocking makes Set signal like an engine with a buffered channel (never waits).
	nonBlocking bool
	onShown     func(channel, sku, shown string)
}

func newFakeSource() *fakeSource {
	return &fakeSource{figs: map[string]map[string]ChannelFigure{}, shown: map[string]string{}, changed: make(chan struct{})}
}

// Set changes a figure, as a store sale or a reservation would.
func (f *fakeSource) Set(channel, sku, available string) {
	f.mu.Lock()
	f.version++
	if f.figs[channel] == nil {
		f.figs[channel] = map[string]ChannelFigure{}
	}
	f.figs[channel][sku] = ChannelFigure{channel, sku, available, f.version}
	f.mu.Unlock()
	if f.nonBlocking {
		select {
		case f.changed <- struct{}{}:
		default:
		}
		return
	}
	select {
	case f.changed <- struct{}{}:
	case <-time.After(time.Second):
		f.blocked.Add(1)
	}
}

func (f *fakeSource) Version() int64 { f.mu.Lock(); defer f.mu.Unlock(); return f.version }

func (f *fakeSource) ChannelChanges(_ context.Context, channel string, since int64, limit int) ([]ChannelFigure, int64, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []ChannelFigure
	for _, fig := range f.figs[channel] {
		if fig.Version > since {
			out = append(out, fig)
		}
	}
	slices.SortFunc(out, func(a, b ChannelFigure) int { return int(a.Version - b.Version) })
	if len(out) > limit {
		return out[:limit], out[limit-1].Version, nil
	}
	return out, f.version, nil
}

func (f *fakeSource) Changed() <-chan struct{} { return f.changed }

func (f *fakeSource) RecordShown(_ context.Context, channel, sku, shown string, _ time.Time) error {
	f.mu.Lock()
	f.shown[channel+"/"+sku] = shown
	cb := f.onShown
	f.mu.Unlock()
	if cb != nil {
		cb(channel, sku, shown)
	}
	return nil
}

func (f *fakeSource) Shown(channel, sku string) string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.shown[channel+"/"+sku]
}

// memState is an in-memory State for tests that are not about persistence.
type memState struct {
	mu     sync.Mutex
	cursor map[string]int64
	shown  map[string]map[string]Shown
}

func newMemState() *memState {
	return &memState{cursor: map[string]int64{}, shown: map[string]map[string]Shown{}}
}

func (m *memState) ChannelPushState(_ context.Context, ch string) (int64, map[string]Shown, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := map[string]Shown{}
	for k, v := range m.shown[ch] {
		out[k] = v
	}
	return m.cursor[ch], out, nil
}

func (m *memState) SaveChannelPush(_ context.Context, ch string, cursor int64, shown []Shown) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.cursor[ch] = max(m.cursor[ch], cursor)
	if m.shown[ch] == nil {
		m.shown[ch] = map[string]Shown{}
	}
	for _, s := range shown {
		m.shown[ch][s.SKU] = s
	}
	return nil
}

// checkFor polls cond until it holds or d passes.
func checkFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// shopifyChannel is a Shopify simulator and a REST (one call a SKU) connector for it.
func shopifyChannel(t *testing.T, name string, skus ...string) (*channelsim.Shopify, Connector) {
	t.Helper()
	sim := channelsim.NewShopify("tok", skus...)
	srv := httptest.NewServer(sim)
	t.Cleanup(srv.Close)
	c, err := NewShopify(ShopifyOptions{Channel: name, URL: srv.URL, Token: "tok", LocationID: 7001, API: "rest"})
	if err != nil {
		t.Fatal(err)
	}
	return sim, c
}

// startPusher runs a Pusher until the test ends (or the returned stop is called).
func startPusher(t *testing.T, src Source, st State, reg prometheus.Registerer, chans ...struct {
	c   Connector
	opt ChannelOptions
}) (stop func()) {
	t.Helper()
	p, err := NewPusher(Options{Source: src, State: st, Registry: reg, Poll: 200 * time.Millisecond, MaxBackoff: 500 * time.Millisecond,
		Log: slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		t.Fatal(err)
	}
	for _, ch := range chans {
		if err := p.Add(ch.c, ch.opt); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); _ = p.Run(ctx) }()
	var once sync.Once
	stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(stop)
	return stop
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(b []byte) (int, error) { w.t.Logf("%s", b); return len(b), nil }

func ch(c Connector, opt ChannelOptions) struct {
	c   Connector
	opt ChannelOptions
} {
	return struct {
		c   Connector
		opt ChannelOptions
	}{c, opt}
}

func TestPusherCoalescesPerSKU(t *testing.T) {
	src := newFakeSource()
	sim, c := shopifyChannel(t, "web", "SKU-A", "SKU-B")
	reg := prometheus.NewRegistry()
	startPusher(t, src, newMemState(), reg, ch(c, ChannelOptions{Coalesce: 2 * time.Second}))
	for i := range 100 {
		src.Set("web", "SKU-A", strconv.Itoa(1000-i))
	}
	src.Set("web", "SKU-B", "4")
	checkFor(t, 5*time.Second, "SKU-A shows the last of 100 changes", func() bool { n, _ := sim.Shown("SKU-A"); return n == 901 })
	checkFor(t, 2*time.Second, "SKU-B shown", func() bool { n, ok := sim.Shown("SKU-B"); return ok && n == 4 })
	time.Sleep(300 * time.Millisecond) // a second push would come now
	if n := sim.Sets("SKU-A"); n != 1 {
		t.Fatalf("100 changes of one SKU in one window: %d pushes, want 1", n)
	}
	if got := src.Shown("web", "SKU-A"); got != "901" {
		t.Fatalf("RecordShown for SKU-A: %q, want 901", got)
	}
	if v := counterValue(t, reg, "lanebridge_hub_channel_levels_total", "web", "ok"); v != 2 {
		t.Fatalf("lanebridge_hub_channel_levels_total{outcome=ok} = %v, want 2", v)
	}
}

// counterValue reads one counter of a gathered family by its label values.
func counterValue(t *testing.T, reg *prometheus.Registry, name string, values ...string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			var got []string
			for _, l := range m.GetLabel() {
				got = append(got, l.GetValue())
			}
			if slices.Equal(got, values) {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatalf("no %s%v", name, values)
	return 0
}

// The Pusher's own bucket keeps a per-item channel inside its limit: no 429 at all.
func TestPusherRespectsRateLimit(t *testing.T) {
	src := newFakeSource()
	var skus []string
	for i := range 25 {
		skus = append(skus, fmt.Sprintf("SKU-%02d", i))
	}
	sim := channelsim.NewAmazon("tok", "S1", "M1", skus...)
	srv := httptest.NewServer(sim)
	defer srv.Close()
	c, _ := NewAmazon(AmazonOptions{Channel: "amazon", URL: srv.URL, Token: "tok", SellerID: "S1", MarketplaceID: "M1"})
	start := time.Now()
	startPusher(t, src, newMemState(), nil, ch(c, ChannelOptions{Coalesce: 50 * time.Millisecond}))
	for _, s := range skus {
		src.Set("amazon", s, "3")
	}
	checkFor(t, 15*time.Second, "every SKU shown", func() bool {
		for _, s := range skus {
			if _, ok := sim.Shown(s); !ok {
				return false
			}
		}
		return true
	})
	calls, limited := sim.Calls()
	if limited != 0 || calls != len(skus) {
		t.Fatalf("25 SKUs at 5/s burst 10: %d calls, %d answered 429; want 25 and none", calls, limited)
	}
	// 9 at once, then 16 at 4.5 a second (the connector keeps 10 % headroom): at least 3.4 s (a lower bound only).
	if el := time.Since(start); el < 3400*time.Millisecond {
		t.Fatalf("25 calls took %s: faster than the channel's 5/s after a burst of 10", el)
	}
}

// A Pusher configured faster than the channel gets 429s and waits as the channel's hint says
// (Shopify: Retry-After; Amazon: x-amzn-RateLimit-Limit). On Shopify another app has filled the
// shared bucket first, so the connector's own X-Shopify-Shop-Api-Call-Limit check cannot avoid it.
func TestPusherHonours429(t *testing.T) {
	var skus []string
	for i := range 20 {
		skus = append(skus, fmt.Sprintf("SKU-%02d", i))
	}
	type sim interface {
		Shown(string) (int64, bool)
		Calls() (int, int)
		Early() int
	}
	for _, kind := range []string{"shopify", "amazon"} {
		t.Run(kind, func(t *testing.T) {
			src := newFakeSource()
			var s sim
			var c Connector
			if kind == "shopify" {
				sh, conn := shopifyChannel(t, "web", skus...)
				sh.Capacity, sh.Leak = 5, 5
				for range 5 { // another app of the shop takes the whole bucket
					req, _ := http.NewRequest(http.MethodGet, conn.(*Shopify).api("variants.json"), nil)
					req.Header.Set("X-Shopify-Access-Token", "tok")
					if res, err := http.DefaultClient.Do(req); err == nil {
						res.Body.Close()
					}
				}
				s, c = sh, conn
			} else {
				am := channelsim.NewAmazon("tok", "S1", "M1", skus...)
				am.Rate, am.Burst = 5, 3
				srv := httptest.NewServer(am)
				t.Cleanup(srv.Close)
				c, _ = NewAmazon(AmazonOptions{Channel: "web", URL: srv.URL, Token: "tok", SellerID: "S1", MarketplaceID: "M1"})
				s = am
			}
			startPusher(t, src, newMemState(), nil, ch(c, ChannelOptions{Coalesce: 50 * time.Millisecond, Rate: 1000, Burst: 50}))
			for _, sku := range skus {
				src.Set("web", sku, "8")
			}
			checkFor(t, 15*time.Second, "every SKU shown", func() bool {
				for _, sku := range skus {
					if n, _ := s.Shown(sku); n != 8 {
						return false
					}
				}
				return true
			})
			if _, limited := s.Calls(); limited == 0 {
				t.Fatal("the simulator never answered 429: the test did not provoke the limit")
			}
			if early := s.Early(); early != 0 {
				t.Fatalf("%d requests came before the 429's retry hint ran out", early)
			}
		})
	}
}

// A channel that is down gets only the latest figure when it returns, not every change.
func TestPusherChannelDownGetsLatest(t *testing.T) {
	src := newFakeSource()
	sim, c := shopifyChannel(t, "web", "SKU-A")
	sim.SetDown(true)
	startPusher(t, src, newMemState(), nil, ch(c, ChannelOptions{Coalesce: 20 * time.Millisecond}))
	src.Set("web", "SKU-A", "50")
	checkFor(t, 5*time.Second, "the pusher tried the channel while it was down", func() bool { return sim.Refused() >= 2 })
	for i := range 50 {
		src.Set("web", "SKU-A", strconv.Itoa(49-i))
		time.Sleep(2 * time.Millisecond)
	}
	sim.SetDown(false)
	checkFor(t, 5*time.Second, "SKU-A shows the latest (0)", func() bool { n, ok := sim.Shown("SKU-A"); return ok && n == 0 })
	time.Sleep(300 * time.Millisecond)
	if n := sim.Sets("SKU-A"); n != 1 {
		t.Fatalf("after the channel came back: %d sets of SKU-A, want 1 (the latest only)", n)
	}
}

// A hung channel delays only itself: the other channel is served and the engine is never blocked.
func TestPusherHungChannelBlocksNothing(t *testing.T) {
	src := newFakeSource()
	hung, hc := shopifyChannel(t, "hung", "SKU-A")
	ok, oc := shopifyChannel(t, "ok", "SKU-A")
	hung.SetHang(true)
	defer hung.SetHang(false)
	startPusher(t, src, newMemState(), nil, ch(hc, ChannelOptions{Coalesce: 10 * time.Millisecond, Timeout: time.Minute}),
		ch(oc, ChannelOptions{Coalesce: 10 * time.Millisecond}))
	src.Set("hung", "SKU-A", "1")
	time.Sleep(100 * time.Millisecond) // the hung channel's call is now in flight
	for i := range 200 {
		src.Set("ok", "SKU-A", strconv.Itoa(i))
		src.Set("hung", "SKU-A", strconv.Itoa(i))
	}
	checkFor(t, 5*time.Second, "the healthy channel shows the latest", func() bool { n, _ := ok.Shown("SKU-A"); return n == 199 })
	if b := src.blocked.Load(); b != 0 {
		t.Fatalf("%d changes of the engine waited over a second for the pusher", b)
	}
	if _, shown := hung.Shown("SKU-A"); shown {
		t.Fatal("the hung channel shows a figure")
	}
}

// runRestartResumes: the push state lives in the store; a restarted hub resumes from its cursor
// (no re-push of what the channel shows) and one killed mid-push ends at the right figure.
func runRestartResumes(t *testing.T, st State) {
	src := newFakeSource()
	sim, c := shopifyChannel(t, "web", "SKU-A", "SKU-B", "SKU-C")
	opt := ChannelOptions{Coalesce: 20 * time.Millisecond, Timeout: time.Minute}
	stop := startPusher(t, src, st, nil, ch(c, opt))
	src.Set("web", "SKU-A", "5")
	src.Set("web", "SKU-B", "6")
	checkFor(t, 5*time.Second, "first figures shown", func() bool { n, _ := sim.Shown("SKU-B"); return n == 6 })
	checkFor(t, 5*time.Second, "cursor persisted", func() bool {
		cur, _, _ := st.ChannelPushState(context.Background(), "web")
		return cur == src.Version()
	})
	stop()
	// While the hub is down: SKU-B changes, SKU-A changes and changes back.
	src.Set("web", "SKU-B", "2")
	src.Set("web", "SKU-A", "4")
	src.Set("web", "SKU-A", "5")
	stop = startPusher(t, src, st, nil, ch(c, opt))
	checkFor(t, 5*time.Second, "SKU-B shows its new figure", func() bool { n, _ := sim.Shown("SKU-B"); return n == 2 })
	time.Sleep(200 * time.Millisecond)
	if a, b := sim.Sets("SKU-A"), sim.Sets("SKU-B"); a != 1 || b != 2 {
		t.Fatalf("after a restart: SKU-A set %d times, SKU-B %d; want 1 (it already showed 5) and 2", a, b)
	}
	// Killed mid-push: the channel hangs, the hub dies with the call in flight, the figure changes.
	sim.SetHang(true)
	src.Set("web", "SKU-C", "9")
	time.Sleep(150 * time.Millisecond)
	stop()
	src.Set("web", "SKU-C", "7")
	sim.SetHang(false)
	startPusher(t, src, st, nil, ch(c, opt))
	checkFor(t, 5*time.Second, "SKU-C ends at the latest figure", func() bool { n, _ := sim.Shown("SKU-C"); return n == 7 })
}

func TestPusherRestartSQLite(t *testing.T) {
	db, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	runRestartResumes(t, db)
}

func TestPusherRestartPostgres(t *testing.T) {
	runRestartResumes(t, openPostgres(t))
}

// openPostgres opens the store in a fresh schema of LANEBRIDGE_TEST_PG_URL, dropped afterwards.
func openPostgres(t *testing.T) *store.DB {
	t.Helper()
	if testing.Short() {
		t.Skip("needs PostgreSQL (-short)")
	}
	ctx := context.Background()
	url := os.Getenv("LANEBRIDGE_TEST_PG_URL")
	if url == "" {
		url = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	schema := fmt.Sprintf("lbchannels_%d_%d", os.Getpid(), time.Now().UnixNano()%1e9)
	db, err := store.OpenPostgresSchema(ctx, url, schema)
	if err != nil {
		t.Fatalf("PostgreSQL at LANEBRIDGE_TEST_PG_URL: %v", err)
	}
	t.Cleanup(func() {
		db.Close()
		if raw, err := pgx.Connect(ctx, url); err == nil {
			_, _ = raw.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
			raw.Close(ctx)
		}
	})
	return db
}
