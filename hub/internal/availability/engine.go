// Package availability computes what each SKU is available to sell, per store and per channel
// (a pool of stores), from inputs the hub's store keeps incrementally in the transactions that
// change them (store/availability.go):
//
//	store figure   = max(0, ERP on-hand − unposted sales + unposted returns − reservations held
//	                 in the store − safety stock of the store)
//	channel figure = max(0, Σ store figures of the channel's pool − the channel's safety stock)
//	SKU figure     = Σ store figures
//
// A SKU the item master marks inactive or deleted is available nowhere (0). Quantities are
// exact decimals (protocol.Qty); every change gives the SKU a new version, and readers ask for
// what changed after a version ([Engine.ChannelChanges], GET /api/v1/availability?since_version=,
// the signed webhook feed).
//
// Ownership: the ERP owns on-hand and the item master, stores own their sales, channels own
// their orders. A channel order for a SKU the item master does not have or blocks, and a
// negative ERP on-hand, raise exceptions instead of a guess.
package availability

import (
	"cmp"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"path"
	"slices"
	"sync"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/alerts"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// Qty is an exact decimal quantity.
type Qty = protocol.Qty

// Errors of the reservation calls.
var (
	ErrUnknownChannel = errors.New("unknown channel")
	ErrBadRequest     = errors.New("bad reservation")
	// ErrOrderConflict: the order names a SKU the item master does not have or blocks; an
	// exception was raised.
	ErrOrderConflict = errors.New("channel order conflicts with the item master")
)

// Store is what the engine reads and changes (the hub's store).
type Store interface {
	AvailabilitySince(ctx context.Context, since int64, skus []string, limit int) ([]store.AvailSKU, int64, error)
	Reserve(ctx context.Context, channel, orderID, bodyHash string, skus []string, plan store.ReservePlan) (store.Reservation, bool, error)
	ReleaseReservation(ctx context.Context, channel, orderID string) (store.Reservation, bool, error)
	FulfilReservation(ctx context.Context, channel, orderID string, build func(store.Reservation) ([]protocol.Record, error)) (store.Reservation, bool, error)
	ExpireReservations(ctx context.Context, cutoff time.Time, limit int) ([]store.Reservation, error)
	Reservation(ctx context.Context, channel, orderID string) (store.Reservation, error)
	Reservations(ctx context.Context, f store.ReservationFilter) ([]store.Reservation, error)
	MasterItems(ctx context.Context, skus []string) (map[string]store.MasterItem, error)
	SafetyRules(ctx context.Context) ([]store.SafetyRule, error)
	SetSafetyRule(ctx context.Context, r store.SafetyRule, remove bool) error
	PutShown(ctx context.Context, v store.Shown) error
	ShownFigures(ctx context.Context) ([]store.Shown, error)
	FeedCursor(ctx context.Context, subscriber string) (int64, error)
	SetFeedCursor(ctx context.Context, subscriber string, version int64) error
	RaiseException(ctx context.Context, e store.Exception) (bool, error)
	RaiseAlert(ctx context.Context, a store.Alert) (bool, error)
	ClearAlert(ctx context.Context, kind, store, terminal string, at time.Time) (store.Alert, bool, error)
	AddAudit(ctx context.Context, e store.AuditEntry) error
}

// Options configure an Engine.
type Options struct {
	Logger *slog.Logger // nil discards
	Now    func() time.Time
}

// Engine serves availability figures, reservations and the change feed. Safe for concurrent use.
type Engine struct {
	st       Store
	cfg      Config
	channels map[string]ChannelConfig
	log      *slog.Logger
	now      func() time.Time

	mu      sync.Mutex
	subs    []chan struct{}
	driftAt map[[2]string]time.Time // (channel, sku) -> since when it drifts
}

// New builds an engine; cfg must be valid (Config.Validate).
func New(st Store, cfg Config, o Options) (*Engine, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	e := &Engine{st: st, cfg: cfg, channels: map[string]ChannelConfig{}, log: cmp.Or(o.Logger, slog.New(slog.DiscardHandler)).With("component", "availability"),
		now: o.Now, driftAt: map[[2]string]time.Time{}}
	if e.now == nil {
		e.now = time.Now
	}
	for _, c := range cfg.Channels {
		e.channels[c.Name] = c
	}
	return e, nil
}

// Channels lists the configured channels' names in configuration order.
func (e *Engine) Channels() []string {
	out := make([]string, len(e.cfg.Channels))
	for i, c := range e.cfg.Channels {
		out[i] = c.Name
	}
	return out
}

// Notify tells every Changed channel that a change committed (the store's availability hook).
// It never blocks.
func (e *Engine) Notify() {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, c := range e.subs {
		select {
		case c <- struct{}{}:
		default:
		}
	}
}

// Changed returns a channel that receives (non-blocking send, buffered 1) after each committed
// change. Each call returns a new channel: call it once per consumer.
func (e *Engine) Changed() <-chan struct{} {
	c := make(chan struct{}, 1)
	e.mu.Lock()
	e.subs = append(e.subs, c)
	e.mu.Unlock()
	return c
}

// StoreFigure is a SKU's figure in one store.
type StoreFigure struct {
	Store     string `json:"store"`
	Available string `json:"available"`
}

// ChannelAvail is a SKU's figure in one channel.
type ChannelAvail struct {
	Channel   string `json:"channel"`
	Available string `json:"available"`
}

// Item is a SKU's figures, as the API and the feed show them.
type Item struct {
	SKU       string         `json:"sku"`
	Version   int64          `json:"version"`
	Available string         `json:"available"`
	Stores    []StoreFigure  `json:"stores"`
	Channels  []ChannelAvail `json:"channels"`
}

// Query selects figures: SKU, Store and Channel narrow them ("" all); SinceVersion keeps SKUs
// changed after it; Limit bounds the SKUs (default 1000).
type Query struct {
	SKU, Store, Channel string
	SinceVersion        int64
	Limit               int
}

// Result is the figures and the version they are as of.
type Result struct {
	Version int64  `json:"version"`
	Items   []Item `json:"items"`
}

// Figures returns the figures selected by q. Version is the current version, or the last SKU's
// when Limit cut the list (ask again with since_version = Version for the rest).
func (e *Engine) Figures(ctx context.Context, q Query) (Result, error) {
	if q.Channel != "" {
		if _, ok := e.channels[q.Channel]; !ok {
			return Result{}, fmt.Errorf("channel %q: %w", q.Channel, ErrUnknownChannel)
		}
	}
	var skus []string
	if q.SKU != "" {
		skus = []string{q.SKU}
	}
	limit := cmp.Or(q.Limit, 1000)
	as, cur, err := e.st.AvailabilitySince(ctx, q.SinceVersion, skus, limit)
	if err != nil {
		return Result{}, err
	}
	sf, err := e.safety(ctx)
	if err != nil {
		return Result{}, err
	}
	res := Result{Version: cur, Items: make([]Item, 0, len(as))}
	for _, a := range as {
		it, err := e.compute(a, sf)
		if err != nil {
			return Result{}, err
		}
		if q.Store != "" {
			it.Stores = slices.DeleteFunc(it.Stores, func(s StoreFigure) bool { return s.Store != q.Store })
		}
		if q.Channel != "" {
			it.Channels = slices.DeleteFunc(it.Channels, func(c ChannelAvail) bool { return c.Channel != q.Channel })
		}
		res.Items = append(res.Items, it)
	}
	if len(as) == limit {
		res.Version = as[len(as)-1].Version
	}
	return res, nil
}

// ChannelFigure is a channel's figure for a SKU at a version.
type ChannelFigure struct {
	Channel, SKU string
	Available    string // decimal text
	Version      int64
}

// ChannelChanges returns the latest figure of each SKU changed after sinceVersion for channel,
// at most limit, and the version to ask from next time.
func (e *Engine) ChannelChanges(ctx context.Context, channel string, sinceVersion int64, limit int) (figs []ChannelFigure, latest int64, err error) {
	res, err := e.Figures(ctx, Query{Channel: channel, SinceVersion: sinceVersion, Limit: limit})
	if err != nil {
		return nil, 0, err
	}
	for _, it := range res.Items {
		figs = append(figs, ChannelFigure{Channel: channel, SKU: it.SKU, Available: it.Channels[0].Available, Version: it.Version})
	}
	return figs, res.Version, nil
}

// blocked reports whether the item master keeps a SKU from sale.
func blocked(status string) bool {
	return status == protocol.ItemInactive || status == protocol.ItemDeleted
}

// compute turns a SKU's inputs into its figures.
func (e *Engine) compute(a store.AvailSKU, sf *safetyTable) (Item, error) {
	it := Item{SKU: a.SKU, Version: a.Version, Stores: []StoreFigure{}, Channels: []ChannelAvail{}}
	figs := make(map[string]Qty, len(a.Stores))
	var total Qty
	for _, r := range a.Stores {
		f, err := storeFigure(r, sf.of("", a.SKU))
		if err != nil {
			return Item{}, fmt.Errorf("sku %s store %s: %w", a.SKU, r.Store, err)
		}
		if blocked(a.Status) {
			f = 0
		}
		figs[r.Store] = f
		if total, err = total.Add(f); err != nil {
			return Item{}, fmt.Errorf("sku %s: %w", a.SKU, err)
		}
		it.Stores = append(it.Stores, StoreFigure{Store: r.Store, Available: f.String()})
	}
	it.Available = total.String()
	for _, c := range e.cfg.Channels {
		var pool Qty
		var err error
		for st, f := range figs {
			if c.inPool(st) {
				if pool, err = pool.Add(f); err != nil {
					return Item{}, fmt.Errorf("sku %s channel %s: %w", a.SKU, c.Name, err)
				}
			}
		}
		pool = max(0, pool-sf.of(c.Name, a.SKU)) // both within range: no overflow
		it.Channels = append(it.Channels, ChannelAvail{Channel: c.Name, Available: pool.String()})
	}
	return it, nil
}

// storeFigure is max(0, on-hand − unposted − reserved − safety).
func storeFigure(r store.AvailRow, safety Qty) (Qty, error) {
	f, err := r.OnHand.Sub(r.Unposted)
	if err == nil {
		f, err = f.Sub(r.Reserved)
	}
	if err == nil {
		f, err = f.Sub(safety)
	}
	return max(0, f), err
}

// --- safety stock ---

// safetyTable resolves safety stock: for a channel ("" the stores) and SKU, the most specific
// rule wins (SKU, then category, then default), one set through the API over hub.yaml's.
type safetyTable struct {
	api  map[[3]string]Qty // (channel, scope, key)
	cfg  map[string]Safety // channel -> its config ("" the stores')
	cats map[string][]string
}

func (e *Engine) safety(ctx context.Context) (*safetyTable, error) {
	rules, err := e.st.SafetyRules(ctx)
	if err != nil {
		return nil, err
	}
	t := &safetyTable{api: map[[3]string]Qty{}, cfg: map[string]Safety{"": e.cfg.SafetyStock}, cats: e.cfg.Categories}
	for _, c := range e.cfg.Channels {
		t.cfg[c.Name] = c.SafetyStock
	}
	for _, r := range rules {
		t.api[[3]string{r.Channel, r.Scope, r.Key}] = r.Quantity
	}
	return t, nil
}

func (t *safetyTable) of(channel, sku string) Qty {
	cfg := t.cfg[channel]
	parse := func(s string) (Qty, bool) {
		q, err := protocol.ParseQty(s)
		return q, err == nil && s != "" // validated at start
	}
	if q, ok := t.api[[3]string{channel, "sku", sku}]; ok {
		return q
	}
	if q, ok := parse(cfg.SKU[sku]); ok {
		return q
	}
	for _, cat := range slices.Sorted(mapKeys(t.cats)) {
		if !matchAny(t.cats[cat], sku) {
			continue
		}
		if q, ok := t.api[[3]string{channel, "category", cat}]; ok {
			return q
		}
		if q, ok := parse(cfg.Category[cat]); ok {
			return q
		}
	}
	if q, ok := t.api[[3]string{channel, "default", ""}]; ok {
		return q
	}
	q, _ := parse(cfg.Default)
	return q
}

func mapKeys[V any](m map[string]V) func(func(string) bool) {
	return func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}
}

