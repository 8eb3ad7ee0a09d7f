package inventory

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/erp"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// fakeSource is an ERP whose on-hand the test sets; Items are sent on every pull.
type fakeSource struct {
	mu     sync.Mutex
	onHand map[string]map[string]string
	items  []erp.Item
}

func (f *fakeSource) set(store, sku, q string) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.onHand[store] == nil {
		f.onHand[store] = map[string]string{}
	}
	f.onHand[store][sku] = q
}

func (f *fakeSource) Pull(context.Context, []string) (erp.Update, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	u := erp.Update{OnHand: map[string]map[string]string{}, Items: f.items}
	for s, m := range f.onHand {
		u.OnHand[s] = map[string]string{}
		for k, v := range m {
			u.OnHand[s][k] = v
		}
	}
	return u, nil
}

type fakePub struct {
	mu   sync.Mutex
	msgs []protocol.Inventory
}

func (p *fakePub) Publish(topic string, payload []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	m, err := protocol.DecodeInventory("S1", payload)
	if err != nil {
		return err
	}
	if topic != protocol.InventoryTopic("S1") {
		return fmt.Errorf("topic %s", topic)
	}
	p.msgs = append(p.msgs, *m)
	return nil
}

// take returns and forgets the published messages.
func (p *fakePub) take() []protocol.Inventory {
	p.mu.Lock()
	defer p.mu.Unlock()
	m := p.msgs
	p.msgs = nil
	return m
}

func sale(seq uint64, kind protocol.Kind, sku, q string) protocol.Record {
	r := protocol.Record{Kind: kind, Store: "S1", Terminal: "T1", Receipt: strconv.FormatUint(seq, 10), BusinessDate: "2026-11-26",
		Epoch: "e1", Seq: seq, CapturedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC),
		Lines: []protocol.Line{{SKU: sku, Quantity: q, UnitPrice: 100, Amount: 100}}, Total: 100,
		Tenders: []protocol.Tender{{Type: protocol.TenderCash, Amount: 100}}}
	r.Seal()
	return r
}

func avail(t *testing.T, m protocol.Inventory, sku string) string {
	t.Helper()
	for _, it := range m.Items {
		if it.SKU == sku {
			return it.Available
		}
	}
	t.Fatalf("%s v%d has no item %s: %+v", m.Kind, m.Version, sku, m.Items)
	return ""
}

