// Package inventory pushes the ERP's items, prices and stock to the stores' agents.
//
// # Basics
//
// Each cycle (every Options.Interval, on Refresh, and on a flat-file arrival found by the pull)
// the Service pulls the item master and on-hand per store from an erp.StockSource and stores
// it (Stock.PutERPStock) before a flat-file source moves its files to processed/.
// Then, per store, it computes
//
//	available(SKU) = ERP on-hand − Σ signed quantity of the store's sale and return lines whose
//	                 posting is not done, or was done after the on-hand was pulled
//
// (returns are negative quantities, so they add back), compares the items with the ones last
// saved, and if any changed saves them as version+1 (a compare-and-set, so hub replicas do not
// fork the numbering). The version also moves, with no item changed, when the store's stream
// progress moved past sale or return lines: the message's Epoch and AppliedThrough say which of
// the agent's records the figures account for, and the agent's overlay subtracts only later
// ones.
//
// Sending follows Decide: an agent that reported the previous version gets a delta with only
// the changed items; an agent that reported anything else gets one snapshot of the latest
// version; an offline agent gets nothing until its status says online again (its MQTT session
// is clean, so messages to it while offline are lost anyway). An agent offline through 500
// versions therefore catches up with one snapshot. Agent statuses come from ingest (OnStatus,
// non-blocking) and, for statuses another hub replica received, from the store each cycle.
//
// # Caveats
//
//   - A flat-file on-hand figure is as of the file's arrival: postings done after that count
//     as not yet in the ERP until the next on-hand file, which is right if the ERP's export
//     reflects postings it received before it; if the ERP exports late, available is low by
//     what it had not yet booked.
//   - Computation is per store over all its items: O(items + unposted lines) per cycle.
//   - Versions are per store and survive restarts (the store); a store whose hub database was
//     lost restarts at 1 and the agent, holding a higher version, ignores it: restore the
//     database or delete the agent's inventory.db.
package inventory

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/erp"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// Stock is the inventory push's data in the hub's store; safe for concurrent use, and with
// PostgreSQL by several hub processes (SaveInventory is a compare-and-set on the version).
type Stock interface {
	// PutERPStock durably stores a pull from the ERP: items, when not nil, replace the whole
	// item master; each store listed in onHand has its on-hand replaced by its map, read from
	// the ERP at pulledAt. One transaction.
	PutERPStock(ctx context.Context, items []store.MasterItem, onHand map[string]map[string]string, pulledAt time.Time) error
	// ERPStock returns the stored item master (ordered by SKU) and store's on-hand.
	ERPStock(ctx context.Context, store string) (store.ERPStock, error)
	// UnpostedRecords returns what the store's ERP on-hand, pulled at pulledAt, does not reflect
	// yet (store.ErrNotFound for an unknown store).
	UnpostedRecords(ctx context.Context, store string, pulledAt time.Time) (store.Unposted, error)
	// InventoryItems returns the store's last saved state and its items, ordered by SKU.
	InventoryItems(ctx context.Context, store string) (store.InventoryState, []protocol.Item, error)
	// SaveInventory saves version st.Version for store on top of base (the version the caller
	// read); it returns store.ErrVersionConflict if the stored version is not base.
	SaveInventory(ctx context.Context, store string, base uint64, st store.InventoryState, changed []protocol.Item, removed []string) error
	// InventoryVersions returns every store's saved state, by store id.
	InventoryVersions(ctx context.Context) (map[string]store.InventoryState, error)
}

// Streams is what the Service reads of the stores and their records: agent statuses from
// other hub replicas, and stream progress past sale and return lines.
type Streams interface {
	ListStores(ctx context.Context) ([]store.StoreInfo, error)
	Records(ctx context.Context, store, epoch string, afterSeq uint64, limit int) ([]protocol.Record, error)
}

// Store is what the Service needs of the hub's store. It has eight methods because a cycle
// reads the stores and their records (Streams) besides the stock it keeps (Stock).
type Store interface {
	Stock
	Streams
}

// Publisher sends a message to agents (QoS 1, not retained). Safe for concurrent use.
type Publisher interface {
	Publish(topic string, payload []byte) error
}

// Options configure a Service.
type Options struct {
	// Interval between cycles (default 5m).
	Interval time.Duration
	// ResendAfter is how long a published version counts as held by the agent before its
	// status confirms it (default 15s); after that a lagging agent gets a snapshot.
	ResendAfter time.Duration
	Logger      *slog.Logger // nil discards
	Registry    prometheus.Registerer
}

