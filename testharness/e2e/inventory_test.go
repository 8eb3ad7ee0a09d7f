package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// The inventory push with the flat-file connector: inbound item and on-hand files → hub →
// agent; the agent's overlay after sales, the hub's figures after posting, and an agent that
// was stopped through 500 inventory versions catching up with exactly one snapshot.

var simSKUs = []string{"100001", "100002", "100003", "100004", "100005", "100006", "100007", "100008", "100009", "100010"}

// agentView is the agent's GET /inventory/{sku}.
type agentView struct {
	SKU            string `json:"sku"`
	Price          int64  `json:"price"`
	OnHand         string `json:"on_hand"`
	Available      string `json:"available"`
	Version        uint64 `json:"version"`
	HubAvailable   string `json:"hub_available"`
	LocalSold      string `json:"local_sold"`
	AppliedThrough uint64 `json:"applied_through"`
}

func agentListenAddr(t testing.TB, cfgPath string) string {
	t.Helper()
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^listen: (\S+)$`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no listen address in %s", cfgPath)
	}
	return string(m[1])
}

func agentInventory(addr, sku string) (agentView, error) {
	var v agentView
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get("http://" + addr + "/inventory/" + sku)
	if err != nil {
		return v, err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return v, fmt.Errorf("GET /inventory/%s: %s: %s", sku, resp.Status, b)
	}
	return v, json.Unmarshal(b, &v)
}

func (h *hub) refreshInventory(t testing.TB) {
	t.Helper()
	b, err := h.Post("/api/v1/inventory/refresh", nil)
	if err != nil || strings.Contains(string(b), `"error"`) {
		t.Fatalf("inventory refresh: %v: %s", err, b)
	}
}

// metric returns the value of the exposition line starting with name (labels included).
func (h *hub) metric(t testing.TB, name string) float64 {
	t.Helper()
	b, err := h.Get("/metrics")
	if err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(strings.NewReader(string(b)))
	for sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			v, err := strconv.ParseFloat(rest, 64)
			if err != nil {
				t.Fatalf("metric %s: %v", name, err)
			}
			return v
		}
	}
	return 0
}

func (h *hub) inventoryVersion(t testing.TB, store string) uint64 {
	t.Helper()
	b, err := h.Get("/api/v1/stores/" + store + "/inventory?sku=none")
	if err != nil {
		t.Fatal(err)
	}
	var v struct {
		State struct {
			Version uint64 `json:"version"`
		} `json:"state"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		t.Fatal(err)
	}
	return v.State.Version
}

// writeInbound writes an inbound file atomically (the ERP's side of the contract).
func writeInbound(t testing.TB, dir, name, body string) {
	t.Helper()
	tmp := filepath.Join(dir, ".tmp-"+name)
	if err := os.WriteFile(tmp, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, name)); err != nil {
		t.Fatal(err)
	}
}

func onHandCSV(store string, q map[string]int) string {
	var b strings.Builder
	b.WriteString("store,sku,on_hand\n")
	for _, sku := range simSKUs {
		fmt.Fprintf(&b, "%s,%s,%d\n", store, sku, q[sku])
	}
	return b.String()
}

// soldBySKU is the net quantity of the non-voided sale and return lines of recs.
func soldBySKU(t testing.TB, recs []protocol.Record) map[string]int {
	t.Helper()
	sold := map[string]int{}
	for _, r := range recs {
		if r.Kind != protocol.KindSale && r.Kind != protocol.KindReturn {
			continue
		}
		for _, l := range r.Lines {
			if l.Voided || l.SKU == "" {
				continue
			}
			q, err := strconv.Atoi(l.Quantity)
			if err != nil {
				t.Fatalf("quantity %q: %v", l.Quantity, err)
			}
			sold[l.SKU] += q
		}
	}
	return sold
}