// TestServiceLifecycle drives the Service against a real SQLite store: first snapshot, delta of
// changed items only, the overlay's AppliedThrough, nothing when nothing changed, and one
// snapshot for an agent that was offline through many versions.
func TestServiceLifecycle(t *testing.T) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AddStore(ctx, "S1", "x"); err != nil {
		t.Fatal(err)
	}
	src := &fakeSource{onHand: map[string]map[string]string{}, items: []erp.Item{{SKU: "A", Price: 100}, {SKU: "B", Price: 200}}}
	src.set("S1", "A", "10")
	src.set("S1", "B", "5")
	pub := &fakePub{}
	s := New(st, src, pub, Options{ResendAfter: time.Hour})
	refresh := func() Result {
		t.Helper()
		r, err := s.Refresh(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}

	// No agent seen yet: version 1 is saved, nothing is sent.
	if r := refresh(); len(r.Stores) != 1 || r.Stores[0].Version != 1 || r.Stores[0].Sent != "" {
		t.Fatalf("first cycle = %+v", r)
	}
	// The agent comes online without an item master: one snapshot.
	s.OnStatus(protocol.Status{Store: "S1", State: "online"})
	s.react(ctx)
	msgs := pub.take()
	if len(msgs) != 1 || msgs[0].Kind != protocol.InventorySnapshot || msgs[0].Version != 1 || len(msgs[0].Items) != 2 {
		t.Fatalf("after online: %+v", msgs)
	}
	s.OnStatus(protocol.Status{Store: "S1", State: "online", InventoryVersion: 1})
	s.react(ctx)
	if msgs := pub.take(); len(msgs) != 0 {
		t.Fatalf("current agent was sent %+v", msgs)
	}

	// Nothing changed: nothing saved, nothing sent.
	if r := refresh(); r.Stores[0].NewVersion || r.Stores[0].Version != 1 {
		t.Fatalf("unchanged cycle = %+v", r)
	}
	if msgs := pub.take(); len(msgs) != 0 {
		t.Fatalf("unchanged cycle sent %+v", msgs)
	}

	// Two sales and a return captured, not posted: a delta of A only, AppliedThrough 3.
	if _, err := st.ApplyBatch(ctx, "S1", "e1", []protocol.Record{
		sale(1, protocol.KindSale, "A", "3"), sale(2, protocol.KindSale, "A", "2"), sale(3, protocol.KindReturn, "A", "-1"),
	}); err != nil {
		t.Fatal(err)
	}
	refresh()
	msgs = pub.take()
	if len(msgs) != 1 || msgs[0].Kind != protocol.InventoryDelta || msgs[0].BaseVersion != 1 || msgs[0].Version != 2 ||
		len(msgs[0].Items) != 1 || avail(t, msgs[0], "A") != "6" || msgs[0].Epoch != "e1" || msgs[0].AppliedThrough != 3 {
		t.Fatalf("after sales: %+v", msgs)
	}
	s.OnStatus(protocol.Status{Store: "S1", State: "online", InventoryVersion: 2})

	// The sales are posted and the ERP's next on-hand reflects them: available is unchanged,
	// on-hand moved, so a delta carries A with on_hand 6.
	claimed, err := st.ClaimPostings(ctx, "t", time.Minute, 10)
	if err != nil || len(claimed) != 3 {
		t.Fatalf("claim: %d, %v", len(claimed), err)
	}
	for _, p := range claimed {
		if err := st.FinishPosting(ctx, p.ID, "t", store.PostingOutcome{Done: true, Ref: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	src.set("S1", "A", "6")
	refresh()
	msgs = pub.take()
	if len(msgs) != 1 || msgs[0].Kind != protocol.InventoryDelta || msgs[0].Version != 3 || avail(t, msgs[0], "A") != "6" || msgs[0].Items[0].OnHand != "6" {
		t.Fatalf("after posting: %+v", msgs)
	}
	s.OnStatus(protocol.Status{Store: "S1", State: "online", InventoryVersion: 3})

	// A no-sale moves progress past no stock line: no new version.
	ns := protocol.Record{Kind: protocol.KindNoSale, Store: "S1", Terminal: "T1", Receipt: "4", BusinessDate: "2026-11-26", Epoch: "e1", Seq: 4,
		CapturedAt: time.Now()}
	ns.Seal()
	if _, err := st.ApplyBatch(ctx, "S1", "e1", []protocol.Record{ns}); err != nil {
		t.Fatal(err)
	}
	if r := refresh(); r.Stores[0].NewVersion {
		t.Fatalf("a no-sale made a version: %+v", r)
	}
	// A sale whose posting finishes before the next cycle, and an ERP raising stock by the
	// same quantity: the items are unchanged, but progress moved past a stock line, so a
	// version (no items) moves AppliedThrough and the agent stops subtracting that sale.
	if _, err := st.ApplyBatch(ctx, "S1", "e1", []protocol.Record{sale(5, protocol.KindSale, "B", "1")}); err != nil {
		t.Fatal(err)
	}
	claimed, _ = st.ClaimPostings(ctx, "t", time.Minute, 10)
	for _, p := range claimed {
		if err := st.FinishPosting(ctx, p.ID, "t", store.PostingOutcome{Done: true, Ref: "r"}); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(2 * time.Millisecond) // the pull happens after the posting
	r := refresh()
	msgs = pub.take()
	if !r.Stores[0].NewVersion || len(msgs) != 1 || msgs[0].Kind != protocol.InventoryDelta || msgs[0].AppliedThrough != 5 || len(msgs[0].Items) != 0 {
		t.Fatalf("progress past a stock line: %+v, %+v", r, msgs)
	}
	s.OnStatus(protocol.Status{Store: "S1", State: "online", InventoryVersion: msgs[0].Version})
	latest := msgs[0].Version

	// The agent goes offline; 50 changes make 50 versions and send nothing.
	s.OnStatus(protocol.Status{Store: "S1", State: "offline", InventoryVersion: latest})
	s.react(ctx)
	for i := range 50 {
		src.set("S1", "B", strconv.Itoa(100+i))
		refresh()
	}
	if msgs := pub.take(); len(msgs) != 0 {
		t.Fatalf("offline agent was sent %d messages", len(msgs))
	}
	// Back online with its old version: exactly one snapshot of the latest version.
	s.OnStatus(protocol.Status{Store: "S1", State: "online", InventoryVersion: latest})
	s.react(ctx)
	s.OnStatus(protocol.Status{Store: "S1", State: "online", InventoryVersion: latest}) // a heartbeat before it applied
	s.react(ctx)
	refresh()
	msgs = pub.take()
	if len(msgs) != 1 || msgs[0].Kind != protocol.InventorySnapshot || msgs[0].Version != latest+50 || len(msgs[0].Items) != 2 ||
		msgs[0].AppliedThrough != 5 || avail(t, msgs[0], "B") != "149" {
		b, _ := json.Marshal(msgs)
		t.Fatalf("catch-up: %s", b)
	}
}
