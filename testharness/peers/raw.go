package peers

import (
	"sync/atomic"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/testharness/mosquitto"
)

// RawQoS1 is the floor: it returns records/s for payloads (each carrying records/len(payloads)
// records, e.g. [Backlog]'s batches) published QoS 1 by one paho client and received by another
// through a private Mosquitto without persistence, in dir. Nothing is stored: the ratio against
// it says what durable apply-and-ack costs over bare MQTT transport.
func RawQoS1(t testing.TB, dir string, payloads [][]byte, records int) float64 {
	t.Helper()
	mq := mosquitto.Start(t, dir, "") // anonymous: the baseline is the raw broker
	opts := func(id string) *mqtt.ClientOptions {
		return mqtt.NewClientOptions().AddBroker(mq.URL).SetClientID(id).SetCleanSession(true)
	}
	var got atomic.Int64
	done := make(chan struct{})
	sub := mqtt.NewClient(opts("raw-sub"))
	if tk := sub.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("raw subscriber: %v", tk.Error())
	}
	defer sub.Disconnect(100)
	total := int64(len(payloads))
	tk := sub.Subscribe("raw/records", 1, func(_ mqtt.Client, m mqtt.Message) {
		if got.Add(1) == total {
			close(done)
		}
	})
	if !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("raw subscribe: %v", tk.Error())
	}
	pub := mqtt.NewClient(opts("raw-pub"))
	if tk := pub.Connect(); !tk.WaitTimeout(10*time.Second) || tk.Error() != nil {
		t.Fatalf("raw publisher: %v", tk.Error())
	}
	defer pub.Disconnect(100)
	t0 := time.Now()
	for _, p := range payloads {
		pub.Publish("raw/records", 1, false, p)
	}
	select {
	case <-done:
	case <-time.After(120 * time.Second):
		t.Fatalf("raw baseline: received %d of %d messages", got.Load(), total)
	}
	el := time.Since(t0)
	mq.Stop()
	return float64(records) / el.Seconds()
}
