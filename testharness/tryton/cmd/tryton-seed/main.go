// Command tryton-seed fills a freshly initialised Tryton database (see
// testharness/tryton/setup.sh) with what Lanebridge postings need: a company
// in USD with the "Minimal Account Chart", the walk-in customer, one
// warehouse per store (code = store id; one "Shop Floor" location serves as
// its input, output and storage), salable products whose code is the SKU,
// and opening stock per warehouse through a confirmed stock inventory.
//
// Every step looks for its records first, so running it twice changes
// nothing; a store or SKU added to the flags is added on the next run.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"time"
)

// walkInCustomer must match tryton.WalkInCustomer in hub/internal/erp/tryton.
const walkInCustomer = "Walk-in Customer"

// defaultProducts is SKU=price:name, comma separated. SKUs 100001..100010 are the catalog of
// the POS simulator (testharness/sim), with the same prices, so simulated days post as they are.
const defaultProducts = "1001=18.99:Espresso beans 1kg,1002=2.49:Oat milk 1l," +
	"1003=4.75:Paper cups 50,1004=1.80:Croissant,1005=3.20:Sparkling water 6x0.5l," +
	"100001=1.29:Milk 1L,100002=2.49:Bread loaf,100003=3.89:Eggs 12,100004=8.99:Coffee 500g," +
	"100005=2.99:Apples kg,100006=11.99:Batteries AA,100007=6.49:Shampoo,100008=1.50:Chocolate bar," +
	"100009=4.59:Water 6x1.5L,100010=3.25:Notebook"

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "tryton-seed:", err)
		os.Exit(1)
	}
}

type product struct{ sku, price, name string }

