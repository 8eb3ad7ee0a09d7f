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
)

// VendureOptions configure a Vendure connector (Admin API, GraphQL).
type VendureOptions struct {
	Channel  string
	URL      string // e.g. http://127.0.0.1:3000 (the Admin API is URL/admin-api)
	Username string
	Password string
	// Location is the StockLocation id whose stockOnHand is set (the shop sells the sum over
	// its locations); "" makes the whole variant sell the figure: its first stock location holds
	// it and every other location only what is allocated there.
	Location string
	Rate     float64 // default 10 calls a second
	Burst    int
}

// Vendure sets stock through Vendure's Admin API: it logs in (bearer token, renewed when
// refused), finds the variants by SKU (productVariants, filter sku in) and sets stockOnHand with
// one updateProductVariants per batch. Vendure sells stockOnHand − stockAllocated; its
// allocations are channel orders the hub already holds as reservations, so the connector sets
// stockOnHand = available + stockAllocated and the shop sells exactly the hub's figure.
type Vendure struct {
	o    VendureOptions
	http *http.Client

	mu    sync.Mutex
	token string
}

// NewVendure makes a Vendure connector.
func NewVendure(o VendureOptions) (*Vendure, error) {
	if o.URL == "" || o.Username == "" || o.Password == "" {
		return nil, errors.New("vendure connector needs url, username and a password")
	}
	if o.Rate <= 0 {
		o.Rate = 10
	}
	if o.Burst <= 0 {
		o.Burst = 10
	}
	o.URL = strings.TrimRight(o.URL, "/")
	return &Vendure{o: o, http: newHTTPClient()}, nil
}

func (v *Vendure) Name() string { return v.o.Channel }

func (v *Vendure) Limits() Limits {
	return Limits{Rate: v.o.Rate, Burst: v.o.Burst, MaxBatch: 100}
}

// errForbidden is a GraphQL FORBIDDEN answer: the token expired or was revoked.
var errForbidden = errors.New("vendure: forbidden")

// gql runs one GraphQL operation on the Admin API.
func (v *Vendure) gql(ctx context.Context, query string, vars map[string]any, out any) error {
	v.mu.Lock()
	token := v.token
	v.mu.Unlock()
	h := map[string]string{}
	if token != "" {
		h["Authorization"] = "Bearer " + token
	}
	a, err := call(ctx, v.http, http.MethodPost, v.o.URL+"/admin-api", h, map[string]any{"query": query, "variables": vars})
	if err != nil {
		return fmt.Errorf("vendure: %w", err)
	}
	if t := a.header.Get("Vendure-Auth-Token"); t != "" {
		v.mu.Lock()
		v.token = t
		v.mu.Unlock()
	}
	if a.status == http.StatusTooManyRequests {
		return &RateLimitError{RetryAfter: retryAfter(a.header), Detail: a.excerpt()}
	}
	var body struct {
		Data   json.RawMessage `json:"data"`
		Errors []struct {
			Message    string `json:"message"`
			Extensions struct {
				Code string `json:"code"`
			} `json:"extensions"`
		} `json:"errors"`
	}
	if err := json.Unmarshal(a.body, &body); err != nil {
		return fmt.Errorf("vendure: %s", a.excerpt())
	}
	if len(body.Errors) > 0 {
		if body.Errors[0].Extensions.Code == "FORBIDDEN" {
			return fmt.Errorf("%w: %s", errForbidden, body.Errors[0].Message)
		}
		return fmt.Errorf("vendure: %s (%s)", body.Errors[0].Message, body.Errors[0].Extensions.Code)
	}
	return json.Unmarshal(body.Data, out)
}

func (v *Vendure) login(ctx context.Context) error {
	var out struct {
		Login struct {
			Typename string `json:"__typename"`
			Message  string `json:"message"`
		} `json:"login"`
	}
	err := v.gql(ctx, `mutation($u:String!,$p:String!){ login(username:$u, password:$p){ __typename ... on ErrorResult { message } } }`,
		map[string]any{"u": v.o.Username, "p": v.o.Password}, &out)
	if err != nil {
		return err
	}
	if out.Login.Typename != "CurrentUser" {
		return fmt.Errorf("vendure refused the login of %s (check the connector's username and password_file): %s", v.o.Username, out.Login.Message)
	}
	return nil
}

// authed runs fn, logging in first when there is no token and once more when it is refused.
func (v *Vendure) authed(ctx context.Context, fn func() error) error {
	v.mu.Lock()
	none := v.token == ""
	v.mu.Unlock()
	if none {
		if err := v.login(ctx); err != nil {
			return err
		}
	}
	err := fn()
	if errors.Is(err, errForbidden) {
		if err := v.login(ctx); err != nil {
			return err
		}
		err = fn()
	}
	return err
}

