package tryton

import (
	"context"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
)

// OnHand returns the quantity of every product with a code (SKU) in the
// warehouse of store warehouse (its sub-locations included), as of today,
// counting only done moves. Products never moved there are reported as "0".
func (c *Client) OnHand(ctx context.Context, warehouse string) (map[string]string, error) {
	wh, err := c.warehouse(ctx, warehouse)
	if err != nil {
		return nil, fmt.Errorf("on hand %s: %w", warehouse, err)
	}
	var rows []struct {
		Code     string  `json:"code"`
		Quantity float64 `json:"quantity"`
	}
	extra := map[string]any{
		"locations":      []int64{wh},
		"with_childs":    true,
		"stock_date_end": date{clock.Now()},
	}
	err = c.Call(ctx, "model.product.product.search_read", &rows, extra,
		[]any{[]any{"code", "!=", nil}}, 0, nil, nil, []string{"code", "quantity"})
	if err != nil {
		return nil, fmt.Errorf("on hand %s: %w", warehouse, err)
	}
	m := make(map[string]string, len(rows))
	for _, r := range rows {
		m[r.Code] = formatQuantity(r.Quantity)
	}
	return m, nil
}

// Prices returns the list price of every salable product with a code, in
// minor units. A price with more decimals than MinorDigits is an error rather
// than silently rounded.
func (c *Client) Prices(ctx context.Context) (map[string]int64, error) {
	var rows []struct {
		Code      string  `json:"code"`
		ListPrice decimal `json:"list_price"`
	}
	err := c.Call(ctx, "model.product.product.search_read", &rows, nil,
		[]any{[]any{"code", "!=", nil}, []any{"salable", "=", true}}, 0, nil, nil,
		[]string{"code", "list_price"})
	if err != nil {
		return nil, fmt.Errorf("prices: %w", err)
	}
	m := make(map[string]int64, len(rows))
	for _, r := range rows {
		if r.ListPrice == "" {
			continue
		}
		v, err := decimalToMinor(r.ListPrice)
		if err != nil {
			return nil, fmt.Errorf("price of %s: %w", r.Code, err)
		}
		m[r.Code] = v
	}
	return m, nil
}
