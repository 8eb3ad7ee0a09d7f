package app

import (
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/availability"
	"github.com/lanebridge/lanebridge/hub/internal/channels"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/channelsim"
)

// The availability engine's figures reach the real Vendure and the Shopify- and Amazon-shaped
// simulators: ERP on-hand, a store sale, a marketplace reservation (repeated: nothing pushed),
// its release.
func TestAvailabilityPushedToChannels(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	for _, id := range []string{"S1", "S2"} {
		if err := st.AddStore(ctx, id, "x"); err != nil {
			t.Fatal(err)
		}
	}
	vskus := strings.Split(os.Getenv("LANEBRIDGE_VENDURE_SKUS"), ",")
	if os.Getenv("LANEBRIDGE_VENDURE_URL") == "" || len(vskus) < 2 {
		if os.Getenv("CI") != "" || os.Getenv("LANEBRIDGE_VENDURE_REQUIRED") == "1" {
			t.Fatal("no Vendure: LANEBRIDGE_VENDURE_URL and LANEBRIDGE_VENDURE_SKUS unset (testharness/services.sh starts one)")
		}
		t.Skip("no Vendure: run testharness/vendure/setup.sh and source DIR/env")
	}
	a := vskus[0]
	var cfg availability.Config
	cfg.Channels = []availability.ChannelConfig{{Name: "web", Stores: []string{"*"}}, {Name: "market", Stores: []string{"*"}}, {Name: "amazon", Stores: []string{"*"}}}
	eng, err := availability.New(st, cfg, availability.Options{})
	if err != nil {
		t.Fatal(err)
	}
	st.SetAvailabilityHook(eng.Notify)
	go eng.Run(ctx)
	pw, _ := os.ReadFile(os.Getenv("LANEBRIDGE_VENDURE_PASSWORD_FILE"))
	vc, _ := channels.NewVendure(channels.VendureOptions{Channel: "web", URL: os.Getenv("LANEBRIDGE_VENDURE_URL"), Username: "superadmin",
		Password: strings.TrimSpace(string(pw)), Location: os.Getenv("LANEBRIDGE_VENDURE_WEB_LOCATION")})
	shop := channelsim.NewShopify("tok", a)
	ss := httptest.NewServer(shop)
	defer ss.Close()
	sc, _ := channels.NewShopify(channels.ShopifyOptions{Channel: "market", URL: ss.URL, Token: "tok", LocationID: 7001})
	amz := channelsim.NewAmazon("tok", "S1", "M1", a)
	as := httptest.NewServer(amz)
	defer as.Close()
	ac, _ := channels.NewAmazon(channels.AmazonOptions{Channel: "amazon", URL: as.URL, Token: "tok", SellerID: "S1", MarketplaceID: "M1"})
	p, err := channels.NewPusher(channels.Options{Source: availSource{eng}, State: st, Poll: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []channels.Connector{vc, sc, ac} {
		p.Add(c, channels.ChannelOptions{Coalesce: 100 * time.Millisecond})
	}
	go p.Run(ctx)
	want := func(what string, n int64) {
		t.Helper()
		deadline := time.Now().Add(10 * time.Second)
		for {
			v, _, _ := vc.Shown(ctx, a)
			s, _ := shop.Shown(a)
			m, _ := amz.Shown(a)
			if v == n && s == n && m == n {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: vendure %d, shopify %d, amazon %d; want %d everywhere", what, v, s, m, n)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	master := []store.MasterItem{{SKU: a, Price: 100, Status: protocol.ItemActive}}
	if err := st.PutERPStock(ctx, master, map[string]map[string]string{"S1": {a: "10"}, "S2": {a: "5"}}, time.Now()); err != nil {
		t.Fatal(err)
	}
	want("ERP on-hand 10 + 5", 15)
	rec := protocol.Record{Kind: protocol.KindSale, Store: "S1", Terminal: "T1", Receipt: "1", BusinessDate: "2026-12-01", Epoch: "e1", Seq: 1,
		Lines: []protocol.Line{{SKU: a, Quantity: "2", UnitPrice: 100, Amount: 200}}, Total: 200, Tenders: []protocol.Tender{{Type: protocol.TenderCash, Amount: 200}}}
	rec.Seal()
	start := time.Now()
	if _, err := st.ApplyBatch(ctx, "S1", "e1", []protocol.Record{rec}); err != nil {
		t.Fatal(err)
	}
	want("a store sale of 2", 13)
	t.Logf("store sale applied → every channel updated in %s", time.Since(start).Round(time.Millisecond))
	req := availability.ReserveRequest{Channel: "amazon", OrderID: "A-1", Lines: []store.ReservationLine{{SKU: a, Quantity: "3"}}}
	if _, _, err := eng.Reserve(ctx, req); err != nil {
		t.Fatal(err)
	}
	want("a marketplace reservation of 3", 10)
	sets := shop.Sets(a)
	if _, created, err := eng.Reserve(ctx, req); err != nil || created {
		t.Fatalf("repeat reservation: created %v, %v", created, err)
	}
	time.Sleep(500 * time.Millisecond)
	if shop.Sets(a) != sets {
		t.Fatalf("a repeated reservation pushed again (%d → %d sets)", sets, shop.Sets(a))
	}
	if _, _, err := eng.Release(ctx, "amazon", "A-1"); err != nil {
		t.Fatal(err)
	}
	want("the reservation cancelled", 13)
}
