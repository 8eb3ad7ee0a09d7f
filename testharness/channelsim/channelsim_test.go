package channelsim

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// The simulators answer as the platforms document: status, rate-limit headers and error bodies.
func TestDocumentedAnswers(t *testing.T) {
	shop := NewShopify("tok", "A")
	shop.Capacity, shop.Leak = 2, 0.5
	amz := NewAmazon("tok", "S1", "M1", "A")
	amz.Burst, amz.tokens = 1, 1
	patch := `{"productType":"PRODUCT","patches":[{"op":"replace","path":"/attributes/fulfillment_availability","value":[{"fulfillment_channel_code":"DEFAULT","quantity":3}]}]}`
	type step struct {
		h                  http.Handler
		method, path, body string
		token              string
		header             string // the token header
		code               int
		wantHeader         string // a header that must be present
		wantBody           string
	}
	setPath := "/admin/api/2024-01/inventory_levels/set.json"
	steps := []step{
		{shop, "POST", setPath, `{"location_id":7001,"inventory_item_id":1001,"available":4}`, "bad", "X-Shopify-Access-Token", 401, "", "Invalid API key"},
		{shop, "POST", setPath, `{"location_id":7001,"inventory_item_id":1001,"available":4}`, "tok", "X-Shopify-Access-Token", 200, "X-Shopify-Shop-Api-Call-Limit", `"available":4`},
		{shop, "POST", setPath, `{"location_id":7001,"inventory_item_id":9999,"available":4}`, "tok", "X-Shopify-Access-Token", 404, "X-Shopify-Shop-Api-Call-Limit", "Not Found"},
		{shop, "POST", setPath, `{"location_id":7001,"inventory_item_id":1001,"available":4}`, "tok", "X-Shopify-Access-Token", 429, "Retry-After", "Exceeded 2 calls per second"},
		{amz, "PATCH", "/listings/2021-08-01/items/S1/A?marketplaceIds=M1", patch, "bad", "x-amz-access-token", 403, "", "Unauthorized"},
		{amz, "PATCH", "/listings/2021-08-01/items/S1/A?marketplaceIds=M1", patch, "tok", "x-amz-access-token", 200, "x-amzn-RateLimit-Limit", `"status":"ACCEPTED"`},
		{amz, "PATCH", "/listings/2021-08-01/items/S1/A?marketplaceIds=M1", patch, "tok", "x-amz-access-token", 429, "x-amzn-RateLimit-Limit", "QuotaExceeded"},
	}
	for i, s := range steps {
		req := httptest.NewRequest(s.method, s.path, strings.NewReader(s.body))
		req.Header.Set(s.header, s.token)
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, req)
		if w.Code != s.code || (s.wantHeader != "" && w.Header().Get(s.wantHeader) == "") || !strings.Contains(w.Body.String(), s.wantBody) {
			t.Errorf("step %d %s %s: %d %v %s; want %d, header %s, body with %q", i, s.method, s.path, w.Code, w.Header(), w.Body, s.code, s.wantHeader, s.wantBody)
		}
	}
	// An unknown SKU on Amazon is a 200 with status INVALID and an ERROR issue.
	amz2 := NewAmazon("tok", "S1", "M1")
	req := httptest.NewRequest("PATCH", "/listings/2021-08-01/items/S1/NOPE?marketplaceIds=M1", strings.NewReader(patch))
	req.Header.Set("x-amz-access-token", "tok")
	w := httptest.NewRecorder()
	amz2.ServeHTTP(w, req)
	if w.Code != 200 || !strings.Contains(w.Body.String(), `"status":"INVALID"`) || !strings.Contains(w.Body.String(), `"severity":"ERROR"`) {
		t.Errorf("unknown SKU: %d %s", w.Code, w.Body)
	}
	// GraphQL: over the cost bucket is HTTP 200 with THROTTLED and the throttle status.
	shop.SetGraphQLLimit(10, 1, 10)
	mut := `{"query":"mutation { inventorySetQuantities }","variables":{"input":{"name":"available","reason":"correction","ignoreCompareQuantity":true,"quantities":[{"inventoryItemId":"gid://shopify/InventoryItem/1001","locationId":"gid://shopify/Location/7001","quantity":2}]}}}`
	for i, want := range []string{`"userErrors":[]`, `"code":"THROTTLED"`} {
		req := httptest.NewRequest("POST", "/admin/api/2024-01/graphql.json", strings.NewReader(mut))
		req.Header.Set("X-Shopify-Access-Token", "tok")
		w := httptest.NewRecorder()
		shop.ServeHTTP(w, req)
		if w.Code != 200 || !strings.Contains(w.Body.String(), want) || !strings.Contains(w.Body.String(), `"maximumAvailable":10`) {
			t.Errorf("graphql %d: %d %s; want %s and the throttle status", i, w.Code, w.Body, want)
		}
	}
	// Feeds: createFeedDocument's burst spent is a 429 QuotaExceeded with its rate.
	amz3 := NewAmazon("tok", "S1", "M1")
	amz3.SetFeedLimit("createFeedDocument", 0.5, 1)
	for i, code := range []int{201, 429} {
		req := httptest.NewRequest("POST", "/feeds/2021-06-30/documents", strings.NewReader(`{"contentType":"application/json; charset=UTF-8"}`))
		req.Header.Set("x-amz-access-token", "tok")
		w := httptest.NewRecorder()
		amz3.ServeHTTP(w, req)
		if w.Code != code || w.Header().Get("x-amzn-RateLimit-Limit") != "0.5" {
			t.Errorf("createFeedDocument %d: %d %v %s; want %d with x-amzn-RateLimit-Limit 0.5", i, w.Code, w.Header(), w.Body, code)
		}
	}
}
