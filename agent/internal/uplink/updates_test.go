package uplink_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"path/filepath"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/agent/internal/uplink"
	"github.com/lanebridge/lanebridge/protocol"
)

// Update commands go to Config.Updates, every other command to Config.Commands (real broker).
func TestCommandsRoutedToUpdates(t *testing.T) {
	if testing.Short() {
		t.Skip("needs Mosquitto on 127.0.0.1:1883 (or LANEBRIDGE_TEST_MQTT_URL)")
	}
	store := fmt.Sprintf("uplink-upd-%08x", rand.Uint32())
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), spool.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	cmds, upds := make(chan *protocol.Command, 4), make(chan *protocol.Command, 4)
	hub := newFakeHub(t, store)
	fwd, err := uplink.New(uplink.Config{Store: store, Broker: brokerURL(), ClientID: "agent-" + store, Heartbeat: time.Hour,
		Commands: cmds, Updates: upds, Status: func() protocol.Status { return protocol.Status{Epoch: sp.Epoch()} }}, sp)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); fwd.Run(ctx) }()
	defer func() { cancel(); <-done }()
	checkFor(t, 15*time.Second, "the agent online", func() bool { return hub.statuses() > 0 })

	sm := &protocol.SignedManifest{Body: "{}", Signature: "sig"}
	hub.publish(protocol.CommandsTopic(store), protocol.Command{V: 1, ID: "u1", Type: protocol.CommandUpdate, Manifest: sm, URL: "/api/v1/agent/releases/v2.0.0/linux/amd64/binary"})
	hub.publish(protocol.CommandsTopic(store), protocol.Command{V: 1, ID: "r1", Type: protocol.CommandReplay, Epoch: sp.Epoch(), FromSeq: 1, ToSeq: 1})
	for _, want := range []struct {
		ch <-chan *protocol.Command
		id string
	}{{upds, "u1"}, {cmds, "r1"}} {
		select {
		case c := <-want.ch:
			if c.ID != want.id {
				t.Fatalf("got command %s, want %s", c.ID, want.id)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("command %s not delivered to its channel", want.id)
		}
	}
	if len(cmds)+len(upds) != 0 {
		t.Fatal("a command was delivered twice")
	}
}
