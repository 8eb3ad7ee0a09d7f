package app

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/promread"
)

// A simulated agent on the embedded broker reports terminal T1 silent for two hours of trading:
// the hub raises terminal_silent and the webhook receives "raised"; a sale arrives and the next
// status reports it: the webhook receives "cleared".
func TestTerminalSilentAlertToWebhook(t *testing.T) {
	var mu sync.Mutex
	var events []map[string]string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var ev map[string]string
		if err := json.NewDecoder(r.Body).Decode(&ev); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		events = append(events, ev)
		mu.Unlock()
	}))
	defer hook.Close()
	cfg := testConfig(t)
	cfg.Alerts.Webhook = hook.URL + "/services/T0/B0/x"
	cfg.Alerts.EvaluateEvery = 200 * time.Millisecond
	f := &exportFixture{data: cfg.DataDir, cfg: filepath.Join(t.TempDir(), "hub.yaml")}
	os.WriteFile(f.cfg, nil, 0o600)
	pw := f.enroll(t, "S1")
	s := startHub(t, cfg, nil)
	// While the hub runs: the store trades around the clock in its zone.
	if out, errs, code := f.run(t, "stores", "set", "S1", "--trading-hours", "Mon-Sun 00:00-24:00", "--tz", "Europe/Berlin"); code != 0 {
		t.Fatalf("stores set: %s%s", out, errs)
	}
	agent := mustConnect(t, "tcp://"+s.h.mqttAddr, "S1", pw, "S1", nil)
	status := func(last time.Time) {
		t.Helper()
		b, _ := json.Marshal(protocol.Status{V: protocol.Version, Store: "S1", State: "online", Clock: time.Now().UTC(),
			LastCapture: map[string]time.Time{"T1": last}})
		publish(t, agent, protocol.StatusTopic("S1"), string(b))
	}
	waitEvent := func(n int, state string) map[string]string {
		t.Helper()
		var ev map[string]string
		eventually(t, 15*time.Second, "webhook event "+state, func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(events) < n {
				return fmt.Errorf("%d events: %v", len(events), events)
			}
			ev = events[n-1]
			return nil
		})
		if ev["state"] != state || ev["kind"] != "terminal_silent" || ev["store"] != "S1" || ev["terminal"] != "T1" || ev["text"] == "" {
			t.Fatalf("webhook event %d: %v, want %s terminal_silent of S1/T1", n, ev, state)
		}
		return ev
	}
	last := time.Now().Add(-2 * time.Hour).UTC().Truncate(time.Second)
	status(last)
	ev := waitEvent(1, "raised")
	if ev["since"] != last.Format(time.RFC3339) {
		t.Errorf("raised since %s, want the last capture %s", ev["since"], last.Format(time.RFC3339))
	}
	if v := metric(t, s.h, "lanebridge_hub_alerts_open", "terminal_silent"); v != 1 {
		t.Errorf("lanebridge_hub_alerts_open{kind=terminal_silent} = %v, want 1", v)
	}
	b, _ := json.Marshal(testBatch("S1", 1, 1))
	publish(t, agent, protocol.RecordsTopic("S1"), string(b))
	status(time.Now().UTC())
	waitEvent(2, "cleared")
	eventually(t, 5*time.Second, "gauge back to 0", func() error {
		if v := metric(t, s.h, "lanebridge_hub_alerts_open", "terminal_silent"); v != 0 {
			return fmt.Errorf("gauge %v", v)
		}
		return nil
	})
	mu.Lock()
	defer mu.Unlock()
	if len(events) != 2 {
		t.Fatalf("webhook events %v, want exactly a raise and a clear", events)
	}
}

// metric reads a gauge or counter with one label value from a registry (-1: absent).
func metric(t *testing.T, h *hub, name, label string) float64 {
	t.Helper()
	v, err := promread.Value(h.reg, name, label)
	if err != nil {
		t.Fatal(err)
	}
	return v
}
