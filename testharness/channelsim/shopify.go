package channelsim

import (
	"encoding/json"
	"fmt"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Shopify simulates the part of Shopify's Admin REST API a stock connector uses:
//
//	GET  /admin/api/{version}/variants.json?limit=N&since_id=ID  variants (id, sku, inventory_item_id)
//	POST /admin/api/{version}/inventory_levels/set.json          {"location_id","inventory_item_id","available"}
//
// Every request needs X-Shopify-Access-Token (401 otherwise) and passes the leaky bucket:
// Capacity requests, leaking LeakPerSecond; a full bucket answers 429 with Retry-After, and every
// answer carries X-Shopify-Shop-Api-Call-Limit: used/capacity. An unknown inventory item answers
// 404, an unknown location or a negative figure 422, as Shopify documents.
type Shopify struct {
	faults
	Token     string
	Locations []int64
	Capacity  float64          // default 40 (Shopify's standard plan)
	Leak      float64          // per second, default 2
	items     map[string]int64 // sku → inventory item id
	bySKU     []string
	unstocked map[int64]bool // items not stocked at any location (ITEM_NOT_STOCKED_AT_LOCATION)
	level     float64
	last      time.Time
	gql       gqlBucket
}

// NewShopify simulates a shop with the given SKUs (inventory item ids 1001, 1002, … in order)
// stocked at location 7001.
func NewShopify(token string, skus ...string) *Shopify {
	s := &Shopify{faults: newFaults(), Token: token, Locations: []int64{7001}, Capacity: 40, Leak: 2, items: map[string]int64{},
		unstocked: map[int64]bool{}, gql: newGQLBucket()}
	for i, sku := range skus {
		s.items[sku] = int64(1001 + i)
		s.bySKU = append(s.bySKU, sku)
	}
	return s
}

// InventoryItem returns the simulated inventory item id of sku.
func (s *Shopify) InventoryItem(sku string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.items[sku]
}

// Unstock makes sku's inventory item not stocked at any location: REST answers 422 and
// GraphQL ITEM_NOT_STOCKED_AT_LOCATION for it (a SKU the shop lists but cannot take stock for).
func (s *Shopify) Unstock(sku string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.unstocked[s.items[sku]] = true
}

// admit runs the leaky bucket for one request; it returns the Retry-After when full.
func (s *Shopify) admit(w http.ResponseWriter) (retry float64, ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	if !s.last.IsZero() {
		s.level = math.Max(0, s.level-now.Sub(s.last).Seconds()*s.Leak)
	}
	s.last = now
	s.arrive()
	if s.level+1 > s.Capacity {
		wait := math.Max(1/s.Leak, (s.level+1-s.Capacity)/s.Leak)
		s.limit(time.Duration(wait * float64(time.Second)))
		w.Header().Set("X-Shopify-Shop-Api-Call-Limit", fmt.Sprintf("%d/%d", int(math.Ceil(s.level)), int(s.Capacity)))
		return wait, false
	}
	s.level++
	w.Header().Set("X-Shopify-Shop-Api-Call-Limit", fmt.Sprintf("%d/%d", int(math.Ceil(s.level)), int(s.Capacity)))
	return 0, true
}

func (s *Shopify) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !s.gate(w, r) {
		return
	}
	if r.Header.Get("X-Shopify-Access-Token") != s.Token {
		writeJSON(w, http.StatusUnauthorized, map[string]string{"errors": "[API] Invalid API key or access token (unrecognized login or wrong password)"})
		return
	}
	rest, ok := strings.CutPrefix(r.URL.Path, "/admin/api/")
	_, res, _ := strings.Cut(rest, "/")
	if ok && r.Method == http.MethodPost && res == "graphql.json" { // its own, cost-based limit
		s.graphql(w, r)
		return
	}
	if retry, ok := s.admit(w); !ok {
		w.Header().Set("Retry-After", strconv.FormatFloat(retry, 'f', 1, 64))
		writeJSON(w, http.StatusTooManyRequests, map[string]string{"errors": "Exceeded 2 calls per second for api client. Reduce request rates to resume uninterrupted service."})
		return
	}
	switch {
	case ok && r.Method == http.MethodGet && res == "variants.json":
		s.variants(w, r)
	case ok && r.Method == http.MethodPost && res == "inventory_levels/set.json":
		s.set(w, r)
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"errors": "Not Found"})
	}
}

func (s *Shopify) variants(w http.ResponseWriter, r *http.Request) {
	limit, _ := strconv.Atoi(r.URL.Query().Get("limit"))
	if limit <= 0 || limit > 250 {
		limit = 50
	}
	since, _ := strconv.ParseInt(r.URL.Query().Get("since_id"), 10, 64)
	type variant struct {
		ID              int64  `json:"id"`
		SKU             string `json:"sku"`
		InventoryItemID int64  `json:"inventory_item_id"`
	}
	s.mu.Lock()
	out := []variant{}
	for _, sku := range s.bySKU {
		id := s.items[sku]
		if id+1000 > since && len(out) < limit { // variant id = item id + 1000
			out = append(out, variant{id + 1000, sku, id})
		}
	}
	s.mu.Unlock()
	slices.SortFunc(out, func(a, b variant) int { return int(a.ID - b.ID) })
	writeJSON(w, http.StatusOK, map[string]any{"variants": out})
}

func (s *Shopify) set(w http.ResponseWriter, r *http.Request) {
	var in struct {
		LocationID      int64  `json:"location_id"`
		InventoryItemID int64  `json:"inventory_item_id"`
		Available       *int64 `json:"available"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Available == nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": map[string]string{"available": "Required parameter missing or invalid"}})
		return
	}
	code, answer := s.apply(in.LocationID, in.InventoryItemID, *in.Available)
	writeJSON(w, code, answer)
}

// apply sets one level and returns the HTTP answer.
func (s *Shopify) apply(location, item, available int64) (int, any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	sku := ""
	for k, id := range s.items {
		if id == item {
			sku = k
		}
	}
	switch {
	case sku == "":
		return http.StatusNotFound, map[string]string{"errors": "Not Found"}
	case !slices.Contains(s.Locations, location) || s.unstocked[item]:
		return http.StatusUnprocessableEntity, map[string][]string{"errors": {"Inventory item is not stocked at the location"}}
	case available < 0:
		return http.StatusUnprocessableEntity, map[string][]string{"errors": {"Available must be greater than or equal to 0"}}
	}
	s.shown[sku] = available
	s.sets[sku]++
	return http.StatusOK, map[string]any{"inventory_level": map[string]any{"inventory_item_id": item,
		"location_id": location, "available": available, "updated_at": time.Now().UTC().Format(time.RFC3339)}}
}
