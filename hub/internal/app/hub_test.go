package app

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
	"github.com/lanebridge/lanebridge/testharness/mosquitto"
	"github.com/lanebridge/lanebridge/testharness/syncbuf"
)

// syncBuffer collects log output from several goroutines.
type syncBuffer = syncbuf.Buffer

func TestRunParts(t *testing.T) {
	boom := errors.New("boom")
	// Each part is told when to return: on ctx end ("wait"), at once with an error ("fail"),
	// at once with nil ("quit"), or with ctx.Err() on ctx end ("ctxerr").
	tests := []struct {
		name    string
		parts   map[string]string
		cancel  bool   // cancel the parent ctx after a moment
		wantErr string // "" for nil
	}{
		{"clean stop", map[string]string{"a": "wait", "b": "wait"}, true, ""},
		{"context error on stop is clean", map[string]string{"a": "wait", "b": "ctxerr"}, true, ""},
		{"failure stops the others", map[string]string{"a": "wait", "posting": "fail", "c": "ctxerr"}, false, "posting: boom"},
		{"nil before stop is a failure", map[string]string{"a": "wait", "scheduler": "quit"}, false, "scheduler: stopped unexpectedly"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var mu sync.Mutex
			stopped := map[string]bool{}
			var parts []part
			for name, how := range tt.parts {
				parts = append(parts, part{name, func(ctx context.Context) error {
					defer func() { mu.Lock(); stopped[name] = true; mu.Unlock() }()
					switch how {
					case "fail":
						time.Sleep(20 * time.Millisecond)
						return boom
					case "quit":
						time.Sleep(20 * time.Millisecond)
						return nil
					case "ctxerr":
						<-ctx.Done()
						return ctx.Err()
					}
					<-ctx.Done()
					return nil
				}})
			}
			ctx, cancel := context.WithCancel(context.Background())
			defer cancel()
			if tt.cancel {
				time.AfterFunc(50*time.Millisecond, cancel)
			}
			logs := &syncBuffer{}
			err := runParts(ctx, slog.New(slog.NewTextHandler(logs, nil)), parts)
			if tt.wantErr == "" && err != nil {
				t.Fatalf("runParts = %v, want nil", err)
			}
			if tt.wantErr != "" {
				if err == nil || err.Error() != tt.wantErr {
					t.Fatalf("runParts = %v, want %q", err, tt.wantErr)
				}
				if tt.wantErr == "posting: boom" && !errors.Is(err, boom) {
					t.Errorf("error %v does not wrap the part's", err)
				}
				if !strings.Contains(logs.String(), "hub part failed") {
					t.Errorf("failure not logged:\n%s", logs)
				}
			}
			mu.Lock()
			defer mu.Unlock()
			for name := range tt.parts {
				if !stopped[name] {
					t.Errorf("part %s still running after runParts returned", name)
				}
			}
		})
	}
}

// testConfig is a hub on a temporary data directory with every listener on a free port.
func testConfig(t *testing.T) *Config {
	t.Helper()
	cfg := defaultConfig()
	cfg.DataDir = t.TempDir()
	cfg.MQTT.Listen = "127.0.0.1:0"
	cfg.HTTP.Listen = "127.0.0.1:0"
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	return cfg
}

// started is a hub running in the background.
type started struct {
	h    *hub
	logs *syncBuffer
	stop context.CancelFunc
	done chan error
}

func startHub(t *testing.T, cfg *Config, setup func(*hub)) *started {
	t.Helper()
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	ctx, cancel := context.WithCancel(context.Background())
	h, err := newHub(ctx, cfg, log)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if setup != nil {
		setup(h)
	}
	s := &started{h: h, logs: logs, stop: cancel, done: make(chan error, 1)}
	go func() { s.done <- h.run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-s.done
		if t.Failed() {
			t.Logf("hub log:\n%s", logs)
		}
	})
	return s
}

// wait returns run's result, failing the test if the hub does not stop in time.
func (s *started) wait(t *testing.T) error {
	t.Helper()
	select {
	case err := <-s.done:
		s.done <- err // for the cleanup
		return err
	case <-time.After(15 * time.Second):
		t.Fatal("hub did not stop within 15s")
		return nil
	}
}

