package uplink_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/agent/internal/uplink"
	"github.com/lanebridge/lanebridge/protocol"
)

// TestWindowRecordsAndLazyAck: the window is counted in records (a batch is cut to fit), and
// the hub's acks free the window at once but reach the spool only lazily: not while
// AckPersist has not passed and AckPersistRecords is not reached, and at the latest when Run
// returns.
func TestWindowRecordsAndLazyAck(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Mosquitto on 127.0.0.1:1883 (or LANEBRIDGE_TEST_MQTT_URL)")
	}
	store := fmt.Sprintf("uplink-window-%08x", rand.Uint32())
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), spool.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	const total = 1000
	var recs []protocol.Record
	for i := 1; i <= total; i++ {
		recs = append(recs, protocol.Record{Kind: protocol.KindNoSale, Terminal: "T1", Receipt: strconv.Itoa(i), BusinessDate: "2026-12-01"})
	}
	if _, err := sp.Commit(context.Background(), spool.Capture{Source: "T1", Records: recs}); err != nil {
		t.Fatal(err)
	}

	// The hub's side: holds its acks until ack is set, then acks what it received in order.
	var (
		mu      sync.Mutex
		applied uint64
		ack     bool
	)
	hub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL()).SetClientID("hub-" + store))
	if tok := hub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to %s: %v (is Mosquitto running?)", brokerURL(), tok.Error())
	}
	defer hub.Disconnect(100)
	sendAck := func(epoch string, through uint64) {
		p, _ := json.Marshal(protocol.Ack{V: 1, Store: store, Epoch: epoch, AppliedThrough: through})
		hub.Publish(protocol.AcksTopic(store), 1, false, p)
	}
	tok := hub.Subscribe(protocol.RecordsTopic(store), 1, func(_ mqtt.Client, m mqtt.Message) {
		b, err := protocol.DecodeBatch(store, m.Payload())
		if err != nil {
			t.Errorf("bad batch: %v", err)
			return
		}
		mu.Lock()
		defer mu.Unlock()
		if first := b.Records[0].Seq; first == applied+1 {
			applied = b.Records[len(b.Records)-1].Seq
		}
		if ack {
			sendAck(b.Epoch, applied)
		}
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	fwd, err := uplink.New(uplink.Config{Store: store, Broker: brokerURL(), BatchSize: 64, WindowRecords: 200,
		AckTimeout: time.Minute, Heartbeat: time.Hour, AckPersist: time.Hour, AckPersistRecords: 1 << 20}, sp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()
	stopped := false
	defer func() {
		if !stopped {
			cancel()
			<-done
		}
	}()

	checkFor(t, 10*time.Second, "a full window", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return applied == 200
	})
	time.Sleep(300 * time.Millisecond) // a window in batches (8 × 64) would send more meanwhile
	if p := fwd.C.Published.Load(); p != 200 {
		t.Fatalf("published %d records without an ack, want the window of 200", p)
	}

	mu.Lock()
	ack = true
	sendAck(sp.Epoch(), applied)
	mu.Unlock()
	checkFor(t, 10*time.Second, "every record acked by the hub", func() bool { return fwd.C.Acked.Load() == total })
	if got := sp.LastAck(); got != 0 {
		t.Fatalf("spool ack %d persisted before AckPersist or AckPersistRecords, want 0 (lazy)", got)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	stopped = true
	if got := sp.LastAck(); got != total {
		t.Fatalf("spool ack %d after a clean stop, want %d (persisted at stop)", got, total)
	}

	// Bounded: with AckPersistRecords 100 the spool follows during the run.
	fwd, err = uplink.New(uplink.Config{Store: store, Broker: brokerURL(), AckPersist: time.Hour, AckPersistRecords: 100, Heartbeat: time.Hour}, sp)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := sp.Commit(context.Background(), spool.Capture{Source: "T1", Records: recs[:300]}); err != nil {
		t.Fatal(err)
	}
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	go func() { done <- fwd.Run(ctx) }()
	checkFor(t, 10*time.Second, "acks persisted while running", func() bool { return sp.LastAck() >= total+200 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