func run() error {
	url := flag.String("url", envOr("LANEBRIDGE_TRYTON_URL", "http://127.0.0.1:18000"), "Tryton base URL")
	db := flag.String("db", envOr("LANEBRIDGE_TRYTON_DB", "lanebridge"), "database name")
	user := flag.String("user", envOr("LANEBRIDGE_TRYTON_USER", "admin"), "user")
	password := flag.String("password", envOr("LANEBRIDGE_TRYTON_PASSWORD", "lanebridge"), "password")
	stores := flag.String("stores", "S001,S002", "comma-separated store ids; one warehouse each")
	products := flag.String("products", defaultProducts, "SKU=price:name, comma separated")
	opening := flag.String("opening", "100", "opening quantity of every product in every store")
	flag.Parse()

	log := slog.New(slog.NewTextHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()

	var catalog []product
	for _, item := range strings.Split(*products, ",") {
		sku, rest, ok1 := strings.Cut(strings.TrimSpace(item), "=")
		price, name, ok2 := strings.Cut(rest, ":")
		if !ok1 || !ok2 || sku == "" {
			return fmt.Errorf("bad -products item %q (want SKU=price:name)", item)
		}
		catalog = append(catalog, product{sku, price, name})
	}

	start := time.Now()
	r, err := dial(ctx, *url, *db, *user, *password)
	if err != nil {
		return err
	}
	s := &seeder{r: r, log: log}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"company", s.company},
		{"chart of accounts", s.chart},
		{"walk-in customer", s.customer},
		{"warehouses", func(ctx context.Context) error { return s.warehouses(ctx, splitList(*stores)) }},
		{"products", func(ctx context.Context) error { return s.products(ctx, catalog) }},
		{"opening stock", func(ctx context.Context) error { return s.stock(ctx, *opening) }},
	}
	for _, st := range steps {
		t := time.Now()
		if err := st.fn(ctx); err != nil {
			return fmt.Errorf("%s: %w", st.name, err)
		}
		log.Info("seed step done", "step", st.name, "took", time.Since(t).Round(time.Millisecond))
	}
	log.Info("seed done", "stores", *stores, "products", len(catalog), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

type seeder struct {
	r          *rpc
	log        *slog.Logger
	companyID  int64
	unitID     int64
	storages   map[string]int64 // store → shop floor location
	productIDs []int64
}

func (s *seeder) company(ctx context.Context) error {
	usd, err := s.r.one(ctx, "currency.currency", []any{"code", "=", "USD"})
	if err != nil {
		return err
	}
	if usd == 0 {
		usd, err = s.r.create(ctx, "currency.currency", map[string]any{
			"name": "U.S. Dollar", "code": "USD", "symbol": "$",
			"rounding": dec("0.01"), "digits": 2,
		})
		if err != nil {
			return err
		}
	}
	cid, err := s.r.one(ctx, "company.company")
	if err != nil {
		return err
	}
	if cid == 0 {
		pid, err := s.r.create(ctx, "party.party", map[string]any{"name": "Lanebridge Retail"})
		if err != nil {
			return err
		}
		cid, err = s.r.create(ctx, "company.company", map[string]any{"party": pid, "currency": usd})
		if err != nil {
			return err
		}
	}
	s.companyID = cid
	uid, err := s.r.one(ctx, "res.user", []any{"login", "=", "admin"})
	if err != nil {
		return err
	}
	if err := s.r.call(ctx, "model.res.user.write", nil, []int64{uid}, map[string]any{
		"companies": []any{[]any{"add", []int64{cid}}},
		"company":   cid,
	}); err != nil {
		return err
	}
	return s.r.refresh(ctx)
}

// chart creates accounts from the account module's "Minimal Account Chart"
// through the account.create_chart wizard, as a user would. Sales are posted
// with manual invoicing, so the chart is groundwork for accounting later.
func (s *seeder) chart(ctx context.Context) error {
	existing, err := s.r.one(ctx, "account.account", []any{"company", "=", s.companyID})
	if err != nil || existing != 0 {
		return err
	}
	tmpl, err := s.r.one(ctx, "account.account.template",
		[]any{"parent", "=", nil}, []any{"name", "=", "Minimal Account Chart"})
	if err != nil {
		return err
	}
	if tmpl == 0 {
		return errors.New("account template \"Minimal Account Chart\" not found")
	}
	var session []any
	if err := s.r.call(ctx, "wizard.account.create_chart.create", &session); err != nil {
		return err
	}
	if len(session) == 0 {
		return fmt.Errorf("wizard session %v", session)
	}
	sid := session[0]
	data := map[string]any{"account": map[string]any{"company": s.companyID, "account_template": tmpl}}
	var res struct {
		View struct {
			Defaults map[string]any `json:"defaults"`
		} `json:"view"`
	}
	if err := s.r.call(ctx, "wizard.account.create_chart.execute", &res, sid, data, "create_account"); err != nil {
		return err
	}
	props := map[string]any{"company": s.companyID}
	for _, k := range []string{"account_receivable", "account_payable"} {
		if v, ok := res.View.Defaults[k]; ok && v != nil {
			props[k] = v
		}
	}
	data["properties"] = props
	if err := s.r.call(ctx, "wizard.account.create_chart.execute", nil, sid, data, "create_properties"); err != nil {
		return err
	}
	return s.r.call(ctx, "wizard.account.create_chart.delete", nil, sid)
}

func (s *seeder) customer(ctx context.Context) error {
	id, err := s.r.one(ctx, "party.party", []any{"name", "=", walkInCustomer})
	if err != nil || id != 0 {
		return err
	}
	_, err = s.r.create(ctx, "party.party", map[string]any{
		"name":      walkInCustomer,
		"addresses": []any{[]any{"create", []any{map[string]any{"name": "Store counter"}}}},
	})
	return err
}

func (s *seeder) warehouses(ctx context.Context, stores []string) error {
	lostFound, err := s.r.one(ctx, "stock.location", []any{"type", "=", "lost_found"})
	if err != nil {
		return err
	}
	if lostFound == 0 {
		return errors.New("no lost and found location")
	}
	s.storages = map[string]int64{}
	for _, store := range stores {
		wh, err := s.r.one(ctx, "stock.location", []any{"type", "=", "warehouse"}, []any{"code", "=", store})
		if err != nil {
			return err
		}
		if wh == 0 {
			floor, err := s.r.create(ctx, "stock.location", map[string]any{
				"name": store + " Shop Floor", "code": store + "-FLOOR", "type": "storage",
			})
			if err != nil {
				return err
			}
			wh, err = s.r.create(ctx, "stock.location", map[string]any{
				"name": "Store " + store, "code": store, "type": "warehouse",
				"input_location": floor, "output_location": floor, "storage_location": floor,
				"lost_found_location": lostFound,
			})
			if err != nil {
				return err
			}
			if err := s.r.call(ctx, "model.stock.location.write", nil, []int64{floor}, map[string]any{"parent": wh}); err != nil {
				return err
			}
			s.log.Info("created warehouse", "store", store, "id", wh)
		}
		var rows []struct {
			Storage int64 `json:"storage_location"`
		}
		if err := s.r.call(ctx, "model.stock.location.read", &rows, []int64{wh}, []string{"storage_location"}); err != nil {
			return err
		}
		if len(rows) != 1 {
			return fmt.Errorf("read warehouse %s: %d rows", store, len(rows))
		}
		s.storages[store] = rows[0].Storage
	}
	return nil
}

func (s *seeder) products(ctx context.Context, catalog []product) error {
	unit, err := s.r.one(ctx, "product.uom", []any{"name", "=", "Unit"})
	if err != nil {
		return err
	}
	if unit == 0 {
		return errors.New("product.uom Unit not found")
	}
	s.unitID = unit
	for _, p := range catalog {
		id, err := s.r.one(ctx, "product.product", []any{"code", "=", p.sku})
		if err != nil {
			return err
		}
		if id == 0 {
			var tmpl int64
			tmpl, err = s.r.create(ctx, "product.template", map[string]any{
				"name": p.name, "type": "goods", "default_uom": unit,
				"salable": true, "sale_uom": unit, "list_price": dec(p.price),
				"products": []any{[]any{"create", []any{map[string]any{"suffix_code": p.sku}}}},
			})
			if err != nil {
				return fmt.Errorf("product %s: %w", p.sku, err)
			}
			if id, err = s.r.one(ctx, "product.product", []any{"template", "=", tmpl}); err != nil {
				return err
			}
		}
		s.productIDs = append(s.productIDs, id)
	}
	return nil
}

// stock gives every product the opening quantity in each store that has no
// confirmed inventory yet.
func (s *seeder) stock(ctx context.Context, qty string) error {
	var q float64
	if _, err := fmt.Sscan(qty, &q); err != nil {
		return fmt.Errorf("opening quantity %q: %w", qty, err)
	}
	for store, floor := range s.storages {
		done, err := s.r.one(ctx, "stock.inventory", []any{"location", "=", floor}, []any{"state", "=", "done"})
		if err != nil {
			return err
		}
		if done != 0 {
			continue
		}
		lines := make([]any, 0, len(s.productIDs))
		for _, pid := range s.productIDs {
			lines = append(lines, map[string]any{"product": pid, "quantity": q})
		}
		inv, err := s.r.create(ctx, "stock.inventory", map[string]any{
			"location": floor, "date": day(time.Now()),
			"lines": []any{[]any{"create", lines}},
		})
		if err != nil {
			return fmt.Errorf("inventory %s: %w", store, err)
		}
		if err := s.r.call(ctx, "model.stock.inventory.confirm", nil, []int64{inv}); err != nil {
			return fmt.Errorf("confirm inventory %s: %w", store, err)
		}
		s.log.Info("opening stock", "store", store, "inventory", inv, "products", len(lines), "quantity", qty)
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, v := range strings.Split(s, ",") {
		if v = strings.TrimSpace(v); v != "" {
			out = append(out, v)
		}
	}
	return out
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}