func TestInventoryFlatFileOverlayAndCatchUp(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	inbound := filepath.Join(dir, "inbound")
	if err := os.MkdirAll(inbound, 0o755); err != nil {
		t.Fatal(err)
	}
	cfgPath := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfgPath, fmt.Appendf(nil, `erp:
  kind: flatfile
  flatfile:
    outbound: %s
    inbound: %s
inventory:
  interval: 1h
`, filepath.Join(dir, "outbound"), inbound), 0o600); err != nil {
		t.Fatal(err)
	}
	const store = "S010"
	h := startHub(t, dir, "--config", cfgPath)
	journal := filepath.Join(dir, "T1.jsonl")
	agentCfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": journal})
	listen := agentListenAddr(t, agentCfg)

	// The ERP's item master and opening stock: 100 of everything.
	var items strings.Builder
	items.WriteString("sku,description,price,tax_code,status\n")
	for i, sku := range simSKUs {
		fmt.Fprintf(&items, "%s,Item %s,%d,STD,active\n", sku, sku, 100+i)
	}
	writeInbound(t, inbound, "items_0001.csv", items.String())
	opening := map[string]int{}
	for _, sku := range simSKUs {
		opening[sku] = 100
	}
	writeInbound(t, inbound, "onhand_0001.csv", onHandCSV(store, opening))

	ag := startAgent(t, dir, store, agentCfg)
	h.refreshInventory(t)
	if _, err := os.Stat(filepath.Join(inbound, "processed", "onhand_0001.csv")); err != nil {
		t.Fatalf("inbound file not moved to processed/: %v", err)
	}
	v1 := h.inventoryVersion(t, store)
	eventually(t, 30*time.Second, "agent holds the first version", func() error {
		v, err := agentInventory(listen, "100001")
		if err != nil {
			return err
		}
		if v.Version != v1 || v.Available != "100" || v.Price != 100 {
			return fmt.Errorf("agent view %+v, want version %d available 100", v, v1)
		}
		return nil
	})

	// Sales captured: the agent's overlay subtracts them before the hub has computed anything.
	const n = 40
	simP := runSim(t, dir, journal, "T1", n, 200, 11)
	<-simP.Done
	h.WaitRecords(t, store, n, 60*time.Second)
	sold := soldBySKU(t, h.AllRecords(t, store))
	moved := 0
	for _, sku := range simSKUs {
		want := strconv.Itoa(100 - sold[sku])
		eventually(t, 30*time.Second, "overlay of "+sku, func() error {
			v, err := agentInventory(listen, sku)
			if err != nil {
				return err
			}
			if v.Available != want || v.HubAvailable != "100" || v.Version != v1 {
				return fmt.Errorf("agent view %+v, want available %s from the hub's 100 at version %d", v, want, v1)
			}
			return nil
		})
		if sold[sku] != 0 {
			moved++
		}
	}
	if moved == 0 {
		t.Fatal("the simulated day sold nothing")
	}

	// Posted: the hub's own figures now subtract the sales (the on-hand file predates the
	// postings), and the agent's overlay stops subtracting them.
	eventually(t, 60*time.Second, "postings done", func() error {
		all, err := h.countPostings(store, "")
		if err != nil {
			return err
		}
		done, err := h.countPostings(store, "done")
		if err != nil {
			return err
		}
		if all == 0 || done != all {
			return fmt.Errorf("%d of %d postings done", done, all)
		}
		return nil
	})
	check := func(what string, onHand func(sku string) int) {
		t.Helper()
		h.refreshInventory(t)
		for _, sku := range simSKUs {
			want := strconv.Itoa(100 - sold[sku])
			eventually(t, 30*time.Second, what+" of "+sku, func() error {
				v, err := agentInventory(listen, sku)
				if err != nil {
					return err
				}
				if v.Available != want || v.HubAvailable != want || v.LocalSold != "0" || v.OnHand != strconv.Itoa(onHand(sku)) {
					return fmt.Errorf("agent view %+v, want available %s all from the hub, on hand %d", v, want, onHand(sku))
				}
				return nil
			})
		}
	}
	check("hub figures after posting", func(string) int { return 100 })
	// The ERP books the postings and exports a new on-hand: same availability, on-hand moved.
	after := map[string]int{}
	for _, sku := range simSKUs {
		after[sku] = 100 - sold[sku]
	}
	writeInbound(t, inbound, "onhand_0002.csv", onHandCSV(store, after))
	check("ERP on-hand after posting", func(sku string) int { return after[sku] })

	// The agent stops; 500 inventory changes happen; it restarts and catches up with one
	// snapshot.
	ag.Stop(t)
	eventually(t, 10*time.Second, "agent offline at the hub", func() error {
		s, err := h.Store(store)
		if err != nil {
			return err
		}
		if s.Status == nil || s.Status.State != "offline" {
			return fmt.Errorf("status %+v", s.Status)
		}
		return nil
	})
	snaps := h.metric(t, `lanebridge_hub_inventory_messages_total{kind="snapshot"}`)
	deltas := h.metric(t, `lanebridge_hub_inventory_messages_total{kind="delta"}`)
	before := h.inventoryVersion(t, store)
	start := time.Now()
	for i := range 500 {
		q := map[string]int{}
		for k, v := range after {
			q[k] = v
		}
		q["100001"] = 1000 + i
		writeInbound(t, inbound, fmt.Sprintf("onhand_1%04d.csv", i), onHandCSV(store, q))
		h.refreshInventory(t)
	}
	latest := h.inventoryVersion(t, store)
	if latest != before+500 {
		t.Fatalf("500 changes made %d versions (%d → %d)", latest-before, before, latest)
	}
	if got := h.metric(t, `lanebridge_hub_inventory_messages_total{kind="snapshot"}`) + h.metric(t, `lanebridge_hub_inventory_messages_total{kind="delta"}`); got != snaps+deltas {
		t.Fatalf("%v messages published to an offline agent", got-snaps-deltas)
	}
	t.Logf("500 inventory versions made in %v", time.Since(start).Round(time.Millisecond))

	ag = startAgent(t, dir, store, agentCfg)
	eventually(t, 60*time.Second, "agent caught up", func() error {
		v, err := agentInventory(listen, "100001")
		if err != nil {
			return err
		}
		if v.Version != latest || v.Available != "1499" {
			return fmt.Errorf("agent view %+v, want version %d available 1499", v, latest)
		}
		return nil
	})
	time.Sleep(3 * time.Second) // several agent heartbeats: no second snapshot follows
	if got := h.metric(t, `lanebridge_hub_inventory_messages_total{kind="snapshot"}`) - snaps; got != 1 {
		t.Errorf("the agent caught up with %v snapshots, want exactly 1", got)
	}
	if got := h.metric(t, `lanebridge_hub_inventory_messages_total{kind="delta"}`) - deltas; got != 0 {
		t.Errorf("the agent was sent %v deltas while catching up, want 0", got)
	}
	ag.Stop(t)
	checkLogs(t, dir)
	h.P.Stop(t)
}

