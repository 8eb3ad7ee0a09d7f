package availability

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

func TestVerifyRejectsTamperingAndReplay(t *testing.T) {
	secret := []byte("0123456789abcdef-shared")
	body := []byte(`{"version":7,"items":[{"sku":"X","available":"3"}]}`)
	at := time.Unix(1_800_000_000, 0)
	sig := Sign(secret, body, at)
	cases := []struct {
		name   string
		secret []byte
		body   []byte
		header string
		now    time.Time
		want   error
	}{
		{"genuine", secret, body, sig, at.Add(time.Minute), nil},
		{"tampered body", secret, []byte(`{"version":7,"items":[{"sku":"X","available":"30"}]}`), sig, at, ErrBadSignature},
		{"other secret", []byte("another-secret-of-16+"), body, sig, at, ErrBadSignature},
		{"timestamp changed", secret, body, "t=1800000999" + sig[len("t=1800000000"):], at, ErrBadSignature},
		{"replayed later", secret, body, sig, at.Add(time.Hour), ErrStale},
		{"no header", secret, body, "", at, ErrBadSignature},
	}
	for _, c := range cases {
		err := Verify(c.secret, c.body, c.header, c.now, 5*time.Minute)
		if !errors.Is(err, c.want) || (c.want == nil) != (err == nil) {
			t.Errorf("%s: Verify = %v, want %v", c.name, err, c.want)
		}
	}
}

// TestFeedDeliversSignedChangesWithRetry runs the feed against a real HTTP receiver that fails
// its first request: the feed retries, the receiver verifies each signature, and the cursor
// moves only after a success.
func TestFeedDeliversSignedChangesWithRetry(t *testing.T) {
	onEngines(t, func(t *testing.T, st *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		secret := "feed-secret-0123456789"
		var mu sync.Mutex
		var got []Result
		calls := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			if err := Verify([]byte(secret), body, r.Header.Get(SignatureHeader), time.Now(), time.Minute); err != nil {
				t.Errorf("receiver: %v", err)
				w.WriteHeader(http.StatusUnauthorized)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			calls++
			if calls == 1 {
				w.WriteHeader(http.StatusServiceUnavailable)
				return
			}
			var res Result
			if err := json.Unmarshal(body, &res); err != nil {
				t.Error(err)
			}
			got = append(got, res)
		}))
		defer srv.Close()
		file := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(file, []byte(secret+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.Webhooks = []WebhookConfig{{Name: "shop", URL: srv.URL, SecretFile: file, Channels: []string{"web"}}}
		e := fixture(t, st, cfg)
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		pull(t, st, map[string]map[string]string{"S1": {"X": "10"}})
		// Delivered, and the cursor moved past it (after the 2xx: the feed stores it then).
		deadline := time.Now().Add(20 * time.Second)
		for {
			mu.Lock()
			var last int64 = -1
			if len(got) > 0 {
				last = got[len(got)-1].Version
			}
			mu.Unlock()
			if cur, err := st.FeedCursor(context.Background(), "shop"); err == nil && last >= 0 && cur == last {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("no delivery with its cursor stored within 20s")
			}
			time.Sleep(20 * time.Millisecond)
		}
		cancel()
		<-done
		mu.Lock()
		defer mu.Unlock()
		if calls < 2 {
			t.Errorf("calls = %d, want a retry after the 503", calls)
		}
		var x *Item
		for i, it := range got[0].Items {
			if it.SKU == "X" {
				x = &got[0].Items[i]
			}
		}
		if x == nil || len(x.Channels) != 1 || x.Channels[0].Channel != "web" || x.Channels[0].Available != "7" {
			t.Fatalf("delivered %+v", got[0])
		}
	})
}

// TestStalledSubscriberNeverBlocksIngest: a subscriber that never answers holds one request of
// its feed; meanwhile records are applied, reservations made and figures read as usual (a
// blocking hook or feed would hang them until the test's timeout).
func TestStalledSubscriberNeverBlocksIngest(t *testing.T) {
	onEngines(t, func(t *testing.T, st *store.DB) {
		ctx, cancel := context.WithCancel(context.Background())
		release := make(chan struct{})
		var mu sync.Mutex
		inFlight := 0
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			inFlight++
			mu.Unlock()
			<-release
		}))
		defer srv.Close()
		defer close(release) // after cancel: lets the stalled handler return
		file := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(file, []byte("stalled-subscriber-secret"), 0o600); err != nil {
			t.Fatal(err)
		}
		cfg := testConfig()
		cfg.Webhooks = []WebhookConfig{{Name: "stalled", URL: srv.URL, SecretFile: file}}
		e := fixture(t, st, cfg)
		done := make(chan error, 1)
		go func() { done <- e.Run(ctx) }()
		pull(t, st, map[string]map[string]string{"S1": {"X": "100"}})
		for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(10 * time.Millisecond) {
			mu.Lock()
			n := inFlight
			mu.Unlock()
			if n > 0 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the feed never called the subscriber")
			}
		}
		var rec recorder
		for i := range 50 {
			rec.apply(t, st, "S1", protocol.KindSale, "X", "1")
			if i%10 == 0 {
				if _, _, err := e.Reserve(ctx, ReserveRequest{Channel: "web", OrderID: "R" + strconv.Itoa(i), Lines: []store.ReservationLine{{SKU: "X", Quantity: "1"}}}); err != nil {
					t.Fatal(err)
				}
			}
		}
		if got := figure(t, e, "X").Stores[0].Available; got != "44" { // 100 − 50 sold − 5 held − 1 safety
			t.Errorf("S1 X = %s, want 44", got)
		}
		mu.Lock()
		if inFlight != 1 {
			t.Errorf("%d requests in flight to the stalled subscriber, want 1", inFlight)
		}
		mu.Unlock()
		cancel()
		<-done
	})
}
