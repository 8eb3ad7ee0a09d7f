package store

import (
	"context"
	"errors"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// The inventory push (package inventory) keeps three things here:
//
//   - the ERP's stock as last pulled: the item master (erp_items) and on-hand per store and
//     SKU (erp_onhand), stored before a flat-file source moves its files to processed/;
//   - per store, the item state last published to the agent (inventory_items) and its version
//     (inventory_versions), so a hub restart continues the numbering and sends only changes;
//   - what it reads to compute availability: the store's unposted sale and return records.

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

// Inventory is the inventory push's part of the hub's store. Both implementations provide it;
// safe for concurrent use, and with PostgreSQL by several hub processes (SaveInventory is a
// compare-and-set on the version).
type Inventory interface {
	// PutERPStock durably stores a pull from the ERP: items, when not nil, replace the whole
	// item master; each store listed in onHand has its on-hand replaced by its map, read from
	// the ERP at pulledAt. One transaction.
	PutERPStock(ctx context.Context, items []MasterItem, onHand map[string]map[string]string, pulledAt time.Time) error
	// ERPStock returns the stored item master (ordered by SKU) and store's on-hand.
	ERPStock(ctx context.Context, store string) (ERPStock, error)
	// UnpostedRecords returns what the store's ERP on-hand, pulled at pulledAt, does not reflect
	// yet (ErrNotFound for an unknown store).
	UnpostedRecords(ctx context.Context, store string, pulledAt time.Time) (Unposted, error)
	// InventoryItems returns the store's last saved state and its items, ordered by SKU.
	InventoryItems(ctx context.Context, store string) (InventoryState, []protocol.Item, error)
	// SaveInventory saves version st.Version for store on top of base (the version the caller
	// read): changed items are upserted, removed SKUs deleted, in one transaction. It returns
	// ErrVersionConflict if the stored version is not base, and requires st.Version > base.
	SaveInventory(ctx context.Context, store string, base uint64, st InventoryState, changed []protocol.Item, removed []string) error
	// InventoryVersions returns every store's saved state, by store id.
	InventoryVersions(ctx context.Context) (map[string]InventoryState, error)
}
