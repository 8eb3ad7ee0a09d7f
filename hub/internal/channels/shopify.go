package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"
)

// ShopifyOptions configure a Shopify connector (Admin REST API, inventory levels).
type ShopifyOptions struct {
	Channel    string
	URL        string // https://SHOP.myshopify.com
	Token      string // Admin API access token (X-Shopify-Access-Token)
	APIVersion string // default 2024-01
	LocationID int64  // the location whose available quantity is set
	API        string // graphql (default: inventorySetQuantities, many SKUs a call) or rest
	Batch      int    // graphql: quantities a call, default 100, at most 250
	Rate       float64
	Burst      int
}

// Shopify sets stock through POST /admin/api/{version}/inventory_levels/set.json, one call per
// SKU; SKUs are mapped to inventory items by listing variants (GET variants.json). Shopify's
// leaky bucket (40 requests, 2 a second on the standard plan) answers 429 with Retry-After; the
// connector also stops a batch when X-Shopify-Shop-Api-Call-Limit shows the bucket nearly full.
type Shopify struct {
	o    ShopifyOptions
	http *http.Client

	mu     sync.Mutex
	items  map[string]int64 // sku → inventory item id
	loaded time.Time
}

// NewShopify makes a Shopify connector.
func NewShopify(o ShopifyOptions) (*Shopify, error) {
	if o.URL == "" || o.Token == "" || o.LocationID == 0 {
		return nil, errors.New("shopify connector needs url, a token and location_id")
	}
	if o.APIVersion == "" {
		o.APIVersion = "2024-01"
	}
	switch o.API {
	case "", "graphql":
		o.API = "graphql"
		if o.Batch <= 0 {
			o.Batch = 100
		}
		if o.Batch > 250 {
			return nil, fmt.Errorf("shopify connector: batch %d: use 1..250 quantities a call", o.Batch)
		}
		if o.Rate <= 0 { // 90 % of 50 points/s over a mutation's 10 points, and of 1,000 points
			o.Rate = 4.5
		}
		if o.Burst <= 0 {
			o.Burst = 90
		}
	case "rest":
		if o.Rate <= 0 { // 90 % of the standard plan's 2/s and bucket of 40: headroom for jitter
			o.Rate = 1.8
		}
		if o.Burst <= 0 {
			o.Burst = 36
		}
	default:
		return nil, fmt.Errorf("shopify connector: api %q: use graphql or rest", o.API)
	}
	o.URL = strings.TrimRight(o.URL, "/")
	return &Shopify{o: o, http: newHTTPClient()}, nil
}

func (s *Shopify) Name() string { return s.o.Channel }

func (s *Shopify) Limits() Limits {
	if s.o.API == "graphql" { // one call, one mutation's cost, whatever the number of SKUs
		return Limits{Rate: s.o.Rate, Burst: s.o.Burst, MaxBatch: s.o.Batch, CallsPerLevel: 0}
	}
	return Limits{Rate: s.o.Rate, Burst: s.o.Burst, MaxBatch: 50, CallsPerLevel: 1}
}

func (s *Shopify) api(path string) string {
	return s.o.URL + "/admin/api/" + s.o.APIVersion + "/" + path
}

func (s *Shopify) headers() map[string]string {
	return map[string]string{"X-Shopify-Access-Token": s.o.Token}
}

// status maps an answer that is not 200 to an error.
func (s *Shopify) status(a httpAnswer) error {
	switch {
	case a.status == http.StatusTooManyRequests:
		return &RateLimitError{RetryAfter: retryAfter(a.header), Detail: a.excerpt()}
	case a.status == http.StatusUnauthorized || a.status == http.StatusForbidden:
		return fmt.Errorf("shopify refused the access token (check the connector's token_file): %s", a.excerpt())
	case a.status == http.StatusNotFound || a.status == http.StatusUnprocessableEntity || a.status == http.StatusBadRequest:
		return rejected("%s", a.excerpt())
	default:
		return fmt.Errorf("shopify: %s", a.excerpt())
	}
}

