package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// ErrVersionConflict is returned by SaveInventory when the store's inventory version is not the
// base the caller computed from (another hub replica saved first): recompute and retry.
var ErrVersionConflict = errors.New("inventory version changed concurrently")

// MasterItem is one entry of the ERP's item master as stored.
type MasterItem struct {
	SKU         string `json:"sku"`
	Description string `json:"description,omitempty"`
	Price       int64  `json:"price"`
	TaxCode     string `json:"tax_code,omitempty"`
	Status      string `json:"status,omitempty"`
}

// ERPStock is what the ERP said about one store: the item master and the store's on-hand.
type ERPStock struct {
	Items  []MasterItem      // the whole item master, by SKU
	OnHand map[string]string // sku -> exact decimal on-hand in this store
	// PulledAt is when the store's on-hand was read from the ERP (zero: never): postings
	// finished after it may not be in OnHand yet.
	PulledAt time.Time
}

// Unposted is what the ERP's on-hand of a store does not yet reflect, read in one snapshot:
// the store's current (latest) stream and its progress, and every stored sale and return whose
// posting is not done (pending or rejected) or was done at or after the time the on-hand was
// pulled, of any epoch.
type Unposted struct {
	Epoch          string
	AppliedThrough uint64
	Records        []protocol.Record
}

// InventoryState is the version last saved for a store (zero: none yet).
type InventoryState struct {
	Version        uint64    `json:"version"`
	Epoch          string    `json:"epoch,omitempty"`
	AppliedThrough uint64    `json:"applied_through,omitempty"`
	Items          int       `json:"items"`
	UpdatedAt      time.Time `json:"updated_at,omitzero"`
}

// inChunk bounds the values of one IN (…) list.
const inChunk = 500

// PutERPStock durably stores a pull from the ERP: items, when not nil, replace the whole item
// master (the ERP's first entry of a SKU is kept); each store listed in onHand has its on-hand
// replaced by its map, read from the ERP at pulledAt. One transaction.
func (s *DB) PutERPStock(ctx context.Context, items []MasterItem, onHand map[string]map[string]string, pulledAt time.Time) error {
	err := s.write(ctx, func(t tx) error {
		now := s.now()
		if items != nil {
			old, err := masterStatuses(ctx, t)
			if err != nil {
				return err
			}
			if err := s.touch(ctx, t, statusChanges(old, items)); err != nil {
				return err
			}
			if _, err := t.exec(ctx, `DELETE FROM erp_items`); err != nil {
				return err
			}
			rows := make([][]any, 0, len(items))
			seen := make(map[string]bool, len(items))
			for _, it := range items {
				if !seen[it.SKU] {
					seen[it.SKU] = true
					rows = append(rows, []any{it.SKU, it.Description, it.Price, it.TaxCode, it.Status})
				}
			}
			if err := t.insert(ctx, "erp_items", []string{"sku", "description", "price", "tax_code", "status"}, rows); err != nil {
				return err
			}
		}
		at := s.ts(pulledAt)
		pl := &pullPlan{onHand: map[availKey]int64{}, deltas: map[availKey]availDelta{}}
		for _, st := range slices.Sorted(maps.Keys(onHand)) {
			if _, err := t.exec(ctx, `DELETE FROM erp_onhand WHERE store = ?`, st); err != nil {
				return fmt.Errorf("%s: %w", st, err)
			}
			rows := make([][]any, 0, len(onHand[st]))
			for sku, q := range onHand[st] {
				rows = append(rows, []any{st, sku, q, at})
			}
			if err := t.insert(ctx, "erp_onhand", []string{"store", "sku", "on_hand", "pulled_at"}, rows); err != nil {
				return fmt.Errorf("%s: %w", st, err)
			}
			if err := s.planPull(ctx, t, pl, st, onHand[st], pulledAt, now); err != nil {
				return err
			}
		}
		return s.applyPull(ctx, t, pl)
	})
	return wrapf(err, "put erp stock")
}

