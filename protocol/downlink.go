package protocol

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Inventory message kinds.
const (
	InventorySnapshot = "snapshot"
	InventoryDelta    = "delta"
)

// Item statuses.
const (
	ItemActive   = "active"
	ItemInactive = "inactive"
	ItemDeleted  = "deleted"
)

// Item is one entry of a store's item master as the hub sends it: identity, price and stock.
// Quantities are exact decimal strings. Available is the ERP's on-hand minus sales captured but
// not yet posted to the ERP, plus returns likewise, as of the message's AppliedThrough.
type Item struct {
	SKU         string `json:"sku"`
	Description string `json:"description,omitempty"`
	Price       int64  `json:"price"`
	TaxCode     string `json:"tax_code,omitempty"`
	Status      string `json:"status,omitempty"`
	OnHand      string `json:"on_hand"`
	Available   string `json:"available"`
}

// Inventory is the payload of InventoryTopic (QoS 1). A snapshot replaces the agent's whole
// item master; a delta applies on top of exactly BaseVersion and carries only changed items
// (and SKUs removed). An agent whose version is not BaseVersion ignores the delta and reports
// its version in Status.InventoryVersion; the hub then sends a snapshot.
//
// Epoch and AppliedThrough say which of the agent's own records the Available figures already
// account for: the agent subtracts its records with a higher seq (its local overlay).
type Inventory struct {
	V              int       `json:"v"`
	Store          string    `json:"store"`
	Kind           string    `json:"kind"`
	Version        uint64    `json:"version"`
	BaseVersion    uint64    `json:"base_version,omitempty"`
	AsOf           time.Time `json:"as_of,omitzero"`
	Epoch          string    `json:"epoch,omitempty"`
	AppliedThrough uint64    `json:"applied_through,omitempty"`
	Items          []Item    `json:"items,omitempty"`
	Removed        []string  `json:"removed,omitempty"`
}

// DecodeInventory decodes and checks an inventory message for store.
func DecodeInventory(store string, payload []byte) (*Inventory, error) {
	var m Inventory
	if err := json.Unmarshal(payload, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if err := checkVersion(m.V); err != nil {
		return nil, err
	}
	if m.Store != store {
		return nil, fmt.Errorf("%w: topic %q, inventory %q", ErrWrongStore, store, m.Store)
	}
	switch m.Kind {
	case InventorySnapshot:
	case InventoryDelta:
		if m.BaseVersion == 0 || m.BaseVersion >= m.Version {
			return nil, &ValidationError{"base_version", "a delta needs 0 < base_version < version"}
		}
	default:
		return nil, &ValidationError{"kind", fmt.Sprintf("unknown inventory kind %q", m.Kind)}
	}
	if m.Version == 0 {
		return nil, &ValidationError{"version", "missing"}
	}
	for i, it := range m.Items {
		if it.SKU == "" {
			return nil, &ValidationError{fmt.Sprintf("items[%d].sku", i), "missing"}
		}
		for _, q := range []string{it.OnHand, it.Available} {
			if q != "" && !ValidQuantity(q) {
				return nil, &ValidationError{fmt.Sprintf("items[%d]", i), fmt.Sprintf("quantity %q is not an exact decimal", q)}
			}
		}
	}
	return &m, nil
}

// Command types.
const (
	// CommandReplay asks the agent to send again, from its spool, the records of Terminal with
	// receipt numbers FromReceipt..ToReceipt (numeric, inclusive) of BusinessDate, or the seq
	// range FromSeq..ToSeq of Epoch. The agent answers in Status.CommandResults and publishes
	// the records it still has in a Batch with Replay set.
	CommandReplay = "replay"
)

// Command is the payload of CommandsTopic (QoS 1). ID makes it idempotent.
type Command struct {
	V            int    `json:"v"`
	ID           string `json:"id"`
	Type         string `json:"type"`
	Terminal     string `json:"terminal,omitempty"`
	BusinessDate string `json:"business_date,omitempty"`
	FromReceipt  int64  `json:"from_receipt,omitempty"`
	ToReceipt    int64  `json:"to_receipt,omitempty"`
	Epoch        string `json:"epoch,omitempty"`
	FromSeq      uint64 `json:"from_seq,omitempty"`
	ToSeq        uint64 `json:"to_seq,omitempty"`
	// Manifest is the signed manifest of an update or config command.
	Manifest *SignedManifest `json:"manifest,omitempty"`
	// URL is the hub path (relative to the agent's update.hub_url) an update downloads from.
	URL string `json:"url,omitempty"`
}

// CommandResult reports a command's outcome in Status.CommandResults.
type CommandResult struct {
	ID     string    `json:"id"`
	OK     bool      `json:"ok"`
	Found  int       `json:"found"`          // records found and replayed
	Seqs   []uint64  `json:"seqs,omitempty"` // their seqs
	Detail string    `json:"detail,omitempty"`
	At     time.Time `json:"at"`
}

// DecodeCommand decodes a command.
func DecodeCommand(payload []byte) (*Command, error) {
	var c Command
	if err := json.Unmarshal(payload, &c); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	if err := checkVersion(c.V); err != nil {
		return nil, err
	}
	if c.ID == "" {
		return nil, &ValidationError{"id", "missing"}
	}
	switch c.Type {
	case CommandReplay:
		if c.Terminal == "" && c.Epoch == "" {
			return nil, &ValidationError{"terminal", "a replay names a terminal and receipt range, or an epoch and seq range"}
		}
	case CommandUpdate, CommandConfig:
		if c.Manifest == nil || c.Manifest.Body == "" || c.Manifest.Signature == "" {
			return nil, &ValidationError{"manifest", "an update or config command carries a signed manifest"}
		}
		if len(c.Manifest.Body) > MaxManifestBytes || len(c.Manifest.Signature) > maxSignatureBytes {
			return nil, &ValidationError{"manifest", "too large"}
		}
		if c.Type == CommandUpdate && (c.URL == "" || !strings.HasPrefix(c.URL, "/")) {
			return nil, &ValidationError{"url", "an update names the hub path of its binary"}
		}
	default:
		return nil, &ValidationError{"type", fmt.Sprintf("unknown command %q", c.Type)}
	}
	return &c, nil
}