// Service runs the inventory push. Create with New, run with Run; Refresh and OnStatus are
// safe for concurrent use.
type Service struct {
	st   Store
	src  erp.StockSource // nil: only what is stored is used
	pub  Publisher
	opts Options
	log  *slog.Logger
	m    metrics

	wake chan struct{} // OnStatus: some agent's view changed

	vmu   sync.Mutex // guards views and dirty
	views map[string]*AgentView
	dirty map[string]bool

	mu     sync.Mutex // serialises cycles and reactions; guards latest
	latest map[string]store.InventoryState
}

type metrics struct {
	messages *prometheus.CounterVec
	versions prometheus.Counter
	errors   prometheus.Counter
	cycle    prometheus.Histogram
}

// New returns a Service. src may be nil (no ERP pulls: only stored stock is used).
func New(st Store, src erp.StockSource, pub Publisher, o Options) *Service {
	if o.Interval <= 0 {
		o.Interval = 5 * time.Minute
	}
	if o.ResendAfter <= 0 {
		o.ResendAfter = 15 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Service{st: st, src: src, pub: pub, opts: o, log: o.Logger.With("component", "inventory"),
		wake: make(chan struct{}, 1), views: map[string]*AgentView{}, dirty: map[string]bool{}}
	s.m = metrics{
		messages: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lanebridge_hub_inventory_messages_total",
			Help: "Inventory messages published to agents, by kind (snapshot, delta)."}, []string{"kind"}),
		versions: prometheus.NewCounter(prometheus.CounterOpts{Name: "lanebridge_hub_inventory_versions_total",
			Help: "Inventory versions saved (store item states that changed)."}),
		errors: prometheus.NewCounter(prometheus.CounterOpts{Name: "lanebridge_hub_inventory_errors_total",
			Help: "Failed ERP pulls, store computations and publishes."}),
		cycle: prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lanebridge_hub_inventory_cycle_seconds",
			Help: "Time of one inventory cycle (pull, compute, publish).", Buckets: prometheus.ExponentialBuckets(0.001, 2, 16)}),
	}
	s.m.messages.WithLabelValues(protocol.InventorySnapshot)
	s.m.messages.WithLabelValues(protocol.InventoryDelta)
	if o.Registry != nil {
		o.Registry.MustRegister(s.m.messages, s.m.versions, s.m.errors, s.m.cycle)
	}
	return s
}

// OnStatus records an agent's status (its InventoryVersion and whether it is online). It never
// blocks: ingest calls it on its worker goroutine.
func (s *Service) OnStatus(st protocol.Status) {
	s.vmu.Lock()
	v := s.views[st.Store]
	if v == nil {
		v = &AgentView{}
		s.views[st.Store] = v
	}
	v.Online = st.State == "online"
	v.Reported = st.InventoryVersion
	s.dirty[st.Store] = true
	s.vmu.Unlock()
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

// StoreResult is one store's outcome of a cycle.
type StoreResult struct {
	Store   string `json:"store"`
	Version uint64 `json:"version"`
	// NewVersion: this cycle saved Version; Changed and Removed count its items.
	NewVersion bool   `json:"new_version"`
	Changed    int    `json:"changed"`
	Removed    int    `json:"removed"`
	Sent       string `json:"sent,omitempty"` // snapshot, delta or empty
	Error      string `json:"error,omitempty"`
}

// Result is the outcome of a cycle.
type Result struct {
	Pulled    bool          `json:"pulled"` // the ERP returned data that was stored
	PullError string        `json:"pull_error,omitempty"`
	Stores    []StoreResult `json:"stores"`
}

// Run runs cycles every Interval and reacts to agent statuses until ctx is done.
func (s *Service) Run(ctx context.Context) error {
	s.log.Info("inventory push started", "interval", s.opts.Interval)
	if _, err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
		s.log.Warn("inventory cycle failed", "err", err)
	}
	t := time.NewTicker(s.opts.Interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
			if _, err := s.Refresh(ctx); err != nil && ctx.Err() == nil {
				s.log.Warn("inventory cycle failed", "err", err)
			}
		case <-s.wake:
			s.react(ctx)
		}
	}
}

