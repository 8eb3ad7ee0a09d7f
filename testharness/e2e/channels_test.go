package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/channelsim"
)

// TestChannelsVendureEndToEnd: real hub and agent binaries, the real Vendure (web shop) and a
// Shopify-shaped SIMULATOR (marketplace). Store sales, from a journal and then from the
// terminal simulator's ESC/POS receipts over a pseudo-terminal, lower the web shop's stock within
// seconds; a marketplace reservation lowers every channel; a repeat changes nothing; a
// cancellation restores it; a hub SIGKILLed with a push in flight ends with every channel at the
// right figure once it is back.
func TestChannelsVendureEndToEnd(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	vurl := os.Getenv("LANEBRIDGE_VENDURE_URL")
	if vurl == "" || !strings.Contains(","+os.Getenv("LANEBRIDGE_VENDURE_SKUS")+",", ",100001,") {
		if os.Getenv("CI") != "" || os.Getenv("LANEBRIDGE_VENDURE_REQUIRED") == "1" {
			t.Fatal("no Vendure seeded with the simulator's SKUs (testharness/services.sh starts one)")
		}
		t.Skip("no Vendure: run testharness/vendure/setup.sh and source DIR/env")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	inbound := filepath.Join(dir, "inbound")
	if err := os.MkdirAll(inbound, 0o755); err != nil {
		t.Fatal(err)
	}
	market := channelsim.NewShopify("shptok", simSKUs...)
	msrv := httptest.NewServer(market)
	defer msrv.Close()
	tokFile := filepath.Join(dir, "shopify.token")
	if err := os.WriteFile(tokFile, []byte("shptok\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	web := os.Getenv("LANEBRIDGE_VENDURE_WEB_LOCATION")
	cfgPath := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, `erp:
  kind: flatfile
  flatfile:
    outbound: %s
    inbound: %s
inventory:
  interval: 1h
availability:
  channels:
    - {name: web, stores: ["*"]}
    - {name: market, stores: ["*"]}
connectors:
  - {channel: web, kind: vendure, url: %q, username: %s, password_file: %s, location: %q, coalesce: 200ms}
  - {channel: market, kind: shopify, url: %q, token_file: %s, location: "7001", coalesce: 200ms, timeout: 2m}
`, filepath.Join(dir, "outbound"), inbound, vurl, os.Getenv("LANEBRIDGE_VENDURE_USER"), os.Getenv("LANEBRIDGE_VENDURE_PASSWORD_FILE"), web,
		msrv.URL, tokFile), 0o600); err != nil {
		t.Fatal(err)
	}
	pw, _ := os.ReadFile(os.Getenv("LANEBRIDGE_VENDURE_PASSWORD_FILE"))
	shop := &vendureReader{url: vurl, user: os.Getenv("LANEBRIDGE_VENDURE_USER"), password: strings.TrimSpace(string(pw)), location: web}
	const store = "S020"
	const sku = "100001"
	h := startHub(t, dir, "--config", cfgPath)
	journal := filepath.Join(dir, "T1.jsonl")
	agentCfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": journal})
	// T2 is a receipt printer on a serial line (a pseudo-terminal), read with the shipped
	// ESC/POS profile: the terminal simulator prints into the other end.
	line := newPTYLine(t)
	appendTerminal(t, agentCfg, captureTerm{"T2", "serial://" + line.Agent + "?baud=9600", "epson-tm-escpos"})
	var items strings.Builder
	items.WriteString("sku,description,price,tax_code,status\n")
	opening := map[string]int{}
	for i, s := range simSKUs {
		fmt.Fprintf(&items, "%s,Item %s,%d,STD,active\n", s, s, 100+i)
		opening[s] = 100
	}
	writeInbound(t, inbound, "items_0001.csv", items.String())
	writeInbound(t, inbound, "onhand_0001.csv", onHandCSV(store, opening))
	ag := startAgent(t, dir, store, agentCfg)
	waitPortsOpen(t, ag, line.Agent)
	h.refreshInventory(t)
	both := func(what string, want int64, within time.Duration) time.Duration {
		t.Helper()
		start := time.Now()
		eventually(t, within, what, func() error {
			v, err := shop.sellable(sku)
			m, _ := market.Shown(sku)
			if err != nil || v != want || m != want {
				return fmt.Errorf("web shop (Vendure) %d (%v), marketplace %d; want %d", v, err, m, want)
			}
			return nil
		})
		return time.Since(start)
	}
	both("opening stock on every channel", 100, 60*time.Second)

	// Store sales: the agent captures them, the hub applies them, the channels follow.
	const n = 40
	simP := runSim(t, dir, journal, "T1", n, 200, 11)
	<-simP.Done
	h.WaitRecords(t, store, n, 60*time.Second)
	sold := soldBySKU(t, h.AllRecords(t, store))
	if sold[sku] == 0 {
		t.Fatalf("the simulator sold none of %s (sold %v): pick another seed", sku, sold)
	}
	after := int64(100 - sold[sku])
	took := both("store sales lower the web shop", after, 15*time.Second)
	t.Logf("after the records were applied, the web shop showed %d within %s", after, took.Round(time.Millisecond))

	// Store sales over a pty: terminal simulator → pseudo-terminal → agent (serial source,
	// epson-tm-escpos) → hub → availability → Vendure. The receipts carry PLU lines.
	const m = 12
	ptySim := start(t, "lanebridge-sim", filepath.Join(dir, "sim-T2.log"), "terminal",
		"--profile", "epson-tm-escpos", "--out", "serial://"+line.Sim, "--date", simDate,
		"--count", fmt.Sprint(m), "--rate", "50", "--seed", "7", "--skus", strings.Join(simSKUs, ","))
	select {
	case <-ptySim.Done:
	case <-time.After(30 * time.Second):
		t.Fatal("the terminal simulator did not finish")
	}
	if ptySim.Err != nil {
		b, _ := os.ReadFile(ptySim.Log)
		t.Fatalf("terminal simulator: %v\n%s", ptySim.Err, b)
	}
	printed := time.Now()
	// Every transaction is a record; the Z report closes only at the profile's framing timeout
	// and carries no stock, so it is not waited for.
	h.WaitAtLeast(t, store, n+m, 30*time.Second)
	var overPTY []protocol.Record
	for _, r := range h.AllRecords(t, store) {
		if r.Terminal == "T2" {
			overPTY = append(overPTY, r)
		}
	}
	ptySold := soldBySKU(t, overPTY)
	if ptySold[sku] == 0 {
		t.Fatalf("the terminal sold none of %s over the pty (sold %v in %d records): pick another seed", sku, ptySold, len(overPTY))
	}
	after -= int64(ptySold[sku])
	both("a store sale over a pty lowers the web shop", after, 15*time.Second)
	t.Logf("%d units of %s sold over the pty: the web shop showed %d %s after the terminal printed the last receipt",
		ptySold[sku], sku, after, time.Since(printed).Round(time.Millisecond))

	reserve := func(order string, q int) string {
		b, err := h.Post("/api/v1/reservations", fmt.Appendf(nil, `{"channel":"market","order_id":%q,"lines":[{"sku":%q,"quantity":"%d"}]}`, order, sku, q))
		if err != nil && !strings.Contains(err.Error(), "201") {
			t.Fatalf("reserve %s: %v", order, err)
		}
		return string(b)
	}
	reserve("M-1", 3)
	both("a marketplace reservation lowers every channel", after-3, 15*time.Second)
	sets := market.Sets(sku)
	reserve("M-1", 3)
	time.Sleep(time.Second)
	both("a repeated reservation changes nothing", after-3, time.Second)
	if market.Sets(sku) != sets {
		t.Fatalf("the repeated reservation pushed again (%d → %d sets)", sets, market.Sets(sku))
	}
	if _, err := h.Do("DELETE", "/api/v1/reservations/market/M-1", nil); err != nil {
		t.Fatalf("cancel: %v", err)
	}
	both("a cancelled reservation restores the figure", after, 15*time.Second)

	// Hub killed with the marketplace push in flight (the channel hangs), then restarted.
	market.SetHang(true)
	reserve("M-2", 5)
	eventually(t, 15*time.Second, "the web shop takes the reservation", func() error {
		if v, _ := shop.sellable(sku); v != after-5 {
			return fmt.Errorf("web shop %d, want %d", v, after-5)
		}
		return nil
	})
	time.Sleep(500 * time.Millisecond) // the marketplace's call is now in flight
	h.P.Kill()
	market.SetHang(false)
	if m, _ := market.Shown(sku); m == after-5 {
		t.Fatal("the marketplace already shows the figure: the push was not in flight when the hub died")
	}
	h.Start(t)
	both("after the restart every channel is at the right figure", after-5, 30*time.Second)
}

// appendTerminal adds a byte-stream terminal to an agent config that agentConfig wrote (it ends
// with its terminals list).
func appendTerminal(t testing.TB, cfgPath string, tm captureTerm) {
	t.Helper()
	f, err := os.OpenFile(cfgPath, os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := fmt.Fprintf(f, "  - {id: %s, source: %q, profile: %s}\n", tm.id, tm.source, tm.profile); err != nil {
		t.Fatal(err)
	}
}

// vendureReader reads what the real Vendure sells of a SKU at a stock location, through its
// Admin API (the test cannot import the hub's connector).
type vendureReader struct {
	url, user, password, location string
	token                         string
}

func (v *vendureReader) gql(query string, vars map[string]any, out any) error {
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, v.url+"/admin-api", bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if v.token != "" {
		req.Header.Set("Authorization", "Bearer "+v.token)
	}
	res, err := (&http.Client{Timeout: 10 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	defer res.Body.Close()
	if t := res.Header.Get("Vendure-Auth-Token"); t != "" {
		v.token = t
	}
	var body struct {
		Data   json.RawMessage
		Errors []struct{ Message string }
	}
	if err := json.NewDecoder(res.Body).Decode(&body); err != nil {
		return err
	}
	if len(body.Errors) > 0 {
		return fmt.Errorf("vendure: %s", body.Errors[0].Message)
	}
	return json.Unmarshal(body.Data, out)
}

func (v *vendureReader) sellable(sku string) (int64, error) {
	if v.token == "" {
		var login json.RawMessage
		if err := v.gql(`mutation($u:String!,$p:String!){ login(username:$u, password:$p){ __typename } }`,
			map[string]any{"u": v.user, "p": v.password}, &login); err != nil {
			return 0, err
		}
	}
	var out struct {
		ProductVariants struct {
			Items []struct {
				StockLevels []struct {
					StockLocationID string `json:"stockLocationId"`
					StockOnHand     int64  `json:"stockOnHand"`
					StockAllocated  int64  `json:"stockAllocated"`
				} `json:"stockLevels"`
			} `json:"items"`
		} `json:"productVariants"`
	}
	if err := v.gql(`query($s:String!){ productVariants(options:{filter:{sku:{eq:$s}}}){ items{ stockLevels{ stockLocationId stockOnHand stockAllocated } } } }`,
		map[string]any{"s": sku}, &out); err != nil {
		return 0, err
	}
	for _, it := range out.ProductVariants.Items {
		for _, l := range it.StockLevels {
			if l.StockLocationID == v.location {
				return l.StockOnHand - l.StockAllocated, nil
			}
		}
	}
	return 0, fmt.Errorf("vendure has no variant %s at location %s", sku, v.location)
}