// statusChanges is the SKUs whose item master status differs between old and items (the
// first entry of a SKU counts), for the availability versions.
func statusChanges(old map[string]string, items []MasterItem) []string {
	var out []string
	seen := make(map[string]bool, len(items))
	for _, it := range items {
		if seen[it.SKU] {
			continue
		}
		seen[it.SKU] = true
		if st, ok := old[it.SKU]; !ok || st != it.Status {
			out = append(out, it.SKU)
		}
	}
	for sku := range old {
		if !seen[sku] {
			out = append(out, sku)
		}
	}
	return out
}

// ERPStock returns the stored item master (ordered by SKU) and store's on-hand.
func (s *DB) ERPStock(ctx context.Context, store string) (ERPStock, error) {
	out := ERPStock{OnHand: map[string]string{}}
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT sku, description, price, tax_code, status FROM erp_items ORDER BY sku`)
		if out.Items, err = scanAll(rs, err, func(r rows, it *MasterItem) error {
			return r.Scan(&it.SKU, &it.Description, &it.Price, &it.TaxCode, &it.Status)
		}); err != nil {
			return err
		}
		rs, err = t.query(ctx, `SELECT sku, on_hand, pulled_at FROM erp_onhand WHERE store = ?`, store)
		return each(rs, err, func(r rows) error {
			var sku, q string
			var at time.Time
			err := r.Scan(&sku, &q, scanTime{&at})
			out.OnHand[sku] = q
			if at.After(out.PulledAt) {
				out.PulledAt = at
			}
			return err
		})
	})
	if err != nil {
		return ERPStock{}, fmt.Errorf("erp stock of %s: %w", store, err)
	}
	return out, nil
}

// UnpostedRecords returns what the store's ERP on-hand, pulled at pulledAt, does not reflect
// yet (ErrNotFound for an unknown store).
func (s *DB) UnpostedRecords(ctx context.Context, store string, pulledAt time.Time) (Unposted, error) {
	var out Unposted
	err := s.read(ctx, func(t tx) error {
		if err := mustStore(ctx, t, store); err != nil {
			return err
		}
		err := t.queryRow(ctx, `SELECT epoch, applied_through FROM streams WHERE store = ? ORDER BY id DESC LIMIT 1`, store).
			Scan(&out.Epoch, &out.AppliedThrough)
		if err != nil && !errors.Is(err, sql.ErrNoRows) {
			return fmt.Errorf("progress: %w", err)
		}
		rs, err := t.query(ctx, `SELECT COALESCE(r.body, p.body) FROM postings p
			LEFT JOIN records r ON r.store = p.store AND r.epoch = p.epoch AND r.seq = p.seq
			WHERE (r.body IS NOT NULL OR p.body IS NOT NULL) AND p.store = ? AND (p.state IN ('pending', 'rejected') OR (p.state = 'done' AND p.posted_at >= ?)) ORDER BY p.id`,
			store, s.ts(pulledAt))
		out.Records, err = scanAll(rs, err, scanRecord)
		return err
	})
	if err != nil {
		return Unposted{}, fmt.Errorf("unposted records of %s: %w", store, err)
	}
	return out, nil
}

const inventoryStateCols = `version, epoch, applied_through, items, updated_at`

func scanInventoryState(r row, extra ...any) (InventoryState, error) {
	var st InventoryState
	err := r.Scan(append(extra, &st.Version, &st.Epoch, &st.AppliedThrough, &st.Items, scanTime{&st.UpdatedAt})...)
	return st, err
}

// InventoryItems returns the store's last saved state and its items, ordered by SKU.
func (s *DB) InventoryItems(ctx context.Context, store string) (InventoryState, []protocol.Item, error) {
	var st InventoryState
	var items []protocol.Item
	err := s.read(ctx, func(t tx) error {
		var err error
		st, err = scanInventoryState(t.queryRow(ctx, `SELECT `+inventoryStateCols+` FROM inventory_versions WHERE store = ?`, store))
		if errors.Is(err, sql.ErrNoRows) {
			st, items = InventoryState{}, []protocol.Item{}
			return nil
		}
		if err != nil {
			return err
		}
		rs, err := t.query(ctx, `SELECT sku, description, price, tax_code, status, on_hand, available
			FROM inventory_items WHERE store = ? ORDER BY sku`, store)
		items, err = scanAll(rs, err, func(r rows, it *protocol.Item) error {
			return r.Scan(&it.SKU, &it.Description, &it.Price, &it.TaxCode, &it.Status, &it.OnHand, &it.Available)
		})
		return err
	})
	if err != nil {
		return InventoryState{}, nil, fmt.Errorf("inventory of %s: %w", store, err)
	}
	return st, items, nil
}

var inventoryItemCols = []string{"store", "sku", "description", "price", "tax_code", "status", "on_hand", "available", "version"}

// SaveInventory saves version st.Version for store on top of base (the version the caller
// read): changed items are upserted, removed SKUs deleted, in one transaction. It returns
// ErrVersionConflict if the stored version is not base (another replica saved first; the row
// is locked on PostgreSQL), and requires st.Version > base.
func (s *DB) SaveInventory(ctx context.Context, store string, base uint64, st InventoryState, changed []protocol.Item, removed []string) error {
	if st.Version <= base || st.Version > 1<<62 || st.AppliedThrough > 1<<62 {
		return fmt.Errorf("save inventory of %s: version %d is not above base %d, or out of range", store, st.Version, base)
	}
	err := s.write(ctx, func(t tx) error {
		// The row exists at version 0 before it is locked, so that replicas saving a store's
		// first version serialise on it too (FOR UPDATE locks no row that is not there).
		if _, err := t.exec(ctx, `INSERT INTO inventory_versions (store, version, epoch, applied_through, items, updated_at)
			VALUES (?, 0, '', 0, 0, ?) ON CONFLICT (store) DO NOTHING`, store, s.now()); err != nil {
			return err
		}
		var cur uint64
		if err := t.queryRow(ctx, `SELECT version FROM inventory_versions WHERE store = ?`+s.d.forUpdate, store).Scan(&cur); err != nil {
			return err
		}
		if cur != base {
			return fmt.Errorf("stored version %d, base %d: %w", cur, base, ErrVersionConflict)
		}
		gone := make([]any, 0, len(removed)+len(changed))
		for _, sku := range removed {
			gone = append(gone, sku)
		}
		rows := make([][]any, 0, len(changed))
		for _, it := range changed {
			gone = append(gone, it.SKU)
			rows = append(rows, []any{store, it.SKU, it.Description, it.Price, it.TaxCode, it.Status, it.OnHand, it.Available, int64(st.Version)})
		}
		for len(gone) > 0 {
			n := min(len(gone), inChunk)
			if _, err := t.exec(ctx, `DELETE FROM inventory_items WHERE store = ? AND sku IN (`+placeholders(n)+`)`,
				append([]any{store}, gone[:n]...)...); err != nil {
				return err
			}
			gone = gone[n:]
		}
		if err := t.insert(ctx, "inventory_items", inventoryItemCols, rows); err != nil {
			return err
		}
		var items int
		if err := t.queryRow(ctx, `SELECT COUNT(*) FROM inventory_items WHERE store = ?`, store).Scan(&items); err != nil {
			return err
		}
		_, err := t.exec(ctx, `UPDATE inventory_versions SET version = ?, epoch = ?, applied_through = ?, items = ?, updated_at = ?
			WHERE store = ?`, int64(st.Version), st.Epoch, int64(st.AppliedThrough), items, s.now(), store)
		return err
	})
	return wrapf(err, "save inventory of %s", store)
}

// InventoryVersions returns every store's saved state, by store id.
func (s *DB) InventoryVersions(ctx context.Context) (map[string]InventoryState, error) {
	out := map[string]InventoryState{}
	err := s.read(ctx, func(t tx) error {
		rs, err := t.query(ctx, `SELECT store, `+inventoryStateCols+` FROM inventory_versions`)
		return each(rs, err, func(r rows) error {
			var store string
			st, err := scanInventoryState(r, &store)
			out[store] = st
			return err
		})
	})
	if err != nil {
		return nil, fmt.Errorf("inventory versions: %w", err)
	}
	return out, nil
}
