package channelsim

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// Amazon simulates the Selling Partner API operation a stock connector uses:
//
//	PATCH /listings/2021-08-01/items/{sellerId}/{sku}?marketplaceIds=M
//	{"productType":"PRODUCT","patches":[{"op":"replace","path":"/attributes/fulfillment_availability",
//	  "value":[{"fulfillment_channel_code":"DEFAULT","quantity":N}]}]}
//
// Every request needs x-amz-access-token (403 Unauthorized otherwise) and passes a token bucket of
// Rate requests a second with Burst (patchListingsItem's documented default: 5 and 10); an empty
// bucket answers 429 QuotaExceeded. Every answer carries x-amzn-RateLimit-Limit (no Retry-After,
// as on SP-API). An unknown SKU is answered 200 with status INVALID and an ERROR issue, a bad
// patch 400 InvalidInput, as the Listings Items API documents.
type Amazon struct {
	faults
	Token       string
	SellerID    string
	Marketplace string
	Rate        float64
	Burst       float64
	known       map[string]bool
	tokens      float64
	last        time.Time
	submission  int
	fs          feedState
}

// NewAmazon simulates a seller account with listings for skus.
func NewAmazon(token, seller, marketplace string, skus ...string) *Amazon {
	a := &Amazon{faults: newFaults(), Token: token, SellerID: seller, Marketplace: marketplace, Rate: 5, Burst: 10, known: map[string]bool{}, fs: newFeedState()}
	a.tokens = a.Burst
	for _, sku := range skus {
		a.known[sku] = true
	}
	return a
}

func (a *Amazon) admit() bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := time.Now()
	if !a.last.IsZero() {
		a.tokens = math.Min(a.Burst, a.tokens+now.Sub(a.last).Seconds()*a.Rate)
	}
	a.last = now
	a.arrive()
	if a.tokens < 1 {
		a.limit(time.Duration(float64(time.Second) / a.Rate)) // x-amzn-RateLimit-Limit: one request's worth
		return false
	}
	a.tokens--
	return true
}

// stockPatches are a listing's patches; valid when they are the one stock patch a connector sends.
type stockPatches []struct {
	Op    string `json:"op"`
	Path  string `json:"path"`
	Value []struct {
		Channel  string `json:"fulfillment_channel_code"`
		Quantity *int64 `json:"quantity"`
	} `json:"value"`
}

func (p stockPatches) valid() bool {
	return len(p) == 1 && p[0].Path == "/attributes/fulfillment_availability" && (p[0].Op == "replace" || p[0].Op == "merge") &&
		len(p[0].Value) == 1 && p[0].Value[0].Quantity != nil && *p[0].Value[0].Quantity >= 0
}

type spError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Details string `json:"details,omitempty"`
}

func spErrors(code, msg string) map[string][]spError {
	return map[string][]spError{"errors": {{Code: code, Message: msg}}}
}

func (a *Amazon) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !a.gate(w, r) {
		return
	}
	if strings.HasPrefix(r.URL.Path, docPrefix) {
		a.feedDocument(w, r)
		return
	}
	w.Header().Set("x-amzn-RequestId", fmt.Sprintf("sim-%d", time.Now().UnixNano()))
	if r.Header.Get("x-amz-access-token") != a.Token {
		writeJSON(w, http.StatusForbidden, spErrors("Unauthorized", "Access to requested resource is denied."))
		return
	}
	if strings.HasPrefix(r.URL.Path, "/feeds/2021-06-30/") {
		a.feeds(w, r)
		return
	}
	w.Header().Set("x-amzn-RateLimit-Limit", strconv.FormatFloat(a.Rate, 'f', 1, 64))
	if !a.admit() {
		writeJSON(w, http.StatusTooManyRequests, spErrors("QuotaExceeded", "You exceeded your quota for the requested resource."))
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/listings/2021-08-01/items/")
	seller, sku, _ := strings.Cut(rest, "/")
	if !ok || r.Method != http.MethodPatch || sku == "" {
		writeJSON(w, http.StatusNotFound, spErrors("NotFound", "Resource not found."))
		return
	}
	if seller != a.SellerID || r.URL.Query().Get("marketplaceIds") != a.Marketplace {
		writeJSON(w, http.StatusBadRequest, spErrors("InvalidInput", "Invalid sellerId or marketplaceIds."))
		return
	}
	var in struct {
		ProductType string       `json:"productType"`
		Patches     stockPatches `json:"patches"`
	}
	err := json.NewDecoder(r.Body).Decode(&in)
	if err != nil || in.ProductType == "" || !in.Patches.valid() {
		writeJSON(w, http.StatusBadRequest, spErrors("InvalidInput", "Request has missing or invalid parameters and cannot be parsed."))
		return
	}
	a.mu.Lock()
	a.submission++
	sub := fmt.Sprintf("sub-%d", a.submission)
	known := a.known[sku]
	if known {
		a.shown[sku] = *in.Patches[0].Value[0].Quantity
		a.sets[sku]++
	}
	a.mu.Unlock()
	if !known {
		writeJSON(w, http.StatusOK, map[string]any{"sku": sku, "status": "INVALID", "submissionId": sub,
			"issues": []map[string]any{{"code": "8541", "message": "SKU " + sku + " does not match any listing.", "severity": "ERROR"}}})
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"sku": sku, "status": "ACCEPTED", "submissionId": sub, "issues": []any{}})
}
