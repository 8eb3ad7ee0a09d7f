package channelsim

import (
	"encoding/json"
	"math"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// The GraphQL Admin API part of the Shopify simulator:
//
//	POST /admin/api/{version}/graphql.json
//	{"query":"mutation … inventorySetQuantities(input: $input) …","variables":{"input":{
//	  "name":"available","reason":"correction","ignoreCompareQuantity":true,
//	  "quantities":[{"inventoryItemId":"gid://shopify/InventoryItem/1001","locationId":"gid://shopify/Location/7001","quantity":4}]}}}
//
// As Shopify documents (shopify.dev/docs/api/admin-graphql/latest/mutations/inventorySetQuantities,
// …/input-objects/InventoryQuantityInput, …/enums/InventorySetQuantitiesUserErrorCode; the
// GraphQL Admin API rate limits page, help.shopify.com/en/api/graphql-admin-api/graphql-admin-api-rate-limits):
// the limit is a leaky bucket of cost points, 1,000 points restored at 50 a second; a request
// whose requested cost exceeds what is available is answered HTTP 200 with
// errors[0].extensions.code THROTTLED; every answer carries extensions.cost.throttleStatus
// {maximumAvailable, currentlyAvailable, restoreRate}. Per-quantity problems are userErrors
// with a code and field ["input","quantities","<index>",…].
//
// Simulator assumptions (not documented figures): the mutation costs MutationCost points
// (default 10, Shopify's usual mutation cost) whatever the number of quantities; the
// mutation is all-or-nothing (any userError: nothing is set); at most MaxQuantities (default
// 250) quantities a call. Only this one mutation is understood; the query text is not parsed.
type gqlBucket struct {
	Maximum      float64 // default 1000
	Restore      float64 // per second, default 50
	MutationCost float64 // default 10
	available    float64
	last         time.Time
	calls        int // GraphQL requests that reached the API
	throttled    int
}

func newGQLBucket() gqlBucket {
	return gqlBucket{Maximum: 1000, Restore: 50, MutationCost: 10, available: 1000}
}

// MaxQuantities is the most quantities one simulated inventorySetQuantities accepts.
const MaxQuantities = 250

// SetGraphQLLimit sets the cost bucket: maximum points (also the current level), restore rate
// a second and the cost of one mutation.
func (s *Shopify) SetGraphQLLimit(maximum, restore, cost float64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.gql.Maximum, s.gql.Restore, s.gql.MutationCost, s.gql.available = maximum, restore, cost, maximum
}

// GraphQLCalls returns how many GraphQL requests reached the API and how many were THROTTLED.
func (s *Shopify) GraphQLCalls() (calls, throttled int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gql.calls, s.gql.throttled
}

type gqlError struct {
	Message    string            `json:"message"`
	Extensions map[string]string `json:"extensions,omitempty"`
}

type userError struct {
	Code    string   `json:"code"`
	Field   []string `json:"field"`
	Message string   `json:"message"`
}

func parseGID(kind, g string) (int64, bool) {
	n, err := strconv.ParseInt(strings.TrimPrefix(g, "gid://shopify/"+kind+"/"), 10, 64)
	return n, err == nil && strings.HasPrefix(g, "gid://shopify/"+kind+"/")
}

func (s *Shopify) graphql(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Query     string `json:"query"`
		Variables struct {
			Input struct {
				Name                  string `json:"name"`
				Reason                string `json:"reason"`
				IgnoreCompareQuantity bool   `json:"ignoreCompareQuantity"`
				Quantities            []struct {
					InventoryItemID string `json:"inventoryItemId"`
					LocationID      string `json:"locationId"`
					Quantity        *int64 `json:"quantity"`
					CompareQuantity *int64 `json:"compareQuantity"`
				} `json:"quantities"`
			} `json:"input"`
		} `json:"variables"`
	}
	err := json.NewDecoder(r.Body).Decode(&in)
	s.mu.Lock()
	defer s.mu.Unlock()
	now := time.Now()
	b := &s.gql
	if !b.last.IsZero() {
		b.available = math.Min(b.Maximum, b.available+now.Sub(b.last).Seconds()*b.Restore)
	}
	b.last = now
	b.calls++
	s.arrive()
	cost := func(actual any) map[string]any {
		return map[string]any{"cost": map[string]any{"requestedQueryCost": b.MutationCost, "actualQueryCost": actual,
			"throttleStatus": map[string]any{"maximumAvailable": b.Maximum, "currentlyAvailable": math.Floor(b.available), "restoreRate": b.Restore}}}
	}
	if b.available < b.MutationCost {
		b.throttled++
		s.limit(time.Duration((b.MutationCost - b.available) / b.Restore * float64(time.Second)))
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlError{{Message: "Throttled",
			Extensions: map[string]string{"code": "THROTTLED", "documentation": "https://shopify.dev/api/usage/rate-limits"}}}, "extensions": cost(nil)})
		return
	}
	b.available -= b.MutationCost
	ip := in.Variables.Input
	if err != nil || !strings.Contains(in.Query, "inventorySetQuantities") || len(ip.Quantities) > MaxQuantities {
		msg := "Parse error or unsupported operation: the simulator understands only inventorySetQuantities"
		if len(ip.Quantities) > MaxQuantities {
			msg = "The input array size of " + strconv.Itoa(len(ip.Quantities)) + " is greater than the maximum allowed of " + strconv.Itoa(MaxQuantities) + "."
		}
		writeJSON(w, http.StatusOK, map[string]any{"errors": []gqlError{{Message: msg}}, "extensions": cost(b.MutationCost)})
		return
	}
	var errs []userError
	if ip.Name != "available" && ip.Name != "on_hand" {
		errs = append(errs, userError{"INVALID_NAME", []string{"input", "name"}, "The quantity name must be either 'available' or 'on_hand'."})
	}
	if ip.Reason == "" {
		errs = append(errs, userError{"INVALID_REASON", []string{"input", "reason"}, "The specified reason is invalid."})
	}
	type set struct {
		sku string
		n   int64
	}
	var sets []set
	seen := map[int64]bool{}
	for i, q := range ip.Quantities {
		f := func(leaf string) []string { return []string{"input", "quantities", strconv.Itoa(i), leaf} }
		item, okItem := parseGID("InventoryItem", q.InventoryItemID)
		loc, okLoc := parseGID("Location", q.LocationID)
		sku := ""
		for k, id := range s.items {
			if id == item {
				sku = k
			}
		}
		switch {
		case !okItem || sku == "":
			errs = append(errs, userError{"INVALID_INVENTORY_ITEM", f("inventoryItemId"), "The specified inventory item could not be found."})
		case !okLoc || !slices.Contains(s.Locations, loc):
			errs = append(errs, userError{"INVALID_LOCATION", f("locationId"), "The specified location could not be found."})
		case s.unstocked[item]:
			errs = append(errs, userError{"ITEM_NOT_STOCKED_AT_LOCATION", f("inventoryItemId"), "The specified inventory item is not stocked at the location."})
		case q.Quantity == nil || *q.Quantity < 0:
			errs = append(errs, userError{"INVALID_QUANTITY_NEGATIVE", f("quantity"), "The quantity can't be negative."})
		case seen[item]:
			errs = append(errs, userError{"NO_DUPLICATE_INVENTORY_ITEM_ID_GROUP_ID_PAIR", f("inventoryItemId"), "The combination of inventoryItemId and locationId must be unique."})
		case !ip.IgnoreCompareQuantity && q.CompareQuantity == nil:
			errs = append(errs, userError{"COMPARE_QUANTITY_REQUIRED", f("compareQuantity"), "The compareQuantity argument must be given to each quantity or ignored using ignoreCompareQuantity."})
		default:
			seen[item] = true
			sets = append(sets, set{sku, *q.Quantity})
		}
	}
	var group any
	if len(errs) == 0 { // all or nothing (a simulator assumption, see above)
		for _, st := range sets {
			s.shown[st.sku] = st.n
			s.sets[st.sku]++
		}
		group = map[string]any{"createdAt": now.UTC().Format(time.RFC3339), "reason": ip.Reason}
	}
	if errs == nil {
		errs = []userError{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"inventorySetQuantities": map[string]any{
		"inventoryAdjustmentGroup": group, "userErrors": errs}}, "extensions": cost(b.MutationCost)})
}