// loadItems lists every variant's SKU and inventory item (paged by since_id).
func (s *Shopify) loadItems(ctx context.Context) error {
	items := map[string]int64{}
	var since int64
	for {
		a, err := call(ctx, s.http, http.MethodGet, s.api("variants.json?limit=250&fields=id,sku,inventory_item_id&since_id="+strconv.FormatInt(since, 10)), s.headers(), nil)
		if err != nil {
			return fmt.Errorf("shopify: list variants: %w", err)
		}
		if a.status != http.StatusOK {
			return fmt.Errorf("shopify: list variants: %w", s.status(a))
		}
		var page struct {
			Variants []struct {
				ID              int64  `json:"id"`
				SKU             string `json:"sku"`
				InventoryItemID int64  `json:"inventory_item_id"`
			} `json:"variants"`
		}
		if err := json.Unmarshal(a.body, &page); err != nil {
			return fmt.Errorf("shopify: list variants: %w", err)
		}
		for _, v := range page.Variants {
			if v.SKU != "" {
				items[v.SKU] = v.InventoryItemID
			}
			since = max(since, v.ID)
		}
		if len(page.Variants) < 250 {
			break
		}
	}
	s.mu.Lock()
	s.items, s.loaded = items, time.Now()
	s.mu.Unlock()
	return nil
}

// item returns sku's inventory item, listing variants when it is not known (at most once a minute).
func (s *Shopify) item(ctx context.Context, sku string) (int64, error) {
	s.mu.Lock()
	id, ok := s.items[sku]
	stale := time.Since(s.loaded) > time.Minute
	s.mu.Unlock()
	if ok || !stale {
		return id, nil
	}
	if err := s.loadItems(ctx); err != nil {
		return 0, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.items[sku], nil
}

func (s *Shopify) SetStock(ctx context.Context, levels []Level) ([]Result, error) {
	if s.o.API == "graphql" {
		return s.setGraphQL(ctx, levels)
	}
	out := make([]Result, len(levels))
	for i, l := range levels {
		out[i].SKU = l.SKU
		if i > 0 && out[i-1].Err != nil {
			var rl *RateLimitError
			if errors.As(out[i-1].Err, &rl) { // the bucket is full: the rest waits too
				out[i].Err = rl
				continue
			}
		}
		units, item, err := s.resolve(ctx, l, &out[i])
		if err != nil {
			return nil, err
		}
		if out[i].Err != nil {
			continue
		}
		a, err := call(ctx, s.http, http.MethodPost, s.api("inventory_levels/set.json"), s.headers(),
			map[string]int64{"location_id": s.o.LocationID, "inventory_item_id": item, "available": units})
		if err != nil {
			if i == 0 {
				return nil, fmt.Errorf("shopify: set inventory level: %w", err)
			}
			out[i].Err = err
			continue
		}
		if a.status != http.StatusOK {
			out[i].Err = s.status(a)
			if a.status == http.StatusUnauthorized || a.status == http.StatusForbidden {
				return nil, out[i].Err
			}
			continue
		}
		out[i].Shown = strconv.FormatInt(units, 10)
		if used, capacity, ok := callLimit(a.header.Get("X-Shopify-Shop-Api-Call-Limit")); ok && used >= capacity-1 && i+1 < len(levels) {
			out[i+1].SKU = levels[i+1].SKU
			out[i+1].Err = &RateLimitError{RetryAfter: time.Duration(float64(time.Second) / s.o.Rate), Detail: "X-Shopify-Shop-Api-Call-Limit " + a.header.Get("X-Shopify-Shop-Api-Call-Limit")}
			for j := i + 2; j < len(levels); j++ {
				out[j] = Result{SKU: levels[j].SKU, Err: out[i+1].Err}
			}
			return out, nil
		}
	}
	return out, nil
}

// resolve returns l's whole units and inventory item; a level the shop cannot take is
// rejected in res; an error is the whole call's (the variant listing failed).
func (s *Shopify) resolve(ctx context.Context, l Level, res *Result) (units, item int64, err error) {
	units, uerr := Units(l.Available)
	if uerr != nil {
		res.Err = rejected("%v", uerr)
		return 0, 0, nil
	}
	item, err = s.item(ctx, l.SKU)
	if err == nil && item == 0 {
		res.Err = rejected("no Shopify variant has SKU %q", l.SKU)
	}
	return units, item, err
}

// callLimit parses X-Shopify-Shop-Api-Call-Limit ("32/40").
func callLimit(h string) (used, capacity int, ok bool) {
	u, c, found := strings.Cut(h, "/")
	a, err1 := strconv.Atoi(u)
	b, err2 := strconv.Atoi(c)
	return a, b, found && err1 == nil && err2 == nil && b > 0
}
