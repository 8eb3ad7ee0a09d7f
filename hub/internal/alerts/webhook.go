package alerts

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// WebhookOptions configure a Webhook.
type WebhookOptions struct {
	Queue    int           // events waiting to be sent (default 1000); beyond it Send drops
	Timeout  time.Duration // per attempt (default 10s)
	Attempts int           // tries per event before it is given up (default 10)
	// Backoff is the wait after the first failed attempt, doubling up to MaxBackoff (defaults
	// 1s and 5m).
	Backoff, MaxBackoff time.Duration
	Client              *http.Client // nil: a client with Timeout
	Logger              *slog.Logger
	Registry            prometheus.Registerer
}

// Webhook POSTs events as JSON to a URL from its own goroutine, in order, retrying failures
// with exponential back-off. Send never blocks: when the queue is full the event is dropped
// with a logged error and counted.
type Webhook struct {
	url   string
	o     WebhookOptions
	queue chan Event
	sent  *prometheus.CounterVec
}

// NewWebhook returns a sender to url; Run sends.
func NewWebhook(url string, o WebhookOptions) *Webhook {
	if o.Queue <= 0 {
		o.Queue = 1000
	}
	if o.Timeout <= 0 {
		o.Timeout = 10 * time.Second
	}
	if o.Attempts <= 0 {
		o.Attempts = 10
	}
	if o.Backoff <= 0 {
		o.Backoff = time.Second
	}
	if o.MaxBackoff < o.Backoff {
		o.MaxBackoff = max(5*time.Minute, o.Backoff)
	}
	if o.Client == nil {
		o.Client = &http.Client{Timeout: o.Timeout}
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	w := &Webhook{url: url, o: o, queue: make(chan Event, o.Queue),
		sent: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lanebridge_hub_alert_webhook_total",
			Help: "Alert webhook outcomes: sent, failed (an attempt, retried), dropped (queue full) and abandoned (attempts used up)."},
			[]string{"result"})}
	for _, r := range []string{"sent", "failed", "dropped", "abandoned"} {
		w.sent.WithLabelValues(r)
	}
	if o.Registry != nil {
		o.Registry.MustRegister(w.sent)
	}
	return w
}

// Send queues an event; it never blocks.
func (w *Webhook) Send(ev Event) {
	select {
	case w.queue <- ev:
	default:
		w.sent.WithLabelValues("dropped").Inc()
		w.o.Logger.Error("alert webhook queue full: event dropped", "kind", ev.Kind, "state", ev.State, "store", ev.Store, "terminal", ev.Terminal)
	}
}

// Run sends queued events until ctx ends.
func (w *Webhook) Run(ctx context.Context) error {
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev := <-w.queue:
			w.deliver(ctx, ev)
		}
	}
}

func (w *Webhook) deliver(ctx context.Context, ev Event) {
	body, _ := json.Marshal(ev)
	wait := w.o.Backoff
	for attempt := 1; ; attempt++ {
		err := w.post(ctx, body)
		if err == nil {
			w.sent.WithLabelValues("sent").Inc()
			return
		}
		w.sent.WithLabelValues("failed").Inc()
		if attempt == w.o.Attempts {
			w.sent.WithLabelValues("abandoned").Inc()
			w.o.Logger.Error("alert webhook failed; event given up", "attempts", attempt, "kind", ev.Kind, "store", ev.Store, "err", err)
			return
		}
		w.o.Logger.Warn("alert webhook failed; retrying", "attempt", attempt, "in", wait, "err", err)
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		}
		wait = min(2*wait, w.o.MaxBackoff)
	}
}

func (w *Webhook) post(ctx context.Context, body []byte) error {
	ctx, cancel := context.WithTimeout(ctx, w.o.Timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "lanebridge-hub")
	resp, err := w.o.Client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("webhook answered %s", resp.Status)
	}
	return nil
}
