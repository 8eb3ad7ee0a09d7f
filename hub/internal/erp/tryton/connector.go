package tryton

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/erp"
	"github.com/lanebridge/lanebridge/protocol"
)

// Connector adapts a Client to erp.Connector and erp.StockSource. References are
// "sale.sale/ID".
type Connector struct {
	C *Client
}

var (
	_ erp.Connector   = Connector{}
	_ erp.StockSource = Connector{}
)

// permanentErrs are the client's errors that a retry of the same posting cannot fix.
var permanentErrs = []error{ErrCurrency, ErrUnknownWarehouse, ErrUnknownSKU, ErrNoCustomer, ErrTotalMismatch, ErrDuplicatePosting, ErrEmptyPosting}

// classify wraps permanent failures as erp rejections; anything else stays retryable.
func classify(err error) error {
	if err == nil {
		return nil
	}
	for _, p := range permanentErrs {
		if errors.Is(err, p) {
			return erp.Reject(err)
		}
	}
	var te *Error
	if errors.As(err, &te) && te.Permanent() {
		return erp.Reject(err)
	}
	return err
}

// ToPosting converts an outbox posting to a Tryton sale. Taxes are not posted (the seeded
// products carry none); the sale total is the record's net: lines minus discounts.
func ToPosting(p erp.Posting) (Posting, error) {
	r := &p.Record
	d, err := time.Parse("2006-01-02", r.BusinessDate)
	if err != nil {
		return Posting{}, erp.Reject(fmt.Errorf("business date %q: %w", r.BusinessDate, err))
	}
	if d, known := protocol.MinorDigits(r.Currency); r.Currency != "" && (!known || d != MinorDigits) {
		// Amounts are sent as minor units / 10^MinorDigits: a yen total (no minor units) would
		// reach the ERP at a hundredth of its value. Refused, so it is an exception to work.
		return Posting{}, erp.Reject(fmt.Errorf("%w: the record is in %s (%d minor digits, known %v); this connector posts amounts with %d decimals (the company currency's)",
			ErrCurrency, r.Currency, d, known, MinorDigits))
	}
	lines, net, err := erp.NetLines(r)
	if err != nil {
		return Posting{}, erp.Reject(err)
	}
	tp := Posting{Key: p.Key, Warehouse: r.Store, Date: d, Total: net,
		Description: fmt.Sprintf("POS %s %s receipt %s (%s)", r.Store, r.Terminal, r.Receipt, r.Kind)}
	for _, l := range lines {
		tp.Lines = append(tp.Lines, Line{SKU: l.SKU, Description: l.Description, Quantity: l.Quantity, UnitPrice: l.UnitPrice})
	}
	if len(tp.Lines) == 0 {
		return Posting{}, erp.Reject(ErrEmptyPosting)
	}
	return tp, nil
}

// Post implements erp.Connector with PostSale, which resumes a sale an interrupted earlier
// call left behind.
func (c Connector) Post(ctx context.Context, p erp.Posting) (string, error) {
	if p.Record.Kind != protocol.KindSale && p.Record.Kind != protocol.KindReturn {
		return "", erp.Reject(fmt.Errorf("kind %s is not posted to Tryton", p.Record.Kind))
	}
	tp, err := ToPosting(p)
	if err != nil {
		return "", err
	}
	id, err := c.C.PostSale(ctx, tp)
	if err != nil {
		return "", classify(err)
	}
	return ref(id), nil
}

// Find implements erp.Connector: a sale carrying key that is done. A sale found in an
// intermediate state is reported as not found, so the outbox calls Post, which completes it.
func (c Connector) Find(ctx context.Context, key string) (string, bool, error) {
	id, found, err := c.C.FindPosting(ctx, key)
	if err != nil {
		return "", false, classify(err)
	}
	if !found {
		return "", false, nil
	}
	s, err := c.C.readSale(ctx, id)
	if err != nil {
		return "", false, fmt.Errorf("find %q: %w", key, err)
	}
	if s.State != "done" {
		return "", false, nil
	}
	return ref(id), true, nil
}