type vendureVariant struct {
	ID             string `json:"id"`
	SKU            string `json:"sku"`
	StockOnHand    int64  `json:"stockOnHand"`
	StockAllocated int64  `json:"stockAllocated"`
	StockLevels    []struct {
		StockLocationID string `json:"stockLocationId"`
		StockOnHand     int64  `json:"stockOnHand"`
		StockAllocated  int64  `json:"stockAllocated"`
	} `json:"stockLevels"`
}

// variants finds the variants of skus.
func (v *Vendure) variants(ctx context.Context, skus []string) (map[string]vendureVariant, error) {
	var out struct {
		ProductVariants struct {
			Items []vendureVariant `json:"items"`
		} `json:"productVariants"`
	}
	err := v.authed(ctx, func() error {
		return v.gql(ctx, `query($s:[String!]!,$n:Int!){ productVariants(options:{filter:{sku:{in:$s}}, take:$n}){
			items{ id sku stockOnHand stockAllocated stockLevels{ stockLocationId stockOnHand stockAllocated } } } }`,
			map[string]any{"s": skus, "n": len(skus)}, &out)
	})
	if err != nil {
		return nil, err
	}
	m := map[string]vendureVariant{}
	for _, it := range out.ProductVariants.Items {
		m[it.SKU] = it
	}
	return m, nil
}

// Shown reads what Vendure sells of sku (stockOnHand − stockAllocated at the connector's
// location, or of the variant): for tests and checks.
func (v *Vendure) Shown(ctx context.Context, sku string) (int64, bool, error) {
	m, err := v.variants(ctx, []string{sku})
	if err != nil {
		return 0, false, err
	}
	it, ok := m[sku]
	if !ok {
		return 0, false, nil
	}
	if v.o.Location == "" {
		return it.StockOnHand - it.StockAllocated, true, nil
	}
	for _, l := range it.StockLevels {
		if l.StockLocationID == v.o.Location {
			return l.StockOnHand - l.StockAllocated, true, nil
		}
	}
	return 0, true, nil
}

func (v *Vendure) SetStock(ctx context.Context, levels []Level) ([]Result, error) {
	out := make([]Result, len(levels))
	skus := make([]string, len(levels))
	for i, l := range levels {
		out[i].SKU, skus[i] = l.SKU, l.SKU
	}
	found, err := v.variants(ctx, skus)
	if err != nil {
		return nil, err
	}
	var input []map[string]any
	var idx []int
	for i, l := range levels {
		units, err := Units(l.Available)
		if err != nil {
			out[i].Err = rejected("%v", err)
			continue
		}
		it, ok := found[l.SKU]
		if !ok {
			out[i].Err = rejected("no Vendure product variant has SKU %q", l.SKU)
			continue
		}
		in := map[string]any{"id": it.ID}
		switch {
		case v.o.Location == "" && len(it.StockLevels) == 0:
			in["stockOnHand"] = units + it.StockAllocated
		case v.o.Location == "": // the whole variant sells units: the first location holds them
			var sl []any
			for j, l := range it.StockLevels {
				n := l.StockAllocated
				if j == 0 {
					n += units
				}
				sl = append(sl, map[string]any{"stockLocationId": l.StockLocationID, "stockOnHand": n})
			}
			in["stockLevels"] = sl
		default:
			var allocated int64
			for _, sl := range it.StockLevels {
				if sl.StockLocationID == v.o.Location {
					allocated = sl.StockAllocated
				}
			}
			in["stockLevels"] = []any{map[string]any{"stockLocationId": v.o.Location, "stockOnHand": units + allocated}}
		}
		input = append(input, in)
		idx = append(idx, i)
		out[i].Shown = strconv.FormatInt(units, 10)
	}
	if len(input) == 0 {
		return out, nil
	}
	var res struct {
		Update []struct {
			ID string `json:"id"`
		} `json:"updateProductVariants"`
	}
	err = v.authed(ctx, func() error {
		return v.gql(ctx, `mutation($in:[UpdateProductVariantInput!]!){ updateProductVariants(input:$in){ id } }`,
			map[string]any{"in": input}, &res)
	})
	if err != nil {
		return nil, err
	}
	if len(res.Update) != len(input) {
		for _, i := range idx {
			out[i].Shown, out[i].Err = "", fmt.Errorf("vendure updated %d of %d variants", len(res.Update), len(input))
		}
	}
	return out, nil
}