func matchAny(pats []string, sku string) bool {
	for _, p := range pats {
		if ok, _ := path.Match(p, sku); ok {
			return true
		}
	}
	return false
}

// SetSafetyStock sets (or with remove, deletes) safety stock through the API: channel "" for
// the stores, scope default, sku or category.
func (e *Engine) SetSafetyStock(ctx context.Context, channel, scope, key, quantity string, remove bool) error {
	if _, ok := e.channels[channel]; channel != "" && !ok {
		return fmt.Errorf("channel %q: %w", channel, ErrUnknownChannel)
	}
	switch {
	case scope == "default" && key != "":
		return fmt.Errorf("%w: scope default takes no key", ErrBadRequest)
	case scope == "category":
		if _, ok := e.cfg.Categories[key]; !ok {
			return fmt.Errorf("%w: category %q is not in availability.categories", ErrBadRequest, key)
		}
	case scope == "sku" && key != "":
	case scope != "default":
		return fmt.Errorf("%w: scope %q: use default, sku (with key) or category (with key)", ErrBadRequest, scope)
	}
	var q Qty
	if !remove {
		var err error
		if q, err = protocol.ParseQty(quantity); err != nil || q < 0 || quantity == "" {
			return fmt.Errorf("%w: quantity %q is not an exact decimal of 0 or more", ErrBadRequest, quantity)
		}
	}
	return e.st.SetSafetyRule(ctx, store.SafetyRule{Channel: channel, Scope: scope, Key: key, Quantity: q}, remove)
}

