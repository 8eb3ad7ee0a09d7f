package inventory

import (
	"cmp"
	"fmt"
	"slices"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// NetSold returns, per SKU, the signed quantity of the sale and return lines of recs (voided
// lines and lines without SKU skipped; returns carry negative quantities, so they net out).
// It is the same sum the agent's overlay makes of its own records.
func NetSold(recs []protocol.Record) (map[string]Qty, error) {
	sold := map[string]Qty{}
	for i := range recs {
		r := &recs[i]
		if r.Kind != protocol.KindSale && r.Kind != protocol.KindReturn {
			continue
		}
		for _, l := range r.Lines {
			if l.SKU == "" || l.Voided {
				continue
			}
			q, err := ParseQty(l.Quantity)
			if err != nil {
				return nil, fmt.Errorf("record %s/%d sku %q: %w", r.Epoch, r.Seq, l.SKU, err)
			}
			s, err := sold[l.SKU].Add(q)
			if err != nil {
				return nil, fmt.Errorf("sku %q: %w", l.SKU, err)
			}
			sold[l.SKU] = s
		}
	}
	return sold, nil
}

// Build computes a store's items from the ERP's stock and the store's unposted records:
//
//	available(SKU) = on_hand(SKU) − Σ signed quantity of unposted sale and return lines
//
// The items are the item master (deleted items left out) plus SKUs the ERP reports on-hand for
// but has no master entry for; a SKU without on-hand has on-hand 0. Sorted by SKU.
func Build(stock store.ERPStock, unposted []protocol.Record) ([]protocol.Item, error) {
	sold, err := NetSold(unposted)
	if err != nil {
		return nil, err
	}
	out := make([]protocol.Item, 0, max(len(stock.Items), len(stock.OnHand)))
	seen := make(map[string]bool, len(stock.Items))
	add := func(it protocol.Item) error {
		onHand, err := ParseQty(stock.OnHand[it.SKU])
		if err != nil {
			return fmt.Errorf("on hand of sku %q: %w", it.SKU, err)
		}
		avail, err := onHand.Sub(sold[it.SKU])
		if err != nil {
			return fmt.Errorf("available of sku %q: %w", it.SKU, err)
		}
		it.OnHand, it.Available = onHand.String(), avail.String()
		out = append(out, it)
		return nil
	}
	for _, m := range stock.Items {
		if seen[m.SKU] || m.SKU == "" {
			continue
		}
		seen[m.SKU] = true
		if m.Status == protocol.ItemDeleted {
			continue
		}
		if err := add(protocol.Item{SKU: m.SKU, Description: m.Description, Price: m.Price, TaxCode: m.TaxCode, Status: m.Status}); err != nil {
			return nil, err
		}
	}
	for sku := range stock.OnHand {
		if !seen[sku] && sku != "" {
			if err := add(protocol.Item{SKU: sku}); err != nil {
				return nil, err
			}
		}
	}
	slices.SortFunc(out, func(a, b protocol.Item) int { return cmp.Compare(a.SKU, b.SKU) })
	return out, nil
}

// Diff returns the items of next that are new or differ from prev, and the SKUs of prev that
// next no longer has. Both inputs are sorted by SKU.
func Diff(prev, next []protocol.Item) (changed []protocol.Item, removed []string) {
	i, j := 0, 0
	for i < len(prev) || j < len(next) {
		switch {
		case j == len(next) || (i < len(prev) && prev[i].SKU < next[j].SKU):
			removed = append(removed, prev[i].SKU)
			i++
		case i == len(prev) || next[j].SKU < prev[i].SKU:
			changed = append(changed, next[j])
			j++
		default:
			if prev[i] != next[j] {
				changed = append(changed, next[j])
			}
			i++
			j++
		}
	}
	return changed, removed
}

// Action is what the hub sends an agent.
type Action int

// Actions of Decide.
const (
	SendNothing Action = iota
	SendDelta
	SendSnapshot
)

func (a Action) String() string {
	switch a {
	case SendDelta:
		return protocol.InventoryDelta
	case SendSnapshot:
		return protocol.InventorySnapshot
	}
	return "nothing"
}

// AgentView is what the hub knows of one store's agent.
type AgentView struct {
	// Online: its last status said online.
	Online bool
	// Reported is the InventoryVersion of its last status.
	Reported uint64
	// Sent is the last version published to it, at SentAt; it counts as the agent's version
	// until ResendAfter has passed without a status reporting it (messages in flight).
	Sent   uint64
	SentAt time.Time
}

// Decide says what to send an agent when the store's latest version is latest. fresh is true
// when latest was just saved on top of base (its delta is at hand). An offline agent gets
// nothing (its session is clean: it would not receive it) and a snapshot when it is back; an
// agent that holds base gets the delta; any other version, a snapshot.
func Decide(v AgentView, latest, base uint64, fresh bool, now time.Time, resendAfter time.Duration) Action {
	if !v.Online || latest == 0 {
		return SendNothing
	}
	has := v.Reported
	if v.Sent > has && now.Sub(v.SentAt) < resendAfter {
		has = v.Sent
	}
	switch {
	case has == latest:
		return SendNothing
	case fresh && base > 0 && has == base:
		return SendDelta
	default:
		return SendSnapshot
	}
}

// Snapshot is the message replacing an agent's item master with version st.
func Snapshot(storeID string, st store.InventoryState, items []protocol.Item) protocol.Inventory {
	return protocol.Inventory{V: protocol.Version, Store: storeID, Kind: protocol.InventorySnapshot, Version: st.Version,
		AsOf: st.UpdatedAt, Epoch: st.Epoch, AppliedThrough: st.AppliedThrough, Items: items}
}

// Delta is the message taking an agent from base to st.
func Delta(storeID string, base uint64, st store.InventoryState, changed []protocol.Item, removed []string) protocol.Inventory {
	return protocol.Inventory{V: protocol.Version, Store: storeID, Kind: protocol.InventoryDelta, Version: st.Version,
		BaseVersion: base, AsOf: st.UpdatedAt, Epoch: st.Epoch, AppliedThrough: st.AppliedThrough, Items: changed, Removed: removed}
}