// Refresh runs one cycle now: pull, compute, save and publish. Cycles never overlap.
func (s *Service) Refresh(ctx context.Context) (Result, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	start := time.Now()
	defer func() { s.m.cycle.Observe(time.Since(start).Seconds()) }()
	var res Result
	if err := s.loadLatest(ctx); err != nil {
		return res, err
	}
	infos, err := s.st.ListStores(ctx)
	if err != nil {
		return res, fmt.Errorf("inventory cycle: %w", err)
	}
	s.mergeStatuses(infos)
	ids := make([]string, len(infos))
	for i, in := range infos {
		ids[i] = in.ID
	}
	if s.src != nil {
		pulled, err := s.pull(ctx, ids)
		res.Pulled = pulled
		if err != nil {
			// Stored stock is still the best figure; unposted sales still move availability.
			s.m.errors.Inc()
			res.PullError = err.Error()
			s.log.Warn("erp stock pull failed; using last pull", "err", err)
		}
	}
	for _, id := range ids {
		r, err := s.updateStore(ctx, id)
		if err != nil {
			if ctx.Err() != nil {
				return res, ctx.Err()
			}
			s.m.errors.Inc()
			r.Error = err.Error()
			s.log.Warn("update store inventory failed", "store", id, "err", err)
		}
		res.Stores = append(res.Stores, r)
	}
	return res, nil
}

func (s *Service) loadLatest(ctx context.Context) error {
	vs, err := s.st.InventoryVersions(ctx)
	if err != nil {
		return fmt.Errorf("inventory cycle: %w", err)
	}
	s.latest = vs
	return nil
}

// mergeStatuses takes agent statuses from the store for stores this process has no newer
// view of (a status received by another hub replica, or before a restart).
func (s *Service) mergeStatuses(infos []store.StoreInfo) {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	for _, in := range infos {
		if in.Status == nil {
			continue
		}
		v := s.views[in.ID]
		if v == nil {
			v = &AgentView{}
			s.views[in.ID] = v
		}
		v.Online = in.Status.State == "online"
		v.Reported = in.Status.InventoryVersion
	}
}

// pull reads the ERP and stores what it said; it reports whether anything was stored.
func (s *Service) pull(ctx context.Context, ids []string) (bool, error) {
	at := clock.Now()
	u, err := s.src.Pull(ctx, ids)
	if err != nil {
		return false, fmt.Errorf("pull: %w", err)
	}
	if u.Items == nil && len(u.OnHand) == 0 {
		return false, nil
	}
	var items []store.MasterItem
	if u.Items != nil {
		items = make([]store.MasterItem, len(u.Items))
		for i, it := range u.Items {
			items[i] = store.MasterItem{SKU: it.SKU, Description: it.Description, Price: it.Price, TaxCode: it.TaxCode, Status: it.Status}
		}
	}
	if err := s.st.PutERPStock(ctx, items, u.OnHand, at); err != nil {
		return false, err
	}
	if u.Commit != nil {
		if err := u.Commit(); err != nil {
			// Stored already: reading the files again later stores the same figures.
			return true, fmt.Errorf("commit pull: %w", err)
		}
	}
	s.log.Debug("erp stock stored", "items", len(u.Items), "stores", len(u.OnHand))
	return true, nil
}

// maxMovedScan bounds how many records updateStore reads to see whether progress moved past
// stock lines; beyond it the version moves anyway.
const maxMovedScan = 20_000

// updateStore computes one store, saves a new version if anything changed and publishes.
func (s *Service) updateStore(ctx context.Context, id string) (StoreResult, error) {
	r := StoreResult{Store: id}
	stock, err := s.st.ERPStock(ctx, id)
	if err != nil {
		return r, err
	}
	prev, prevItems, err := s.st.InventoryItems(ctx, id)
	if err != nil {
		return r, err
	}
	r.Version = prev.Version
	if len(stock.Items) == 0 && len(stock.OnHand) == 0 && prev.Version == 0 {
		return r, nil // nothing known about this store yet
	}
	u, err := s.st.UnpostedRecords(ctx, id, stock.PulledAt)
	if err != nil {
		return r, err
	}
	next, err := Build(stock, u.Records)
	if err != nil {
		return r, fmt.Errorf("compute %s: %w", id, err)
	}
	changed, removed := Diff(prevItems, next)
	moved := false
	if len(changed) == 0 && len(removed) == 0 {
		moved, err = s.progressMoved(ctx, id, prev, u)
		if err != nil {
			return r, err
		}
	}
	if len(changed) == 0 && len(removed) == 0 && !moved && prev.Version > 0 {
		s.send(ctx, id, &r, false, 0, store.InventoryState{}, nil, nil)
		return r, nil
	}
	st := store.InventoryState{Version: prev.Version + 1, Epoch: u.Epoch, AppliedThrough: u.AppliedThrough,
		Items: len(next), UpdatedAt: clock.Now().UTC()}
	if err := s.st.SaveInventory(ctx, id, prev.Version, st, changed, removed); err != nil {
		if errors.Is(err, store.ErrVersionConflict) {
			s.log.Info("inventory saved first by another hub", "store", id)
			return r, nil
		}
		return r, err
	}
	s.m.versions.Inc()
	s.latest[id] = st
	r.Version, r.NewVersion, r.Changed, r.Removed = st.Version, true, len(changed), len(removed)
	s.log.Debug("inventory version saved", "store", id, "version", st.Version, "changed", len(changed), "removed", len(removed),
		"epoch", st.Epoch, "applied_through", st.AppliedThrough)
	s.send(ctx, id, &r, true, prev.Version, st, changed, removed)
	return r, nil
}