func get(url string) (int, string, error) {
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b), nil
}

func eventually(t *testing.T, d time.Duration, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", d, what, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func healthz(addr string) error {
	code, body, err := get("http://" + addr + "/healthz")
	if err != nil {
		return err
	}
	if code != 200 {
		return fmt.Errorf("healthz %d: %s", code, body)
	}
	return nil
}

// checkStopped fails the test unless the hub's listeners are closed and its store is closed.
func checkStopped(t *testing.T, h *hub) {
	t.Helper()
	for _, addr := range []string{h.httpAddr, h.metricsAddr} {
		if _, _, err := get("http://" + addr + "/healthz"); addr != "" && err == nil {
			t.Errorf("http on %s still answering after run returned", addr)
		}
	}
	if h.mqttAddr != "" {
		if c, err := net.DialTimeout("tcp", h.mqttAddr, time.Second); err == nil {
			c.Close()
			t.Error("embedded broker still accepting after run returned")
		}
	}
	if _, err := h.st.ListStores(context.Background()); err == nil {
		t.Error("store still open after run returned")
	}
}

// TestStartStop: the hub serves health, metrics and the embedded broker; cancelling stops every
// part and closes the store, with a nil error.
func TestStartStop(t *testing.T) {
	cfg := testConfig(t)
	cfg.HTTP.MetricsListen = "127.0.0.1:0"
	s := startHub(t, cfg, nil)
	h := s.h
	eventually(t, 10*time.Second, "healthz", func() error { return healthz(h.httpAddr) })
	// /metrics: without authentication only on the loopback metrics listener.
	if code, body, err := get("http://" + h.metricsAddr + "/metrics"); err != nil || code != 200 || !strings.Contains(body, `lanebridge_build_info{component="hub"`) {
		t.Errorf("metrics listener: %d %v", code, err)
	}
	if code, _, err := get("http://" + h.httpAddr + "/metrics"); err != nil || code != 401 {
		t.Errorf("metrics on http.listen without a token: %d %v", code, err)
	}
	if !strings.Contains(s.logs.String(), "no users or API tokens yet") {
		t.Error("a hub nobody can log in to does not say so")
	}
	c, err := net.DialTimeout("tcp", h.mqttAddr, time.Second)
	if err != nil {
		t.Fatalf("embedded broker not listening on %s: %v", h.mqttAddr, err)
	}
	c.Close()
	s.stop()
	if err := s.wait(t); err != nil {
		t.Fatalf("run = %v after cancel, want nil", err)
	}
	checkStopped(t, h)
}

// TestFailingPart: a part that fails stops the hub with an error naming it; the other parts stop
// and the store is closed.
func TestFailingPart(t *testing.T) {
	boom := errors.New("connector exploded")
	s := startHub(t, testConfig(t), func(h *hub) {
		h.add("posting", func(ctx context.Context) error {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(300 * time.Millisecond):
				return boom
			}
		})
	})
	eventually(t, 10*time.Second, "healthz", func() error { return healthz(s.h.httpAddr) })
	err := s.wait(t)
	if err == nil || !strings.HasPrefix(err.Error(), "posting: ") || !errors.Is(err, boom) {
		t.Fatalf("run = %v, want posting: %v", err, boom)
	}
	if !strings.Contains(s.logs.String(), "part=posting") {
		t.Errorf("failure not logged with its part:\n%s", s.logs)
	}
	checkStopped(t, s.h)
}

// TestNoERPPostsNothing: with erp.kind none, records are stored and nothing is enqueued.
func TestNoERPPostsNothing(t *testing.T) {
	s := startHub(t, testConfig(t), nil)
	ctx := context.Background()
	if err := s.h.st.AddStore(ctx, "S001", "x"); err != nil {
		t.Fatal(err)
	}
	b := testBatch("S001", 1, 3)
	if _, err := s.h.st.ApplyBatch(ctx, "S001", b.Epoch, b.Records); err != nil {
		t.Fatal(err)
	}
	ps, err := s.h.st.Postings(ctx, store.PostingFilter{})
	if err != nil || len(ps) != 0 {
		t.Fatalf("postings = %v, %v; want none with erp.kind none", ps, err)
	}
}

