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

// TestRefusedRecordsNotResent: the hub refuses seqs 3..4 for good (Ack.Rejected). The agent
// sends them once, keeps them, stops there (an ack timeout or a resend request does not send
// them again) and offers them again only after RejectRetry, when this hub accepts them.
// Without the refusal handling the ack timeout resends them every 200 ms, forever.
func TestRefusedRecordsNotResent(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Mosquitto on 127.0.0.1:1883 (or LANEBRIDGE_TEST_MQTT_URL)")
	}
	store := fmt.Sprintf("uplink-refuse-%08x", rand.Uint32())
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), spool.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	var recs []protocol.Record
	for i := 1; i <= 6; i++ {
		recs = append(recs, protocol.Record{Kind: protocol.KindNoSale, Terminal: "T1", Receipt: strconv.Itoa(i), BusinessDate: "2026-12-01"})
	}
	if _, err := sp.Commit(context.Background(), spool.Capture{Source: "T1", Records: recs}); err != nil {
		t.Fatal(err)
	}

	// The hub's side: applies in order, refuses any batch holding seq 4 until accept is set.
	var (
		mu         sync.Mutex
		applied    uint64
		deliveries int // of seq 4
		accept     bool
	)
	hub := mqtt.NewClient(mqtt.NewClientOptions().AddBroker(brokerURL()).SetClientID("hub-" + store))
	if tok := hub.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to %s: %v (is Mosquitto running?)", brokerURL(), tok.Error())
	}
	defer hub.Disconnect(100)
	tok := hub.Subscribe(protocol.RecordsTopic(store), 1, func(_ mqtt.Client, m mqtt.Message) {
		b, err := protocol.DecodeBatch(store, m.Payload())
		if err != nil {
			t.Errorf("bad batch: %v", err)
			return
		}
		first, last := b.Records[0].Seq, b.Records[len(b.Records)-1].Seq
		mu.Lock()
		ack := protocol.Ack{V: 1, Store: store, Epoch: b.Epoch}
		switch {
		case first <= 4 && last >= 4 && !accept:
			deliveries++
			ack.Rejected = &protocol.Rejection{From: first, To: last, Reason: "total: beyond ±10^13"}
		case first > applied+1:
			ack.AppliedThrough, ack.ResendFrom = applied, applied+1
		default:
			if first <= 4 && last >= 4 {
				deliveries++
			}
			applied = max(applied, last)
			ack.AppliedThrough = applied
		}
		mu.Unlock()
		p, _ := json.Marshal(ack)
		hub.Publish(protocol.AcksTopic(store), 1, false, p)
	})
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe: %v", tok.Error())
	}

	const ackTimeout = 200 * time.Millisecond
	fwd, err := uplink.New(uplink.Config{Store: store, Broker: brokerURL(), BatchSize: 2, AckTimeout: ackTimeout,
		Heartbeat: time.Hour, RejectRetry: 4 * time.Second}, sp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fwd.Run(ctx) }()
	defer func() { cancel(); <-done }()

	checkFor(t, 10*time.Second, "the refused batch", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return deliveries > 0
	})
	start := fwd.C.Published.Load()
	time.Sleep(10 * ackTimeout) // ten ack timeouts: each would resend without the refusal handling
	mu.Lock()
	n := deliveries
	mu.Unlock()
	if n != 1 || sp.LastAck() != 2 || sp.LastSeq() != 6 {
		t.Fatalf("seq 4 delivered %d times (want 1), last ack %d (want 2), last seq %d (want 6: kept)", n, sp.LastAck(), sp.LastSeq())
	}
	if r := fwd.C.Refused(); r.From != 3 || r.To != 4 {
		t.Fatalf("Refused = %+v, want 3..4", r)
	}
	if more := fwd.C.Published.Load() - start; more > 2 { // [5,6] may follow the refused batch
		t.Fatalf("%d more records published while paused", more)
	}
	mu.Lock()
	accept = true // the hub was upgraded
	mu.Unlock()
	checkFor(t, 15*time.Second, "the records offered again after RejectRetry and acked", func() bool { return sp.LastAck() == 6 })
	if fwd.C.Refused() != nil {
		t.Fatal("refusal still reported after the records were accepted")
	}
}
