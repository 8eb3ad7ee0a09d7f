package e2e

import (
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/protocol"
)

// forgedBatch is a valid one-record batch for store, seq 1 of a fixed epoch.
func forgedBatch(t testing.TB, store string) []byte {
	r := protocol.Record{Kind: protocol.KindSale, Store: store, Terminal: "T9", Receipt: "1", BusinessDate: "2026-11-26", Total: 100,
		Tenders: []protocol.Tender{{Type: "cash", Amount: 100}}, Epoch: "forged", Seq: 1, CapturedAt: time.Now().UTC().Truncate(time.Microsecond)}
	r.Seal()
	b, err := json.Marshal(protocol.Batch{V: 1, Store: store, Epoch: "forged", Records: []protocol.Record{r}})
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// publishAs connects with a store's credentials and publishes one QoS 1 message.
func publishAs(t testing.TB, addr, user, pw, topic string, payload []byte) error {
	o := mqtt.NewClientOptions().AddBroker("tcp://" + addr).SetClientID("lanebridge-agent-" + user).
		SetUsername(user).SetPassword(pw).SetAutoReconnect(false).SetConnectTimeout(5 * time.Second)
	c := mqtt.NewClient(o)
	tok := c.Connect()
	if !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
		return fmt.Errorf("connect: %v", tok.Error())
	}
	defer c.Disconnect(100)
	pt := c.Publish(topic, 1, false, payload)
	if !pt.WaitTimeout(5 * time.Second) {
		return errors.New("publish: no PUBACK")
	}
	return pt.Error()
}
