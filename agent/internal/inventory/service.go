// Package inventory keeps the store agent's item master: the items, prices and stock the hub
// pushes on lanebridge/v1/{store}/down/inventory, applied one message per bbolt transaction in
// data_dir/inventory.db, plus a local overlay of the agent's own sales since the hub's figures.
//
// # Basics
//
// A snapshot replaces the whole item master; a delta applies only on top of exactly its
// BaseVersion. A delta on another base is ignored and the agent reports its version
// (protocol.Status.InventoryVersion) so the hub sends a snapshot; a snapshot not newer than the
// current version is ignored as late. The hub's Available figures account for the agent's
// records of Epoch up to AppliedThrough; the overlay subtracts the quantities of the agent's
// own sale and return lines (not voided; returns are negative) captured after that:
//
//	available(SKU) = Available at version V − Σ quantity of own lines with seq > AppliedThrough
//
// The overlay is a per-SKU counter folded in incrementally from the spool (never a rescan per
// lookup), rebuilt from the spool at start and whenever a new version is applied.
//
// # Caveats
//
//   - The item master lives in its own bbolt file, not in the spool: a 100k-item snapshot
//     rewrites every page of it, which would bloat the spool file (bbolt files never shrink)
//     and lengthen the spool's hash check at start; and it is derived data the hub can always
//     send again, so a corrupt inventory.db is moved aside (with an alarm) and the agent starts
//     at version 0, asking for a snapshot, while a corrupt spool is a data-loss alarm.
//   - Versions only go up. A hub that lost its state and restarted numbering below the agent's
//     version must send a snapshot with a higher version; the agent ignores lower ones.
//   - If the message's Epoch is not the spool's epoch (the spool was recreated), every retained
//     record of the spool's epoch is subtracted. Records purged from the spool (acknowledged and
//     past retention) can no longer be subtracted.
//   - Quantities are fixed-point with six decimals (the protocol's maximum); sums beyond
//     ±9.2e12 units fail with ErrOverflow rather than wrap.
package inventory

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// View is what a lookup returns (GET /inventory/{sku}, lanebridge-agent inventory).
type View struct {
	SKU         string `json:"sku"`
	Description string `json:"description"`
	Price       int64  `json:"price"`
	TaxCode     string `json:"tax_code,omitempty"`
	Status      string `json:"status,omitempty"`
	OnHand      string `json:"on_hand"`
	// Available is the hub's Available at Version minus LocalSold.
	Available string `json:"available"`
	Version   uint64 `json:"version"`
	// HubAvailable is the Available figure as the hub sent it.
	HubAvailable string `json:"hub_available"`
	// LocalSold is the net quantity of the agent's own lines captured after AppliedThrough.
	LocalSold      string    `json:"local_sold"`
	AppliedThrough uint64    `json:"applied_through"`
	AsOf           time.Time `json:"as_of,omitzero"`
}

// Options configure a Service.
type Options struct {
	// PLU, when set, is rewritten after every applied message.
	PLU *PLUFile
	// OnChange is called from Run after a message was applied or ignored, so the agent can
	// publish its status (with InventoryVersion) promptly. It must not block.
	OnChange func()
	Logger   *slog.Logger
	// Queue is the capacity of the message channel (default 64).
	Queue int
	// CatchUp is how often Run folds newly captured records into the overlay (default 5s);
	// lookups also catch up, so this only bounds the work a lookup does.
	CatchUp time.Duration
}

// Counters for status and tests.
type Counters struct {
	Applied, IgnoredBase, IgnoredStale, Failed atomic.Uint64
}