// checkAgentsAvailable restarts each store's agent (stopped by the scenario), has the hub pull
// the ERP's stock, and checks that every agent's available quantity of skus is want(store):
// with every sale posted, the ERP's on-hand, and nothing left in the agent's overlay.
func checkAgentsAvailable(t *testing.T, h *hub, dir string, stores, skus []string, want func(store string) map[string]float64) {
	t.Helper()
	h.refreshInventory(t)
	for _, st := range stores {
		cfg := filepath.Join(dir, "agent-"+st+".yaml")
		ag := startAgent(t, dir, st, cfg)
		listen := agentListenAddr(t, cfg)
		w := want(st)
		for _, sku := range skus {
			eventually(t, 60*time.Second, "available of "+st+"/"+sku, func() error {
				v, err := agentInventory(listen, sku)
				if err != nil {
					return err
				}
				got, err := strconv.ParseFloat(v.Available, 64)
				if err != nil {
					return err
				}
				if d := got - w[sku]; d > 1e-9 || d < -1e-9 || v.LocalSold != "0" {
					return fmt.Errorf("agent view %+v, want available %v (the ERP's on-hand) and nothing in the overlay", v, w[sku])
				}
				return nil
			})
		}
		t.Logf("store %s: the agent's available quantities equal the ERP's on-hand", st)
		ag.Stop(t)
	}
}
