package uplink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/agent/internal/inventory"
	"github.com/lanebridge/lanebridge/agent/internal/replay"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/agent/internal/uplink"
	"github.com/lanebridge/lanebridge/protocol"
)

func brokerURL() string {
	if u := os.Getenv("LANEBRIDGE_TEST_MQTT_URL"); u != "" {
		return u
	}
	return "tcp://127.0.0.1:1883"
}

// checkFor polls cond until it holds or d passes.
func checkFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// fakeHub is the hub's side of the MQTT contract, played with paho on a real broker: it acks
// every regular batch, keeps replay batches and statuses, and publishes inventory and commands.
type fakeHub struct {
	t      *testing.T
	store  string
	c      mqtt.Client
	mu     sync.Mutex
	status []protocol.Status
	replay []*protocol.Batch
}

func newFakeHub(t *testing.T, store string) *fakeHub {
	h := &fakeHub{t: t, store: store}
	o := mqtt.NewClientOptions().AddBroker(brokerURL()).SetClientID("hub-" + store).SetCleanSession(true)
	h.c = mqtt.NewClient(o)
	if tok := h.c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("fake hub: connect to %s: %v (is Mosquitto running? make test starts it)", brokerURL(), tok.Error())
	}
	t.Cleanup(func() {
		// Clear the retained status so the broker keeps nothing of this test.
		h.c.Publish(protocol.StatusTopic(store), 1, true, []byte{}).WaitTimeout(5 * time.Second)
		h.c.Disconnect(100)
	})
	sub := func(topic string, cb mqtt.MessageHandler) {
		if tok := h.c.Subscribe(topic, 1, cb); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("fake hub: subscribe %s: %v", topic, tok.Error())
		}
	}
	sub(protocol.RecordsTopic(store), func(_ mqtt.Client, m mqtt.Message) {
		b, err := protocol.DecodeBatch(store, m.Payload())
		if err != nil {
			t.Errorf("fake hub: bad batch: %v", err)
			return
		}
		if b.Replay {
			h.mu.Lock()
			h.replay = append(h.replay, b)
			h.mu.Unlock()
			return
		}
		ack, _ := json.Marshal(protocol.Ack{V: 1, Store: store, Epoch: b.Epoch, AppliedThrough: b.Records[len(b.Records)-1].Seq})
		h.c.Publish(protocol.AcksTopic(store), 1, false, ack) // the token is not waited on in a callback
	})
	sub(protocol.StatusTopic(store), func(_ mqtt.Client, m mqtt.Message) {
		if len(m.Payload()) == 0 {
			return
		}
		s, err := protocol.DecodeStatus(store, m.Payload())
		if err != nil {
			t.Errorf("fake hub: bad status: %v", err)
			return
		}
		h.mu.Lock()
		h.status = append(h.status, *s)
		h.mu.Unlock()
	})
	return h
}

func (h *fakeHub) publish(topic string, v any) {
	h.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		h.t.Fatal(err)
	}
	if tok := h.c.Publish(topic, 1, false, b); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		h.t.Fatalf("fake hub: publish %s: %v", topic, tok.Error())
	}
}

func (h *fakeHub) statuses() int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return len(h.status)
}

func (h *fakeHub) lastStatus() protocol.Status {
	h.mu.Lock()
	defer h.mu.Unlock()
	if len(h.status) == 0 {
		return protocol.Status{}
	}
	return h.status[len(h.status)-1]
}

func (h *fakeHub) replays() []*protocol.Batch {
	h.mu.Lock()
	defer h.mu.Unlock()
	return slices.Clone(h.replay)
}