// TestMQTTAddressInUse: serve exits non-zero and says what to do when the MQTT port is taken.
func TestMQTTAddressInUse(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	var stdout, stderr syncBuffer
	code := Main([]string{"serve", "--data", t.TempDir(), "--mqtt", ln.Addr().String(), "--http", "127.0.0.1:0"}, &stdout, &stderr)
	if code == 0 || !strings.Contains(stderr.String(), "another MQTT broker may be running there") {
		t.Fatalf("exit %d, stderr:\n%s", code, stderr.String())
	}
}

func testBatch(storeID string, from, to uint64) protocol.Batch {
	b := protocol.Batch{V: protocol.Version, Store: storeID, Epoch: "e1"}
	for s := from; s <= to; s++ {
		r := protocol.Record{Kind: protocol.KindSale, Store: storeID, Terminal: "T1", Receipt: fmt.Sprint(s), BusinessDate: "2026-11-26",
			Total: 100, Tenders: []protocol.Tender{{Type: "cash", Amount: 100}}, Epoch: "e1", Seq: s,
			CapturedAt: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
		r.Seal()
		b.Records = append(b.Records, r)
	}
	return b
}

// TestExternalBroker: with broker.url the hub subscribes in its shared group on a real
// Mosquitto locked down with the exported files, applies a batch an agent publishes there as
// its store and acks it; cancel stops it cleanly.
func TestExternalBroker(t *testing.T) {
	if testing.Short() {
		t.Skip("needs mosquitto")
	}
	f := newExportFixture(t)
	brokerURL := mosquitto.Start(t, t.TempDir(), f.out).URL
	suffix := fmt.Sprintf("%08x", rand.Uint32())
	cfg := testConfig(t)
	cfg.DataDir = f.data
	cfg.Broker.URL, cfg.Broker.Username, cfg.Broker.PasswordFile = brokerURL, "hub", filepath.Join(f.dir, "hub.pw")
	cfg.Broker.SharedGroup = "lbtest-" + suffix
	cfg.Broker.ClientID = "lbtest-hub-" + suffix
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	const storeID = "A"
	s := startHub(t, cfg, nil)
	h := s.h
	eventually(t, 15*time.Second, "healthz (connected to the broker)", func() error { return healthz(h.httpAddr) })

	o := mqtt.NewClientOptions().AddBroker(brokerURL).SetClientID("lbtest-agent-" + suffix).SetUsername(storeID).SetPassword(f.pw[storeID])
	agent := mqtt.NewClient(o)
	if tok := agent.Connect(); !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("connect to %s: %v", brokerURL, tok.Error())
	}
	defer agent.Disconnect(100)
	acks := make(chan protocol.Ack, 16)
	tok := agent.Subscribe(protocol.AcksTopic(storeID), 1, func(_ mqtt.Client, m mqtt.Message) {
		if a, err := protocol.DecodeAck(m.Payload()); err == nil {
			acks <- *a
		}
	})
	if !tok.WaitTimeout(5*time.Second) || tok.Error() != nil {
		t.Fatalf("subscribe acks: %v", tok.Error())
	}
	payload, _ := json.Marshal(testBatch(storeID, 1, 5))
	// The hub subscribes just after connecting: publish until it acks.
	eventually(t, 15*time.Second, "ack of the batch", func() error {
		agent.Publish(protocol.RecordsTopic(storeID), 1, false, payload).WaitTimeout(time.Second)
		select {
		case a := <-acks:
			if a.AppliedThrough != 5 {
				return fmt.Errorf("ack through %d", a.AppliedThrough)
			}
			return nil
		case <-time.After(300 * time.Millisecond):
			return errors.New("no ack")
		}
	})
	s.stop()
	if err := s.wait(t); err != nil {
		t.Fatalf("run = %v after cancel, want nil", err)
	}
	checkStopped(t, h)
}