func ref(id int64) string { return "sale.sale/" + strconv.FormatInt(id, 10) }

// Pull implements erp.StockSource: on-hand of every listed store and the item master, every
// time (Tryton is the state; there is nothing to commit).
func (c Connector) Pull(ctx context.Context, stores []string) (erp.Update, error) {
	u := erp.Update{OnHand: map[string]map[string]string{}}
	for _, s := range stores {
		m, err := c.C.OnHand(ctx, s)
		if errors.Is(err, ErrUnknownWarehouse) {
			continue // a store without a warehouse in Tryton has no stock to push
		}
		if err != nil {
			return u, err
		}
		u.OnHand[s] = m
	}
	items, err := c.C.Items(ctx)
	if err != nil {
		return u, err
	}
	u.Items = items
	return u, nil
}

// Items returns the item master: every product with a code, its name, list price and
// whether it is salable and active.
func (c *Client) Items(ctx context.Context) ([]erp.Item, error) {
	var rows []struct {
		Code      string  `json:"code"`
		Name      string  `json:"name"`
		ListPrice decimal `json:"list_price"`
		Salable   flag    `json:"salable"`
		Active    flag    `json:"active"`
	}
	err := c.Call(ctx, "model.product.product.search_read", &rows, nil,
		[]any{[]any{"code", "!=", nil}}, 0, nil, []any{[]any{"code", "ASC"}},
		[]string{"code", "name", "list_price", "salable", "active"})
	if err != nil {
		return nil, fmt.Errorf("items: %w", err)
	}
	out := make([]erp.Item, 0, len(rows))
	for _, r := range rows {
		it := erp.Item{SKU: r.Code, Description: strings.TrimSpace(r.Name), Status: protocol.ItemActive}
		if r.ListPrice != "" {
			v, err := decimalToMinor(r.ListPrice)
			if err != nil {
				return nil, fmt.Errorf("price of %s: %w", r.Code, err)
			}
			it.Price = v
		}
		if !r.Salable || !r.Active {
			it.Status = protocol.ItemInactive
		}
		out = append(out, it)
	}
	return out, nil
}

// flag is a boolean that Tryton on SQLite sends as 0/1.
type flag bool

func (f *flag) UnmarshalJSON(b []byte) error {
	switch string(b) {
	case "true", "1":
		*f = true
	case "false", "0", "null":
		*f = false
	default:
		return fmt.Errorf("boolean %s", b)
	}
	return nil
}

// Lazy is a Connector that logs in on first use and again after a failed login, so a hub can
// start (and keep ingesting) while Tryton is down. Safe for concurrent use.
type Lazy struct {
	url, db, user, password string

	mu sync.Mutex
	c  *Client
}

var (
	_ erp.Connector   = (*Lazy)(nil)
	_ erp.StockSource = (*Lazy)(nil)
)

// NewLazy returns a Lazy connector for database db at url.
func NewLazy(url, db, user, password string) *Lazy {
	return &Lazy{url: url, db: db, user: user, password: password}
}

func (l *Lazy) conn(ctx context.Context) (Connector, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.c == nil {
		c, err := Dial(ctx, l.url, l.db, l.user, l.password)
		if err != nil {
			return Connector{}, fmt.Errorf("connect to tryton %s: %w", l.url, err)
		}
		l.c = c
	}
	return Connector{C: l.c}, nil
}

// Post implements erp.Connector.
func (l *Lazy) Post(ctx context.Context, p erp.Posting) (string, error) {
	c, err := l.conn(ctx)
	if err != nil {
		return "", err
	}
	return c.Post(ctx, p)
}

// Find implements erp.Connector.
func (l *Lazy) Find(ctx context.Context, key string) (string, bool, error) {
	c, err := l.conn(ctx)
	if err != nil {
		return "", false, err
	}
	return c.Find(ctx, key)
}

// Pull implements erp.StockSource.
func (l *Lazy) Pull(ctx context.Context, stores []string) (erp.Update, error) {
	c, err := l.conn(ctx)
	if err != nil {
		return erp.Update{}, err
	}
	return c.Pull(ctx, stores)
}
