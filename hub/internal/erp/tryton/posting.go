package tryton

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"
)

// Errors that reject a posting permanently: retrying the same Posting fails
// the same way until master data in Tryton changes.
var (
	ErrUnknownWarehouse = errors.New("tryton: no warehouse with that store code")
	ErrUnknownSKU       = errors.New("tryton: no product with that code")
	ErrNoCustomer       = errors.New("tryton: walk-in customer party missing")
	ErrTotalMismatch    = errors.New("tryton: sale total differs from posting total")
	ErrDuplicatePosting = errors.New("tryton: more than one sale carries the business key")
	ErrEmptyPosting     = errors.New("tryton: posting has no lines")
	ErrCurrency         = errors.New("tryton: currency not supported")
)

// WalkInCustomer is the name of the party every POS sale is made to. The
// seed (testharness/tryton/cmd/tryton-seed) creates it with an address.
const WalkInCustomer = "Walk-in Customer"

// Line is one item line of a Posting.
type Line struct {
	// SKU is the product code in Tryton. A line without SKU (a discount, a
	// department sale) becomes a sale line without product: it counts in
	// the total and moves no stock.
	SKU         string
	Description string // shown on a line without SKU
	// Quantity is an exact decimal string; negative for returned items.
	Quantity string
	// UnitPrice is the price actually charged per unit, in minor units,
	// before tax; never negative (a return negates Quantity).
	UnitPrice int64
}

// Posting is one POS transaction to record in Tryton.
type Posting struct {
	// Key is the business key store|terminal|business_date|receipt|kind.
	// It is stored in sale.sale's reference field.
	Key string
	// Warehouse is the store id; Tryton's warehouse location has it as code.
	Warehouse string
	// Date is the business date; it becomes the sale date.
	Date time.Time
	// Description is shown in Tryton; defaults to "Lanebridge " + Key.
	Description string
	Lines       []Line
	// Total is Σ quantity × unit price in minor units, checked against
	// the total Tryton computes before the sale is confirmed.
	Total int64
}

// FindPosting returns the id of the sale.sale that carries key, if any.
// Cancelled sales do not count.
func (c *Client) FindPosting(ctx context.Context, key string) (id int64, found bool, err error) {
	var ids []int64
	err = c.Call(ctx, "model.sale.sale.search", &ids, nil,
		[]any{[]any{"reference", "=", key}, []any{"state", "!=", "cancelled"}},
		0, nil, []any{[]any{"id", "ASC"}})
	if err != nil {
		return 0, false, fmt.Errorf("find posting %q: %w", key, err)
	}
	switch len(ids) {
	case 0:
		return 0, false, nil
	case 1:
		return ids[0], true, nil
	default:
		return ids[0], true, fmt.Errorf("find posting %q: sales %v: %w", key, ids, ErrDuplicatePosting)
	}
}

// PostSale records p as a sale.sale and drives it to "done": quotation,
// confirmation, processing (which creates a customer shipment for positive
// lines and a customer return shipment for negative ones), and completion of
// those shipments, so the stock moves out of (or back into) the store's
// warehouse. A return is simply a Posting whose lines have negative quantities.
//
// PostSale is idempotent on p.Key: when a sale with that reference exists it
// is not created again but resumed from whatever state an interrupted earlier
// call left it in, and its id is returned. Two concurrent calls with the same
// key can both create a sale; callers serialise postings per key (the hub's
// outbox does).
func (c *Client) PostSale(ctx context.Context, p Posting) (int64, error) {
	id, found, err := c.FindPosting(ctx, p.Key)
	if err != nil {
		return 0, err
	}
	if !found {
		id, err = c.createSale(ctx, p)
		if err != nil {
			return 0, fmt.Errorf("post %q: %w", p.Key, err)
		}
	}
	if err := c.complete(ctx, id, p); err != nil {
		return id, fmt.Errorf("post %q (sale %d): %w", p.Key, id, err)
	}
	return id, nil
}

type product struct {
	ID         int64  `json:"id"`
	Code       string `json:"code"`
	DefaultUOM int64  `json:"default_uom"`
}

type party struct {
	ID      int64
	Address int64
}