// progressMoved reports whether the store's stream moved past sale or return lines since the
// version prev: the agent's overlay must then stop subtracting them.
func (s *Service) progressMoved(ctx context.Context, id string, prev store.InventoryState, u store.Unposted) (bool, error) {
	if u.Epoch == "" || (u.Epoch == prev.Epoch && u.AppliedThrough <= prev.AppliedThrough) {
		return false, nil
	}
	if u.Epoch != prev.Epoch {
		return true, nil
	}
	after := prev.AppliedThrough
	for after < u.AppliedThrough {
		if after-prev.AppliedThrough > maxMovedScan {
			return true, nil
		}
		recs, err := s.st.Records(ctx, id, u.Epoch, after, 1000)
		if err != nil {
			return false, err
		}
		if len(recs) == 0 {
			return false, nil
		}
		for i := range recs {
			if recs[i].Seq > u.AppliedThrough {
				return false, nil
			}
			sold, err := NetSold(recs[i : i+1])
			if err != nil {
				return false, err
			}
			for _, q := range sold {
				if q != 0 {
					return true, nil
				}
			}
			after = recs[i].Seq
		}
	}
	return false, nil
}

// send publishes what Decide says to store id's agent. fresh: st was just saved on base with
// changed and removed.
func (s *Service) send(ctx context.Context, id string, r *StoreResult, fresh bool, base uint64, st store.InventoryState, changed []protocol.Item, removed []string) {
	latest := s.latest[id]
	s.vmu.Lock()
	v := AgentView{}
	if p := s.views[id]; p != nil {
		v = *p
	}
	delete(s.dirty, id)
	s.vmu.Unlock()
	now := clock.Now()
	act := Decide(v, latest.Version, base, fresh, now, s.opts.ResendAfter)
	var msg protocol.Inventory
	switch act {
	case SendNothing:
		return
	case SendDelta:
		msg = Delta(id, base, st, changed, removed)
	case SendSnapshot:
		cur, items, err := s.st.InventoryItems(ctx, id)
		if err != nil {
			s.m.errors.Inc()
			s.log.Warn("read inventory snapshot failed", "store", id, "err", err)
			return
		}
		msg = Snapshot(id, cur, items)
	}
	payload, err := json.Marshal(msg)
	if err != nil {
		s.m.errors.Inc()
		s.log.Error("encode inventory message failed", "store", id, "err", err)
		return
	}
	if err := s.pub.Publish(protocol.InventoryTopic(id), payload); err != nil {
		s.m.errors.Inc()
		s.log.Warn("publish inventory failed; next status retries", "store", id, "kind", msg.Kind, "err", err)
		return
	}
	s.m.messages.WithLabelValues(msg.Kind).Inc()
	s.vmu.Lock()
	if p := s.views[id]; p != nil {
		p.Sent, p.SentAt = msg.Version, now
	}
	s.vmu.Unlock()
	if r != nil {
		r.Sent = msg.Kind
	}
	s.log.Info("inventory published", "store", id, "kind", msg.Kind, "version", msg.Version, "base_version", msg.BaseVersion,
		"items", len(msg.Items), "removed", len(msg.Removed), "agent_version", v.Reported, "applied_through", msg.AppliedThrough)
}

// react sends snapshots to agents whose status changed and who lack the latest version.
func (s *Service) react(ctx context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.latest == nil {
		if err := s.loadLatest(ctx); err != nil {
			s.log.Warn("read inventory versions failed", "err", err)
			return
		}
	}
	s.vmu.Lock()
	ids := make([]string, 0, len(s.dirty))
	for id := range s.dirty {
		ids = append(ids, id)
	}
	s.vmu.Unlock()
	slices.Sort(ids)
	for _, id := range ids {
		s.send(ctx, id, nil, false, 0, store.InventoryState{}, nil, nil)
	}
}