// --- reservations ---

// ReserveRequest is POST /api/v1/reservations.
type ReserveRequest struct {
	Channel string                  `json:"channel"`
	OrderID string                  `json:"order_id"`
	Lines   []store.ReservationLine `json:"lines"`
}

// hash is the request's identity for idempotency: channel, order id and lines (quantities
// canonical), in the order given.
func (r ReserveRequest) hash() string {
	b, _ := json.Marshal(r) // strings only
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

func (e *Engine) check(r *ReserveRequest) (ChannelConfig, error) {
	c, ok := e.channels[r.Channel]
	if !ok {
		return c, fmt.Errorf("channel %q: %w (configure it under availability.channels)", r.Channel, ErrUnknownChannel)
	}
	if r.OrderID == "" || len(r.OrderID) > 200 {
		return c, fmt.Errorf("%w: order_id must be 1-200 characters", ErrBadRequest)
	}
	if len(r.Lines) == 0 || len(r.Lines) > 500 {
		return c, fmt.Errorf("%w: lines: give 1 to 500 lines", ErrBadRequest)
	}
	for i := range r.Lines {
		l := &r.Lines[i]
		q, err := protocol.ParseQty(l.Quantity)
		if l.SKU == "" || err != nil || q <= 0 {
			return c, fmt.Errorf("%w: lines[%d]: need a sku and a quantity above 0 as an exact decimal string", ErrBadRequest, i)
		}
		l.Quantity = q.String()
		if l.Store != "" && !c.inPool(l.Store) {
			return c, fmt.Errorf("%w: lines[%d]: store %s is not in channel %s's pool", ErrBadRequest, i, l.Store, c.Name)
		}
	}
	return c, nil
}

// Reserve holds stock for a channel order at once (idempotent by channel and order id: the
// same request again changes nothing, created false; other lines: store.ErrReservationMismatch).
// Lines without a store are held in the pool's stores with the most available.
func (e *Engine) Reserve(ctx context.Context, r ReserveRequest) (store.Reservation, bool, error) {
	c, err := e.check(&r)
	if err != nil {
		return store.Reservation{}, false, err
	}
	var skus []string
	for _, l := range r.Lines {
		skus = append(skus, l.SKU)
	}
	slices.Sort(skus)
	var conflict error
	v, created, err := e.st.Reserve(ctx, r.Channel, r.OrderID, r.hash(), slices.Compact(skus), func(stock map[string]store.AvailSKU) ([]store.ReservationLine, error) {
		for _, l := range r.Lines {
			if a := stock[l.SKU]; !a.Known || blocked(a.Status) {
				why := "is not in the ERP's item master"
				if a.Known {
					why = "is " + a.Status + " in the ERP's item master"
				}
				conflict = fmt.Errorf("%w: sku %s %s", ErrOrderConflict, l.SKU, why)
				return nil, conflict
			}
		}
		sf, err := e.safety(ctx)
		if err != nil {
			return nil, err
		}
		return allocate(c, r.Lines, stock, sf)
	})
	if conflict != nil {
		if _, err := e.st.RaiseException(ctx, store.Exception{Store: "channel:" + r.Channel, Reason: store.ReasonChannelOrderUnknown, Key: r.OrderID,
			Detail: fmt.Sprintf("order %s of channel %s was not reserved: %v; the ERP owns the item master: add or unblock the SKU there, then the channel may send the order again", r.OrderID, r.Channel, conflict)}); err != nil {
			e.log.Error("raise channel order conflict", "err", err)
		}
		return store.Reservation{}, false, conflict
	}
	return v, created, err
}

// allocate places the lines in stores: a line naming a store stays there; the others go to
// the pool's stores with the most available, split when one is not enough; what no store has
// is held in the one with the most (the channel owns its order: it is accepted, the figure
// stays at 0).
func allocate(c ChannelConfig, lines []store.ReservationLine, stock map[string]store.AvailSKU, sf *safetyTable) ([]store.ReservationLine, error) {
	taken := map[[2]string]Qty{}
	var out []store.ReservationLine
	for _, l := range lines {
		q, _ := protocol.ParseQty(l.Quantity)
		if l.Store != "" {
			out = append(out, l)
			taken[[2]string{l.Store, l.SKU}] += q
			continue
		}
		type cand struct {
			store string
			avail Qty
		}
		var cs []cand
		for _, r := range stock[l.SKU].Stores {
			if c.inPool(r.Store) {
				f, err := storeFigure(r, sf.of("", l.SKU))
				if err != nil {
					return nil, err
				}
				cs = append(cs, cand{r.Store, max(0, f-taken[[2]string{r.Store, l.SKU}])})
			}
		}
		if len(cs) == 0 {
			if slices.Equal(c.Stores, []string{"*"}) {
				return nil, fmt.Errorf("%w: no store holds sku %s; name the line's store", ErrBadRequest, l.SKU)
			}
			cs = []cand{{c.Stores[0], 0}}
		}
		slices.SortStableFunc(cs, func(a, b cand) int { return cmp.Or(cmp.Compare(b.avail, a.avail), cmp.Compare(a.store, b.store)) })
		// Take from the stores with the most; what none has goes to the first.
		share := make([]Qty, len(cs))
		left := q
		for i, cd := range cs {
			share[i] = min(left, cd.avail)
			left -= share[i]
		}
		share[0] += left
		for i, cd := range cs {
			if share[i] > 0 {
				out = append(out, store.ReservationLine{SKU: l.SKU, Quantity: share[i].String(), Store: cd.store})
				taken[[2]string{cd.store, l.SKU}] += share[i]
			}
		}
	}
	return out, nil
}

// Release frees a reservation (changed false when it was not open).
func (e *Engine) Release(ctx context.Context, channel, orderID string) (store.Reservation, bool, error) {
	if _, ok := e.channels[channel]; !ok {
		return store.Reservation{}, false, fmt.Errorf("channel %q: %w", channel, ErrUnknownChannel)
	}
	return e.st.ReleaseReservation(ctx, channel, orderID)
}

// Fulfil turns a reservation into sale postings, one per store, that the outbox posts to the
// ERP exactly once: receipt = the channel's order id, terminal = the channel, epoch
// "channel:NAME", prices from the item master.
func (e *Engine) Fulfil(ctx context.Context, channel, orderID string) (store.Reservation, bool, error) {
	if _, ok := e.channels[channel]; !ok {
		return store.Reservation{}, false, fmt.Errorf("channel %q: %w", channel, ErrUnknownChannel)
	}
	v, err := e.st.Reservation(ctx, channel, orderID)
	if err != nil {
		return store.Reservation{}, false, err
	}
	var skus []string
	for _, l := range v.Lines {
		skus = append(skus, l.SKU)
	}
	prices, err := e.st.MasterItems(ctx, skus) // the lines do not change once reserved
	if err != nil {
		return store.Reservation{}, false, err
	}
	now := e.now().UTC()
	return e.st.FulfilReservation(ctx, channel, orderID, func(v store.Reservation) ([]protocol.Record, error) {
		return SaleRecords(v, prices, now)
	})
}

// SaleRecords are a fulfilled reservation's sale records, one per store in order of first line.
func SaleRecords(v store.Reservation, items map[string]store.MasterItem, at time.Time) ([]protocol.Record, error) {
	var out []protocol.Record
	idx := map[string]int{}
	for _, l := range v.Lines {
		i, ok := idx[l.Store]
		if !ok {
			i = len(out)
			idx[l.Store] = i
			out = append(out, protocol.Record{Kind: protocol.KindSale, Store: l.Store, Terminal: v.Channel, Receipt: v.OrderID,
				BusinessDate: at.Format(time.DateOnly), Time: at.Format("15:04:05"), Epoch: "channel:" + v.Channel,
				Seq: uint64(v.ID)*1000 + uint64(i) + 1, CapturedAt: at.Truncate(time.Microsecond),
				Source: &protocol.Source{Terminal: v.Channel, Profile: "channel"}})
		}
		q, err := protocol.ParseQty(l.Quantity)
		if err != nil {
			return nil, err
		}
		it := items[l.SKU]
		amount, err := lineAmount(it.Price, q)
		if err != nil {
			return nil, fmt.Errorf("sku %s: %w", l.SKU, err)
		}
		r := &out[i]
		r.Lines = append(r.Lines, protocol.Line{SKU: l.SKU, Description: it.Description, Quantity: l.Quantity, UnitPrice: it.Price, Amount: amount})
		r.Total += amount
	}
	for i := range out {
		out[i].Tenders = []protocol.Tender{{Type: protocol.TenderOther, Amount: out[i].Total}}
		out[i].Seal()
	}
	return out, nil
}

// lineAmount is price × quantity in minor units, rounded half away from zero.
func lineAmount(price int64, q Qty) (int64, error) {
	const unit = 1_000_000
	p, n := price, int64(q)
	if p != 0 && (n > 1<<62/abs(p) || n < -(1<<62)/abs(p)) {
		return 0, fmt.Errorf("amount of %d × %s overflows", price, q)
	}
	v := p * n
	if v >= 0 {
		return (v + unit/2) / unit, nil
	}
	return -((-v + unit/2) / unit), nil
}

func abs(v int64) int64 { return max(v, -v) }

// Reservations lists reservations (newest first).
func (e *Engine) Reservations(ctx context.Context, f store.ReservationFilter) ([]store.Reservation, error) {
	return e.st.Reservations(ctx, f)
}

// RecordShown records what a channel displays now for a SKU, for drift alerts.
func (e *Engine) RecordShown(ctx context.Context, channel, sku, shown string, at time.Time) error {
	if _, ok := e.channels[channel]; !ok {
		return fmt.Errorf("channel %q: %w", channel, ErrUnknownChannel)
	}
	q, err := protocol.ParseQty(shown)
	if err != nil {
		return fmt.Errorf("shown figure of %s on %s: %w", sku, channel, err)
	}
	return e.st.PutShown(ctx, store.Shown{Channel: channel, SKU: sku, Shown: q, At: at})
}

// audit records a change the engine made by itself.
func (e *Engine) audit(ctx context.Context, action, target, detail string) {
	if err := e.st.AddAudit(ctx, store.AuditEntry{At: e.now(), Actor: "system:availability", Action: action, Target: target,
		Detail: detail, Outcome: "ok"}); err != nil {
		e.log.Error("audit log write failed", "action", action, "target", target, "err", err)
	}
}

// Expire releases reservations older than reservations.expire_after (nothing when it is 0).
func (e *Engine) Expire(ctx context.Context) (int, error) {
	if e.cfg.Reservations.ExpireAfter <= 0 {
		return 0, nil
	}
	vs, err := e.st.ExpireReservations(ctx, e.now().Add(-e.cfg.Reservations.ExpireAfter), 0)
	for _, v := range vs {
		e.audit(ctx, "reservation expired", "reservation/"+v.Channel+"/"+v.OrderID,
			"open since "+v.CreatedAt.Format(time.RFC3339)+", availability.reservations.expire_after "+e.cfg.Reservations.ExpireAfter.String())
	}
	return len(vs), err
}

// Run expires reservations, evaluates drift and sends the webhook feed until ctx ends.
func (e *Engine) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for _, w := range e.cfg.Webhooks {
		secret, err := readSecret(w)
		if err != nil {
			return err
		}
		f := &feed{e: e, w: w, secret: secret, changed: e.Changed()}
		wg.Add(1)
		go func() { defer wg.Done(); f.run(ctx) }()
	}
	defer wg.Wait()
	tick := time.NewTicker(30 * time.Second)
	defer tick.Stop()
	for {
		if _, err := e.Expire(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("expire reservations", "err", err)
		}
		if err := e.EvaluateDrift(ctx); err != nil && ctx.Err() == nil {
			e.log.Error("evaluate drift", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-tick.C:
		}
	}
}

// EvaluateDrift raises inventory_drift for a channel and SKU whose shown figure has been off
// the truth by more than drift.threshold for longer than drift.for, and clears it when it is
// back within. The "since" of a drift is kept in memory: a restarted hub waits drift.for again.
func (e *Engine) EvaluateDrift(ctx context.Context) error {
	if e.cfg.Drift.Threshold == "" {
		return nil
	}
	th, _ := protocol.ParseQty(e.cfg.Drift.Threshold)
	shown, err := e.st.ShownFigures(ctx)
	if err != nil {
		return err
	}
	now := e.now()
	rule := "off by more than " + e.cfg.Drift.Threshold + " for " + e.cfg.Drift.For.String()
	for _, s := range shown {
		if _, ok := e.channels[s.Channel]; !ok {
			continue
		}
		res, err := e.Figures(ctx, Query{SKU: s.SKU, Channel: s.Channel})
		if err != nil {
			return err
		}
		truth := Qty(0)
		if len(res.Items) == 1 {
			truth, _ = protocol.ParseQty(res.Items[0].Channels[0].Available)
		}
		k := [2]string{s.Channel, s.SKU}
		subject := "channel:" + s.Channel
		if abs(int64(s.Shown-truth)) <= int64(th) {
			e.mu.Lock()
			delete(e.driftAt, k)
			e.mu.Unlock()
			if _, _, err := e.st.ClearAlert(ctx, alerts.InventoryDrift, subject, s.SKU, now); err != nil {
				return err
			}
			continue
		}
		e.mu.Lock()
		since, ok := e.driftAt[k]
		if !ok {
			since = now
			e.driftAt[k] = now
		}
		e.mu.Unlock()
		if now.Sub(since) < e.cfg.Drift.For {
			continue
		}
		if _, err := e.st.RaiseAlert(ctx, store.Alert{Kind: alerts.InventoryDrift, Store: subject, Terminal: s.SKU, Since: since,
			Detail: "channel " + s.Channel + " shows " + s.Shown.String() + " of " + s.SKU + " while the truth is " + truth.String() +
				" (reported " + s.At.UTC().Format(time.RFC3339) + ")", Threshold: rule, LastEvaluated: now}); err != nil {
			return err
		}
	}
	return nil
}
