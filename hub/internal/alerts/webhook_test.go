package alerts

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// A webhook that fails twice (a 500, then a hang past the timeout) gets the event on the third
// attempt, in order with the next one.
func TestWebhookRetriesUntilDelivered(t *testing.T) {
	var mu sync.Mutex
	var got []map[string]any
	calls := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls++
		n := calls
		mu.Unlock()
		switch n {
		case 1:
			http.Error(w, "busy", http.StatusInternalServerError)
			return
		case 2:
			select { // hang past the sender's timeout
			case <-r.Context().Done():
			case <-time.After(time.Second):
			}
			return
		}
		var v map[string]any
		if r.Method != http.MethodPost || r.Header.Get("Content-Type") != "application/json" || json.NewDecoder(r.Body).Decode(&v) != nil {
			http.Error(w, "bad request", http.StatusBadRequest)
			return
		}
		mu.Lock()
		got = append(got, v)
		mu.Unlock()
	}))
	defer srv.Close()
	reg := prometheus.NewRegistry()
	w := NewWebhook(srv.URL+"/hook/secret-token", WebhookOptions{Timeout: 200 * time.Millisecond, Backoff: 10 * time.Millisecond,
		MaxBackoff: 20 * time.Millisecond, Registry: reg})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	since := time.Date(2026, 12, 1, 10, 0, 0, 0, time.UTC)
	w.Send(Event{Kind: TerminalSilent, State: "raised", Store: "S1", Terminal: "T1", Since: since, Detail: "d", Text: "one line"})
	w.Send(Event{Kind: TerminalSilent, State: "cleared", Store: "S1", Terminal: "T1", Since: since, Detail: "d", Text: "one line"})
	deadline := time.Now().Add(10 * time.Second)
	for {
		mu.Lock()
		n := len(got)
		mu.Unlock()
		if n == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("webhook received %d events, want 2", n)
		}
		time.Sleep(10 * time.Millisecond)
	}
	want := map[string]any{"kind": "terminal_silent", "state": "raised", "store": "S1", "terminal": "T1",
		"since": "2026-12-01T10:00:00Z", "detail": "d", "text": "one line"}
	for k, v := range want {
		if got[0][k] != v {
			t.Errorf("payload %s = %v, want %v (payload %v)", k, got[0][k], v, got[0])
		}
	}
	if got[1]["state"] != "cleared" {
		t.Errorf("second event %v, want the clear after the raise", got[1])
	}
	for label, want := range map[string]float64{"failed": 2, "sent": 2, "dropped": 0, "abandoned": 0} {
		if v := gauge(t, reg, "lanebridge_hub_alert_webhook_total", label); v != want {
			t.Errorf("lanebridge_hub_alert_webhook_total{result=%q} = %v, want %v", label, v, want)
		}
	}
}

// Send never blocks: with the queue full (no sender running) the event is dropped and counted;
// a webhook that never answers 2xx is given up after its attempts, without the URL in the log.
func TestWebhookDropsAndGivesUp(t *testing.T) {
	reg := prometheus.NewRegistry()
	var log strings.Builder
	w := NewWebhook("http://127.0.0.1:1/hook/secret-token", WebhookOptions{Queue: 1, Attempts: 2, Backoff: time.Millisecond,
		Registry: reg, Logger: newTextLogger(&log)})
	start := time.Now()
	for range 3 {
		w.Send(Event{Kind: StoreOffline, State: "raised", Store: "S1"})
	}
	if time.Since(start) > time.Second {
		t.Fatal("Send blocked on a full queue")
	}
	if v := gauge(t, reg, "lanebridge_hub_alert_webhook_total", "dropped"); v != 2 {
		t.Fatalf("dropped = %v, want 2", v)
	}
	w.deliver(context.Background(), <-w.queue)
	if v := gauge(t, reg, "lanebridge_hub_alert_webhook_total", "abandoned"); v != 1 {
		t.Fatalf("abandoned = %v, want 1", v)
	}
	if !strings.Contains(log.String(), "queue full") || !strings.Contains(log.String(), "given up") || strings.Contains(log.String(), "secret-token") {
		t.Fatalf("log:\n%s\nwant the drop and the give-up logged without the webhook URL", log.String())
	}
}

func newTextLogger(w *strings.Builder) *slog.Logger { return slog.New(slog.NewTextHandler(w, nil)) }
