package channels

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// The Shopify connector's default path: the GraphQL Admin API mutation inventorySetQuantities,
// which sets many items' "available" quantity in one call (input {name, reason,
// ignoreCompareQuantity, quantities:[{inventoryItemId, locationId, quantity}]}; documented at
// shopify.dev/docs/api/admin-graphql/latest/mutations/inventorySetQuantities and
// …/input-objects/InventoryQuantityInput). The hub is the source of truth for the figure it
// pushes, so it opts out of compare-and-set (ignoreCompareQuantity: true). The limit is cost
// based (help.shopify.com/en/api/graphql-admin-api/graphql-admin-api-rate-limits: a bucket of
// 1,000 points restored at 50 a second); a THROTTLED answer (HTTP 200) becomes a
// *RateLimitError whose hint is the time extensions.cost.throttleStatus says the requested
// cost needs to be restored. userErrors name the quantity by index (field
// ["input","quantities","3",…]): those SKUs are rejected and the others are sent again in one
// more call, as Shopify may have set none of them when any failed.
const shopifySetQuantities = `mutation SetAvailable($input: InventorySetQuantitiesInput!) {
  inventorySetQuantities(input: $input) { userErrors { code field message } }
}`

type gqlAnswer struct {
	Data struct {
		InventorySetQuantities *struct {
			UserErrors []struct {
				Code    string   `json:"code"`
				Field   []string `json:"field"`
				Message string   `json:"message"`
			} `json:"userErrors"`
		} `json:"inventorySetQuantities"`
	} `json:"data"`
	Errors []struct {
		Message    string `json:"message"`
		Extensions struct {
			Code string `json:"code"`
		} `json:"extensions"`
	} `json:"errors"`
	Extensions struct {
		Cost struct {
			RequestedQueryCost float64 `json:"requestedQueryCost"`
			ThrottleStatus     struct {
				MaximumAvailable   float64 `json:"maximumAvailable"`
				CurrentlyAvailable float64 `json:"currentlyAvailable"`
				RestoreRate        float64 `json:"restoreRate"`
			} `json:"throttleStatus"`
		} `json:"cost"`
	} `json:"extensions"`
}

// throttleWait is how long until the bucket holds the requested cost again (at least one
// point's worth, 1 s when the answer gave no figures).
func (a gqlAnswer) throttleWait() time.Duration {
	c := a.Extensions.Cost
	if c.ThrottleStatus.RestoreRate <= 0 {
		return time.Second
	}
	need := max(c.RequestedQueryCost-c.ThrottleStatus.CurrentlyAvailable, 1)
	return time.Duration(need / c.ThrottleStatus.RestoreRate * float64(time.Second))
}

func (s *Shopify) setGraphQL(ctx context.Context, levels []Level) ([]Result, error) {
	out := make([]Result, len(levels))
	units := make([]int64, len(levels))
	items := make([]int64, len(levels))
	var send []int // indexes of levels to send
	for i, l := range levels {
		out[i].SKU = l.SKU
		n, item, err := s.resolve(ctx, l, &out[i])
		if err != nil {
			return nil, err
		}
		if out[i].Err == nil {
			units[i], items[i] = n, item
			send = append(send, i)
		}
	}
	for attempt := 0; len(send) > 0; attempt++ {
		bad, err := s.mutate(ctx, send, units, items)
		if err != nil {
			if attempt == 0 {
				return nil, err
			}
			for _, i := range send {
				out[i].Err = err
			}
			return out, nil
		}
		if len(bad) == 0 {
			for _, i := range send {
				out[i].Shown = strconv.FormatInt(units[i], 10)
			}
			return out, nil
		}
		var rest []int
		for k, i := range send {
			if msg, ok := bad[k]; ok {
				out[i].Err = rejected("%s", msg)
			} else {
				rest = append(rest, i)
			}
		}
		if attempt == 1 { // a second round of userErrors: leave the rest to the Pusher's retry
			for _, i := range rest {
				out[i].Err = errors.New("shopify: not set: another quantity of the call had a user error")
			}
			return out, nil
		}
		send = rest
	}
	return out, nil
}

// mutate sends one inventorySetQuantities for the levels at send; bad maps a position in send
// to its userError.
func (s *Shopify) mutate(ctx context.Context, send []int, units, items []int64) (bad map[int]string, err error) {
	qs := make([]map[string]any, len(send))
	for k, i := range send {
		qs[k] = map[string]any{"inventoryItemId": "gid://shopify/InventoryItem/" + strconv.FormatInt(items[i], 10),
			"locationId": "gid://shopify/Location/" + strconv.FormatInt(s.o.LocationID, 10), "quantity": units[i]}
	}
	body := map[string]any{"query": shopifySetQuantities, "variables": map[string]any{"input": map[string]any{
		"name": "available", "reason": "correction", "ignoreCompareQuantity": true, "quantities": qs}}}
	a, err := call(ctx, s.http, http.MethodPost, s.api("graphql.json"), s.headers(), body)
	if err != nil {
		return nil, fmt.Errorf("shopify: inventorySetQuantities: %w", err)
	}
	if a.status != http.StatusOK {
		err := s.status(a)
		if errors.Is(err, ErrRejected) { // a whole-call 4xx is not one SKU's fault
			err = fmt.Errorf("shopify: inventorySetQuantities: %s", a.excerpt())
		}
		return nil, err
	}
	var ans gqlAnswer
	if err := json.Unmarshal(a.body, &ans); err != nil {
		return nil, fmt.Errorf("shopify: inventorySetQuantities: answer is not GraphQL JSON: %w", err)
	}
	if len(ans.Errors) > 0 {
		if ans.Errors[0].Extensions.Code == "THROTTLED" {
			return nil, &RateLimitError{RetryAfter: ans.throttleWait(), Detail: "THROTTLED: " + a.excerpt()}
		}
		return nil, fmt.Errorf("shopify: inventorySetQuantities: %s", ans.Errors[0].Message)
	}
	r := ans.Data.InventorySetQuantities
	if r == nil {
		return nil, fmt.Errorf("shopify: inventorySetQuantities: no result in %s", a.excerpt())
	}
	bad = map[int]string{}
	for _, ue := range r.UserErrors {
		k := -1
		if len(ue.Field) >= 3 && ue.Field[0] == "input" && ue.Field[1] == "quantities" {
			if n, err := strconv.Atoi(ue.Field[2]); err == nil && n >= 0 && n < len(send) {
				k = n
			}
		}
		if k < 0 { // not about one quantity: the whole call is wrong
			return nil, fmt.Errorf("shopify: inventorySetQuantities: %s %s", ue.Code, ue.Message)
		}
		bad[k] = ue.Code + " " + ue.Message
	}
	return bad, nil
}