// Service owns the item master and its overlay. Lookup is safe for concurrent use; messages are
// applied by Run, one at a time, in the order they were queued.
type Service struct {
	db   *DB
	j    Journal
	opts Options
	log  *slog.Logger
	in   chan *protocol.Inventory

	mu sync.Mutex // guards ov, and orders Apply against lookups
	ov overlay

	// parked holds deltas whose base is ahead of the current version, by BaseVersion: paho
	// delivers messages on concurrent goroutines, so a delta can overtake the message it
	// builds on. Only Apply touches it (Run's goroutine).
	parked map[uint64]*protocol.Inventory

	version atomic.Uint64
	C       Counters
}

// maxParked bounds the deltas kept while waiting for their base.
const maxParked = 64

// New builds the service over an open item master and the agent's journal (nil: no overlay)
// and builds the overlay from the journal.
func New(db *DB, j Journal, opts Options) (*Service, error) {
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.Queue <= 0 {
		opts.Queue = 64
	}
	if opts.CatchUp <= 0 {
		opts.CatchUp = 5 * time.Second
	}
	s := &Service{db: db, j: j, opts: opts, log: opts.Logger.With("component", "inventory"),
		in: make(chan *protocol.Inventory, opts.Queue), parked: map[uint64]*protocol.Inventory{}}
	m, err := db.Meta()
	if err != nil {
		return nil, err
	}
	s.version.Store(m.Version)
	s.ov.reset(m, journalEpoch(j))
	if err := s.ov.catchUp(j); err != nil {
		return nil, err
	}
	return s, nil
}

func journalEpoch(j Journal) string {
	if j == nil {
		return ""
	}
	return j.Epoch()
}

// Messages is where the uplink hands decoded inventory messages; it must send without
// blocking (select with default) and may drop a message when the queue is full: the agent then
// reports an older version and the hub sends a snapshot.
func (s *Service) Messages() chan<- *protocol.Inventory { return s.in }

// Version returns the current item master version (0: none).
func (s *Service) Version() uint64 { return s.version.Load() }

// Alarms returns the item master's alarms.
func (s *Service) Alarms() []string { return s.db.Alarms() }

// Run applies queued messages until ctx is done. It returns nil on a normal stop and an error
// wrapping ErrFailed when a commit failed (the process must restart).
func (s *Service) Run(ctx context.Context) error {
	t := time.NewTicker(s.opts.CatchUp)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case m := <-s.in:
			if _, err := s.Apply(m); err != nil {
				if errors.Is(err, ErrFailed) {
					return err
				}
				s.log.Error("inventory message not applied", "version", m.Version, "kind", m.Kind, "err", err)
			}
			if s.opts.OnChange != nil {
				s.opts.OnChange()
			}
		case <-t.C:
			s.mu.Lock()
			err := s.ov.catchUp(s.j)
			s.mu.Unlock()
			if err != nil {
				s.log.Warn("cannot fold captured records into inventory overlay", "err", err)
			}
		}
	}
}

// Apply applies one message (see DB.Apply), rebuilds the overlay on a new version and rewrites
// the PLU file. A delta whose base is ahead of the current version is also kept (up to
// maxParked) and applied if its base arrives later, since deliveries can overtake each other;
// it is still reported as IgnoredBase. Run calls Apply; tests may call it directly. Not safe
// for concurrent use with itself.
func (s *Service) Apply(m *protocol.Inventory) (Outcome, error) {
	out, err := s.apply(m)
	if err != nil {
		return out, err
	}
	if out == IgnoredBase && m.BaseVersion > s.Version() {
		if len(s.parked) >= maxParked {
			s.parked = map[uint64]*protocol.Inventory{} // far behind: a snapshot is the way back
		}
		s.parked[m.BaseVersion] = m
	}
	// Apply parked deltas that now fit, and forget those that never will.
	for {
		v := s.Version()
		for base := range s.parked {
			if base < v {
				delete(s.parked, base)
			}
		}
		p, ok := s.parked[v]
		if !ok {
			return out, nil
		}
		delete(s.parked, v)
		if _, err := s.apply(p); err != nil {
			return out, err
		}
		s.log.Info("inventory delta applied after its base arrived", "version", p.Version)
	}
}