// TestDownlinkOnMosquitto runs the forwarder with the inventory service and the replay executor
// against a real broker: inventory snapshot, delta on a wrong base, catch-up snapshot, a replay
// command and its repetition, each observed from the hub's side through the agent's status.
func TestDownlinkOnMosquitto(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Mosquitto on 127.0.0.1:1883 (or LANEBRIDGE_TEST_MQTT_URL)")
	}
	store := fmt.Sprintf("uplink-it-%08x", rand.Uint32())
	dir := t.TempDir()
	sp, err := spool.Open(filepath.Join(dir, "spool.db"), spool.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var recs []protocol.Record
	for i := 1; i <= 5; i++ { // seq 1..5: T1 receipts 1..5, each selling one A
		recs = append(recs, protocol.Record{Kind: protocol.KindSale, Terminal: "T1", Receipt: strconv.Itoa(i), BusinessDate: "2026-11-27",
			Lines: []protocol.Line{{SKU: "A", Quantity: "1", UnitPrice: 250, Amount: 250}}, Total: 250})
	}
	if _, err := sp.Commit(context.Background(), spool.Capture{Source: "T1", Records: recs}); err != nil {
		t.Fatal(err)
	}

	db, err := inventory.Open(filepath.Join(dir, "inventory.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var fwd *uplink.Forwarder
	request := func() { fwd.RequestStatus() }
	inv, err := inventory.New(db, sp, inventory.Options{OnChange: request})
	if err != nil {
		t.Fatal(err)
	}
	rep, err := replay.New(sp, pubFunc(func(ctx context.Context, p []byte) error { return fwd.PublishRecords(ctx, p) }),
		replay.Options{Store: store, BatchSize: 2, OnResult: request})
	if err != nil {
		t.Fatal(err)
	}
	hub := newFakeHub(t, store)
	fwd, err = uplink.New(uplink.Config{
		Store: store, Broker: brokerURL(), ClientID: "agent-" + store, Heartbeat: time.Hour, // statuses below are prompt ones
		Inventory: inv.Messages(), Commands: rep.Commands(),
		Status: func() protocol.Status {
			return protocol.Status{Epoch: sp.Epoch(), LastSeq: sp.LastSeq(), LastAck: sp.LastAck(), InventoryVersion: inv.Version(), CommandResults: rep.Results()}
		},
	}, sp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for _, run := range []func(context.Context) error{fwd.Run, inv.Run, rep.Run} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := run(ctx); err != nil {
				t.Errorf("run: %v", err)
			}
		}()
	}
	defer func() { cancel(); wg.Wait() }()

	checkFor(t, 15*time.Second, "the agent online and its 5 records acked", func() bool {
		return sp.LastAck() == 5 && hub.statuses() > 0
	})
	ep := sp.Epoch()
	item := func(sku, avail string) protocol.Item {
		return protocol.Item{SKU: sku, Description: "item " + sku, Price: 250, Status: protocol.ItemActive, OnHand: avail, Available: avail}
	}

	// 1. A snapshot whose figures account for seq 1..3: the agent subtracts seq 4 and 5.
	hub.publish(protocol.InventoryTopic(store), protocol.Inventory{V: 1, Store: store, Kind: protocol.InventorySnapshot, Version: 1,
		Epoch: ep, AppliedThrough: 3, Items: []protocol.Item{item("A", "10"), item("B", "3")}})
	checkFor(t, 10*time.Second, "status with inventory_version 1", func() bool { return hub.lastStatus().InventoryVersion == 1 })
	if v, err := inv.Lookup("A"); err != nil || v.Available != "8" {
		t.Fatalf("Lookup(A) = %+v, %v; want available 8", v, err)
	}

	// 2. A delta on a base the agent does not hold is ignored and the agent says so at once.
	n := hub.statuses()
	hub.publish(protocol.InventoryTopic(store), protocol.Inventory{V: 1, Store: store, Kind: protocol.InventoryDelta, BaseVersion: 500, Version: 501,
		Epoch: ep, AppliedThrough: 5, Items: []protocol.Item{item("A", "1")}})
	checkFor(t, 10*time.Second, "a prompt status after the ignored delta", func() bool { return hub.statuses() > n })
	if got := hub.lastStatus().InventoryVersion; got != 1 || inv.C.IgnoredBase.Load() != 1 {
		t.Fatalf("after wrong-base delta: status version %d, ignored %d", got, inv.C.IgnoredBase.Load())
	}

	// 3. The hub answers with one snapshot, then a delta on it.
	hub.publish(protocol.InventoryTopic(store), protocol.Inventory{V: 1, Store: store, Kind: protocol.InventorySnapshot, Version: 501,
		Epoch: ep, AppliedThrough: 5, Items: []protocol.Item{item("A", "5"), item("B", "3")}})
	hub.publish(protocol.InventoryTopic(store), protocol.Inventory{V: 1, Store: store, Kind: protocol.InventoryDelta, BaseVersion: 501, Version: 502,
		Epoch: ep, AppliedThrough: 5, Items: []protocol.Item{item("B", "2.5")}})
	checkFor(t, 10*time.Second, "status with inventory_version 502", func() bool { return hub.lastStatus().InventoryVersion == 502 })
	for sku, want := range map[string]string{"A": "5", "B": "2.5"} {
		if v, err := inv.Lookup(sku); err != nil || v.Available != want {
			t.Fatalf("Lookup(%s) = %+v, %v; want available %s", sku, v, err, want)
		}
	}

	// 4. A replay command for receipts 2..4: three records in two batches, and a result.
	cmd := protocol.Command{V: 1, ID: "replay-" + store, Type: protocol.CommandReplay, Terminal: "T1", BusinessDate: "2026-11-27", FromReceipt: 2, ToReceipt: 4}
	hub.publish(protocol.CommandsTopic(store), cmd)
	checkFor(t, 10*time.Second, "a status carrying the command result", func() bool {
		rs := hub.lastStatus().CommandResults
		return len(rs) == 1 && rs[0].ID == cmd.ID
	})
	if r := hub.lastStatus().CommandResults[0]; !r.OK || r.Found != 3 || !slices.Equal(r.Seqs, []uint64{2, 3, 4}) {
		t.Fatalf("command result %+v", r)
	}
	checkFor(t, 10*time.Second, "two replay batches", func() bool { return len(hub.replays()) == 2 })
	var seqs []uint64
	for _, b := range hub.replays() {
		if b.CommandID != cmd.ID || b.Epoch != ep {
			t.Fatalf("replay batch command %q epoch %s", b.CommandID, b.Epoch)
		}
		for _, r := range b.Records {
			seqs = append(seqs, r.Seq)
		}
	}
	if !slices.Equal(seqs, []uint64{2, 3, 4}) {
		t.Fatalf("replayed seqs %v", seqs)
	}

	// 5. The same command again: reported again, not executed again.
	n = hub.statuses()
	hub.publish(protocol.CommandsTopic(store), cmd)
	checkFor(t, 10*time.Second, "a status after the repeated command", func() bool { return hub.statuses() > n })
	time.Sleep(300 * time.Millisecond) // a second execution would have published by now
	if got := len(hub.replays()); got != 2 {
		t.Fatalf("repeated command replayed again: %d batches", got)
	}
	if rs := hub.lastStatus().CommandResults; len(rs) != 1 {
		t.Fatalf("results after repeat: %+v", rs)
	}
	if fwd.C.BadDown.Load() != 0 || fwd.C.DownDropped.Load() != 0 {
		t.Fatalf("bad %d dropped %d", fwd.C.BadDown.Load(), fwd.C.DownDropped.Load())
	}
}

type pubFunc func(ctx context.Context, payload []byte) error

func (f pubFunc) PublishRecords(ctx context.Context, payload []byte) error { return f(ctx, payload) }
