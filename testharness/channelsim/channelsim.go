// Package channelsim holds SIMULATORS of two sales-channel APIs, for Lanebridge's channel
// connector tests: a Shopify-shaped Admin REST API (inventory levels) and GraphQL Admin API
// (inventorySetQuantities), and an Amazon-shaped Selling Partner Listings Items API and Feeds
// API (JSON_LISTINGS_FEED). They are not Shopify or Amazon: they reproduce the documented
// request and answer shapes, rate limits (Shopify's REST leaky bucket with 429, Retry-After and
// X-Shopify-Shop-Api-Call-Limit, its GraphQL cost bucket with THROTTLED; SP-API's per-operation
// token buckets with 429 and x-amzn-RateLimit-Limit) and error answers (userErrors, feed
// processing reports with per-message issues) that the connectors must handle, plus faults a test
// switches on (down, hung). Vendure, by contrast, runs for real (testharness/vendure).
package channelsim

import (
	"encoding/json"
	"net/http"
	"sync"
	"time"
)

// faults are the switches and the record shared by both simulators.
type faults struct {
	mu      sync.Mutex
	down    bool
	hang    bool
	release chan struct{}    // closed when hanging is switched off
	sets    map[string]int   // successful stock sets per SKU
	shown   map[string]int64 // what the channel shows per SKU
	calls   int              // every request that reached the API
	limited int              // requests answered 429
	refused int              // requests refused while down
	until   time.Time        // the last 429's retry hint runs until then
	early   int              // requests that came before that hint ran out
}

// limit records a 429 answered with a retry hint of wait; the caller holds mu.
func (f *faults) limit(wait time.Duration) {
	f.limited++
	f.until = time.Now().Add(wait)
}

// arrive counts a request and whether it ignored the last retry hint; the caller holds mu.
// A 50 ms grace absorbs clock and scheduling noise.
func (f *faults) arrive() {
	f.calls++
	if time.Now().Add(50 * time.Millisecond).Before(f.until) {
		f.early++
	}
}

// Early returns how many requests came before the last 429's retry hint had run out.
func (f *faults) Early() int { f.mu.Lock(); defer f.mu.Unlock(); return f.early }

// Refused returns how many requests were refused while down.
func (f *faults) Refused() int { f.mu.Lock(); defer f.mu.Unlock(); return f.refused }

func newFaults() faults { return faults{sets: map[string]int{}, shown: map[string]int64{}} }

// SetDown makes every request answer 503 (down) or work again.
func (f *faults) SetDown(down bool) { f.mu.Lock(); f.down = down; f.mu.Unlock() }

// SetHang makes every request hang until its client gives up or hanging is switched off.
func (f *faults) SetHang(hang bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if hang && !f.hang {
		f.release = make(chan struct{})
	}
	if !hang && f.hang {
		close(f.release)
	}
	f.hang = hang
}

// Shown returns the stock the channel shows for sku and whether it was ever set.
func (f *faults) Shown(sku string) (int64, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	v, ok := f.shown[sku]
	return v, ok
}

// Sets returns how many times sku's stock was set successfully.
func (f *faults) Sets(sku string) int { f.mu.Lock(); defer f.mu.Unlock(); return f.sets[sku] }

// Calls returns how many requests reached the API and how many of them were answered 429.
func (f *faults) Calls() (calls, limited int) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls, f.limited
}

// gate applies down and hang; it reports whether the request may go on.
func (f *faults) gate(w http.ResponseWriter, r *http.Request) bool {
	f.mu.Lock()
	down, hang, release := f.down, f.hang, f.release
	f.mu.Unlock()
	if hang {
		select {
		case <-r.Context().Done():
		case <-release:
			http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		case <-time.After(time.Minute):
		}
		return false
	}
	if down {
		f.mu.Lock()
		f.refused++
		f.mu.Unlock()
		http.Error(w, "service unavailable", http.StatusServiceUnavailable)
		return false
	}
	return true
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

// Inspectable is a simulator whose state a test can read.
type Inspectable interface {
	http.Handler
	Shown(sku string) (int64, bool)
	Sets(sku string) int
	Calls() (calls, limited int)
}

// WithInspect serves sim and, under /_sim/shown?sku=S, what it shows for S as JSON
// ({"sku","shown","listed","sets"}): for end-to-end tests that run a simulator as a process.
func WithInspect(sim Inspectable) http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /_sim/shown", func(w http.ResponseWriter, r *http.Request) {
		sku := r.URL.Query().Get("sku")
		n, ok := sim.Shown(sku)
		writeJSON(w, http.StatusOK, map[string]any{"sku": sku, "shown": n, "listed": ok, "sets": sim.Sets(sku)})
	})
	mux.Handle("/", sim)
	return mux
}