func (s *Service) apply(m *protocol.Inventory) (Outcome, error) {
	start := time.Now()
	s.mu.Lock()
	out, meta, err := s.db.Apply(m)
	if err != nil {
		s.mu.Unlock()
		s.C.Failed.Add(1)
		return out, err
	}
	if out != Applied {
		s.mu.Unlock()
		if out == IgnoredBase {
			s.C.IgnoredBase.Add(1)
		} else {
			s.C.IgnoredStale.Add(1)
		}
		s.log.Info("inventory message ignored; reporting our version", "kind", m.Kind, "version", m.Version,
			"base_version", m.BaseVersion, "our_version", meta.Version, "outcome", out.String())
		return out, nil
	}
	s.version.Store(meta.Version)
	s.ov.reset(meta, journalEpoch(s.j))
	oerr := s.ov.catchUp(s.j)
	sold := maps.Clone(s.ov.sold)
	s.mu.Unlock()
	s.C.Applied.Add(1)
	s.log.Info("inventory applied", "kind", m.Kind, "version", meta.Version, "items", meta.Items,
		"changed", len(m.Items), "removed", len(m.Removed), "applied_through", meta.AppliedThrough,
		"elapsed", time.Since(start).Round(time.Millisecond))
	if oerr != nil {
		// The version is applied; lookups retry the catch-up and report the error.
		s.log.Warn("cannot fold captured records into inventory overlay", "err", oerr)
	}
	if s.opts.PLU != nil && s.opts.PLU.Path != "" {
		n, err := writePLU(s.opts.PLU, s.db, func(it protocol.Item) (Qty, error) {
			base, err := ParseQty(it.Available)
			if err != nil {
				return 0, err
			}
			return base.Sub(sold[it.SKU])
		})
		if err != nil {
			s.log.Error("plu file not written", "path", s.opts.PLU.Path, "err", err)
		} else {
			s.log.Info("plu file written", "path", s.opts.PLU.Path, "items", n, "version", meta.Version)
		}
	}
	return out, nil
}

// Lookup returns the item sku with its available quantity, folding in any records captured
// since the last lookup first. Errors wrap ErrNoItemMaster or ErrUnknownSKU when that is why.
func (s *Service) Lookup(sku string) (View, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if err := s.ov.catchUp(s.j); err != nil {
		return View{}, err
	}
	it, m, err := s.db.Item(sku)
	if err != nil {
		return View{}, err
	}
	return view(it, m, &s.ov)
}

// LookupOnce answers a lookup from an item master and journal opened read-only (the agent is
// not running): it builds the overlay for this one call.
func LookupOnce(db *DB, j Journal, sku string) (View, error) {
	it, m, err := db.Item(sku)
	if err != nil {
		return View{}, err
	}
	var ov overlay
	ov.reset(m, journalEpoch(j))
	if err := ov.catchUp(j); err != nil {
		return View{}, err
	}
	return view(it, m, &ov)
}

func view(it protocol.Item, m Meta, ov *overlay) (View, error) {
	onHand, err := ParseQty(it.OnHand)
	if err != nil {
		return View{}, fmt.Errorf("sku %q: on_hand: %w", it.SKU, err)
	}
	base, err := ParseQty(it.Available)
	if err != nil {
		return View{}, fmt.Errorf("sku %q: available: %w", it.SKU, err)
	}
	avail, err := ov.available(it.SKU, base)
	if err != nil {
		return View{}, fmt.Errorf("sku %q: %w", it.SKU, err)
	}
	return View{
		SKU: it.SKU, Description: it.Description, Price: it.Price, TaxCode: it.TaxCode, Status: it.Status,
		OnHand: onHand.String(), Available: avail.String(), Version: m.Version,
		HubAvailable: base.String(), LocalSold: ov.sold[it.SKU].String(),
		AppliedThrough: m.AppliedThrough, AsOf: m.AsOf,
	}, nil
}