func (c *Client) createSale(ctx context.Context, p Posting) (int64, error) {
	if len(p.Lines) == 0 {
		return 0, ErrEmptyPosting
	}
	if p.Date.IsZero() {
		return 0, errors.New("posting has no business date")
	}
	wh, err := c.warehouse(ctx, p.Warehouse)
	if err != nil {
		return 0, err
	}
	cust, err := c.walkIn(ctx)
	if err != nil {
		return 0, err
	}
	skus := make([]string, 0, len(p.Lines))
	for _, l := range p.Lines {
		if l.SKU != "" {
			skus = append(skus, l.SKU)
		}
	}
	products, err := c.products(ctx, skus)
	if err != nil {
		return 0, err
	}
	lines := make([]map[string]any, 0, len(p.Lines))
	for i, l := range p.Lines {
		q, err := parseQuantity(l.Quantity)
		if err != nil {
			return 0, fmt.Errorf("line %d: %w", i+1, err)
		}
		if l.UnitPrice < 0 {
			return 0, fmt.Errorf("line %d: negative unit price %d", i+1, l.UnitPrice)
		}
		if l.SKU == "" {
			desc := l.Description
			if desc == "" {
				desc = "POS line"
			}
			lines = append(lines, map[string]any{
				"type":        "line",
				"sequence":    i + 1,
				"description": desc,
				"quantity":    q,
				"unit_price":  minorToDecimal(l.UnitPrice),
			})
			continue
		}
		prod, ok := products[l.SKU]
		if !ok {
			return 0, fmt.Errorf("line %d sku %q: %w", i+1, l.SKU, ErrUnknownSKU)
		}
		lines = append(lines, map[string]any{
			"type":        "line",
			"sequence":    i + 1,
			"product":     prod.ID,
			"description": l.SKU,
			"quantity":    q,
			"unit":        prod.DefaultUOM,
			"unit_price":  minorToDecimal(l.UnitPrice),
		})
	}
	desc := p.Description
	if desc == "" {
		desc = "Lanebridge " + p.Key
	}
	sale := map[string]any{
		"reference":        p.Key,
		"description":      desc,
		"party":            cust.ID,
		"invoice_address":  cust.Address,
		"shipment_address": cust.Address,
		"warehouse":        wh,
		"sale_date":        date{p.Date},
		"invoice_method":   "manual",
		"shipment_method":  "order",
		"lines":            []any{[]any{"create", lines}},
	}
	var ids []int64
	if err := c.Call(ctx, "model.sale.sale.create", &ids, nil, []any{sale}); err != nil {
		return 0, fmt.Errorf("create sale: %w", err)
	}
	if len(ids) != 1 {
		return 0, fmt.Errorf("create sale: got ids %v", ids)
	}
	return ids[0], nil
}

type saleState struct {
	ID              int64   `json:"id"`
	State           string  `json:"state"`
	TotalAmount     decimal `json:"total_amount"`
	Shipments       []int64 `json:"shipments"`
	ShipmentReturns []int64 `json:"shipment_returns"`
}

func (c *Client) readSale(ctx context.Context, id int64) (saleState, error) {
	var rows []saleState
	err := c.Call(ctx, "model.sale.sale.read", &rows, nil, []int64{id},
		[]string{"state", "total_amount", "shipments", "shipment_returns"})
	if err != nil {
		return saleState{}, fmt.Errorf("read sale: %w", err)
	}
	if len(rows) != 1 {
		return saleState{}, fmt.Errorf("read sale: %d rows", len(rows))
	}
	return rows[0], nil
}

// complete drives sale id from whatever state it is in to done.
func (c *Client) complete(ctx context.Context, id int64, p Posting) error {
	for range 8 {
		s, err := c.readSale(ctx, id)
		if err != nil {
			return err
		}
		var button string
		switch s.State {
		case "draft":
			total, err := decimalToMinor(s.TotalAmount)
			if err != nil {
				return fmt.Errorf("sale total: %w", err)
			}
			if total != p.Total {
				err := fmt.Errorf("tryton %d, posting %d: %w", total, p.Total, ErrTotalMismatch)
				// Leave no draft behind: the same posting would fail the
				// same way, and a corrected one must be created anew.
				if derr := c.Call(ctx, "model.sale.sale.delete", nil, nil, []int64{id}); derr != nil {
					return errors.Join(err, fmt.Errorf("delete rejected draft: %w", derr))
				}
				return err
			}
			button = "quote"
		case "quotation":
			button = "confirm"
		case "confirmed", "processing":
			if err := c.finishShipments(ctx, s); err != nil {
				return err
			}
			button = "process"
		case "done":
			return nil
		default:
			return fmt.Errorf("sale is %s", s.State)
		}
		if err := c.Call(ctx, "model.sale.sale."+button, nil, nil, []int64{id}); err != nil {
			return fmt.Errorf("%s: %w", button, err)
		}
	}
	return errors.New("sale did not reach done")
}

type shipmentState struct {
	ID      int64  `json:"id"`
	State   string `json:"state"`
	Storage int64  `json:"warehouse_storage"`
	Output  int64  `json:"warehouse_output"`
}

// finishShipments completes the customer shipments and customer return
// shipments of a processed sale. Stock is not checked: the goods already left
// the store, so availability is forced rather than tried.
func (c *Client) finishShipments(ctx context.Context, s saleState) error {
	if err := c.finish(ctx, "stock.shipment.out", s.Shipments, func(sh shipmentState) (string, bool) {
		switch sh.State {
		case "draft":
			return "wait", false
		case "waiting":
			if sh.Storage == sh.Output {
				return "pack", false
			}
			return "assign_force", false
		case "assigned":
			return "pick", false
		case "picked":
			return "pack", false
		case "packed":
			return "done", false
		}
		return "", sh.State == "done"
	}); err != nil {
		return err
	}
	return c.finish(ctx, "stock.shipment.out.return", s.ShipmentReturns, func(sh shipmentState) (string, bool) {
		switch sh.State {
		case "draft":
			return "receive", false
		case "received":
			return "done", false
		}
		return "", sh.State == "done"
	})
}

// finish applies next's button to each shipment until next reports done.
func (c *Client) finish(ctx context.Context, model string, ids []int64, next func(shipmentState) (string, bool)) error {
	if len(ids) == 0 {
		return nil
	}
	fields := []string{"state"}
	if model == "stock.shipment.out" {
		fields = append(fields, "warehouse_storage", "warehouse_output")
	}
	for _, id := range ids {
		for step := 0; ; step++ {
			var rows []shipmentState
			if err := c.Call(ctx, "model."+model+".read", &rows, nil, []int64{id}, fields); err != nil {
				return fmt.Errorf("read %s %d: %w", model, id, err)
			}
			if len(rows) != 1 {
				return fmt.Errorf("read %s %d: %d rows", model, id, len(rows))
			}
			button, done := next(rows[0])
			if done {
				break
			}
			if button == "" || step > 6 {
				return fmt.Errorf("%s %d stuck in state %s", model, id, rows[0].State)
			}
			if err := c.Call(ctx, "model."+model+"."+button, nil, nil, []int64{id}); err != nil {
				return fmt.Errorf("%s %d %s: %w", model, id, button, err)
			}
		}
	}
	return nil
}

func (c *Client) warehouse(ctx context.Context, store string) (int64, error) {
	c.cacheMu.Lock()
	id, ok := c.warehouses[store]
	c.cacheMu.Unlock()
	if ok {
		return id, nil
	}
	var ids []int64
	err := c.Call(ctx, "model.stock.location.search", &ids, nil,
		[]any{[]any{"type", "=", "warehouse"}, []any{"code", "=", store}}, 0, 2, nil)
	if err != nil {
		return 0, fmt.Errorf("find warehouse %q: %w", store, err)
	}
	if len(ids) != 1 {
		return 0, fmt.Errorf("find warehouse %q: %d matches: %w", store, len(ids), ErrUnknownWarehouse)
	}
	c.cacheMu.Lock()
	c.warehouses[store] = ids[0]
	c.cacheMu.Unlock()
	return ids[0], nil
}

func (c *Client) walkIn(ctx context.Context) (party, error) {
	c.cacheMu.Lock()
	cached := c.customer
	c.cacheMu.Unlock()
	if cached != nil {
		return *cached, nil
	}
	var ids []int64
	err := c.Call(ctx, "model.party.party.search", &ids, nil,
		[]any{[]any{"name", "=", WalkInCustomer}}, 0, 1, []any{[]any{"id", "ASC"}})
	if err != nil {
		return party{}, fmt.Errorf("find %s: %w", WalkInCustomer, err)
	}
	if len(ids) == 0 {
		return party{}, ErrNoCustomer
	}
	var addrs []int64
	err = c.Call(ctx, "model.party.address.search", &addrs, nil,
		[]any{[]any{"party", "=", ids[0]}}, 0, 1, []any{[]any{"id", "ASC"}})
	if err != nil {
		return party{}, fmt.Errorf("find address of %s: %w", WalkInCustomer, err)
	}
	if len(addrs) == 0 {
		return party{}, fmt.Errorf("%s has no address: %w", WalkInCustomer, ErrNoCustomer)
	}
	p := party{ID: ids[0], Address: addrs[0]}
	c.cacheMu.Lock()
	c.customer = &p
	c.cacheMu.Unlock()
	return p, nil
}

// products resolves SKUs to products, asking Tryton only for SKUs not seen
// before. A SKU Tryton does not know is simply absent from the result.
func (c *Client) products(ctx context.Context, skus []string) (map[string]product, error) {
	m := make(map[string]product, len(skus))
	var missing []string
	c.cacheMu.Lock()
	for _, sku := range skus {
		if p, ok := c.productCache[sku]; ok {
			m[sku] = p
		} else {
			missing = append(missing, sku)
		}
	}
	c.cacheMu.Unlock()
	if len(missing) == 0 {
		return m, nil
	}
	var rows []product
	err := c.Call(ctx, "model.product.product.search_read", &rows, nil,
		[]any{[]any{"code", "in", missing}}, 0, nil, nil, []string{"code", "default_uom"})
	if err != nil {
		return nil, fmt.Errorf("find products %s: %w", strings.Join(missing, ","), err)
	}
	c.cacheMu.Lock()
	defer c.cacheMu.Unlock()
	for _, r := range rows {
		m[r.Code] = r
		c.productCache[r.Code] = r
	}
	return m, nil
}
