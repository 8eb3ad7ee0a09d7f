package inventory

import (
	"encoding/json"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

func line(sku, q string) protocol.Line { return protocol.Line{SKU: sku, Quantity: q} }

func rec(kind protocol.Kind, lines ...protocol.Line) protocol.Record {
	return protocol.Record{Kind: kind, Lines: lines}
}

func TestBuildAvailable(t *testing.T) {
	master := []store.MasterItem{
		{SKU: "A", Description: "Apple", Price: 100, TaxCode: "STD", Status: protocol.ItemActive},
		{SKU: "B", Price: 250, Status: protocol.ItemActive},
		{SKU: "D", Status: protocol.ItemDeleted},
	}
	voided := line("A", "5")
	voided.Voided = true
	tests := []struct {
		name     string
		onHand   map[string]string
		unposted []protocol.Record
		want     map[string][2]string // sku -> on_hand, available
	}{
		{"no sales", map[string]string{"A": "10", "B": "2.5"}, nil,
			map[string][2]string{"A": {"10", "10"}, "B": {"2.5", "2.5"}}},
		{"unposted sale subtracts", map[string]string{"A": "10", "B": "2"},
			[]protocol.Record{rec(protocol.KindSale, line("A", "3"), line("B", "0.25"))},
			map[string][2]string{"A": {"10", "7"}, "B": {"2", "1.75"}}},
		{"unposted return adds back", map[string]string{"A": "10"},
			[]protocol.Record{rec(protocol.KindSale, line("A", "3")), rec(protocol.KindReturn, line("A", "-1"))},
			map[string][2]string{"A": {"10", "8"}, "B": {"0", "0"}}},
		{"voided lines, voids and no-sales do not count", map[string]string{"A": "10"},
			[]protocol.Record{rec(protocol.KindSale, voided, line("A", "1")), rec(protocol.KindVoid, line("A", "4")), rec(protocol.KindNoSale)},
			map[string][2]string{"A": {"10", "9"}, "B": {"0", "0"}}},
		{"overselling goes negative", map[string]string{"A": "1"},
			[]protocol.Record{rec(protocol.KindSale, line("A", "3"))},
			map[string][2]string{"A": {"1", "-2"}, "B": {"0", "0"}}},
		{"on-hand without master entry is an item; deleted is not", map[string]string{"Z": "4", "D": "9"},
			[]protocol.Record{rec(protocol.KindSale, line("Q", "1"))},
			map[string][2]string{"A": {"0", "0"}, "B": {"0", "0"}, "Z": {"4", "4"}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			items, err := Build(store.ERPStock{Items: master, OnHand: tc.onHand}, tc.unposted)
			if err != nil {
				t.Fatal(err)
			}
			got := map[string][2]string{}
			var skus []string
			for _, it := range items {
				got[it.SKU] = [2]string{it.OnHand, it.Available}
				skus = append(skus, it.SKU)
			}
			if !slices.IsSorted(skus) {
				t.Errorf("items not sorted: %v", skus)
			}
			if fmt.Sprint(got) != fmt.Sprint(tc.want) {
				t.Errorf("Build = %v, want %v", got, tc.want)
			}
		})
	}
	if _, err := Build(store.ERPStock{Items: master, OnHand: map[string]string{"A": "x"}}, nil); err == nil {
		t.Errorf("Build with a bad on-hand succeeded")
	}
	if items, _ := Build(store.ERPStock{Items: master[:1]}, nil); items[0].Description != "Apple" || items[0].Price != 100 || items[0].TaxCode != "STD" {
		t.Errorf("item master fields lost: %+v", items[0])
	}
}

func TestDiff(t *testing.T) {
	it := func(sku, avail string) protocol.Item { return protocol.Item{SKU: sku, OnHand: "1", Available: avail} }
	tests := []struct {
		name        string
		prev, next  []protocol.Item
		wantChanged []string
		wantRemoved []string
	}{
		{"equal", []protocol.Item{it("A", "1"), it("B", "1")}, []protocol.Item{it("A", "1"), it("B", "1")}, nil, nil},
		{"first version", nil, []protocol.Item{it("A", "1")}, []string{"A"}, nil},
		{"one changed", []protocol.Item{it("A", "1"), it("B", "1")}, []protocol.Item{it("A", "1"), it("B", "0")}, []string{"B"}, nil},
		{"added and removed", []protocol.Item{it("A", "1"), it("C", "1")}, []protocol.Item{it("B", "1"), it("C", "1"), it("D", "1")}, []string{"B", "D"}, []string{"A"}},
		{"all removed", []protocol.Item{it("A", "1")}, nil, nil, []string{"A"}},
		{"price change", []protocol.Item{it("A", "1")}, []protocol.Item{{SKU: "A", OnHand: "1", Available: "1", Price: 5}}, []string{"A"}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			changed, removed := Diff(tc.prev, tc.next)
			var got []string
			for _, c := range changed {
				got = append(got, c.SKU)
			}
			if !slices.Equal(got, tc.wantChanged) || !slices.Equal(removed, tc.wantRemoved) {
				t.Errorf("Diff = changed %v removed %v, want %v %v", got, removed, tc.wantChanged, tc.wantRemoved)
			}
		})
	}
}

func TestDecide(t *testing.T) {
	now := time.Now()
	const after = 15 * time.Second
	tests := []struct {
		name         string
		v            AgentView
		latest, base uint64
		fresh        bool
		want         Action
	}{
		{"offline agent gets nothing", AgentView{Online: false, Reported: 4}, 5, 4, true, SendNothing},
		{"no version yet", AgentView{Online: true}, 0, 0, false, SendNothing},
		{"current agent", AgentView{Online: true, Reported: 5}, 5, 0, false, SendNothing},
		{"agent on base gets the delta", AgentView{Online: true, Reported: 4}, 5, 4, true, SendDelta},
		{"agent far behind gets a snapshot", AgentView{Online: true, Reported: 2}, 502, 501, true, SendSnapshot},
		{"new agent gets a snapshot", AgentView{Online: true}, 7, 6, true, SendSnapshot},
		{"first version to a new agent is a snapshot", AgentView{Online: true}, 1, 0, true, SendSnapshot},
		{"behind with nothing fresh: snapshot", AgentView{Online: true, Reported: 3}, 5, 0, false, SendSnapshot},
		{"ahead of the hub (hub lost state): snapshot", AgentView{Online: true, Reported: 9}, 5, 0, false, SendSnapshot},
		{"just sent latest: wait for its status", AgentView{Online: true, Reported: 3, Sent: 5, SentAt: now.Add(-time.Second)}, 5, 0, false, SendNothing},
		{"sent long ago and still behind: snapshot again", AgentView{Online: true, Reported: 3, Sent: 5, SentAt: now.Add(-time.Minute)}, 5, 0, false, SendSnapshot},
		{"just sent base: the next delta follows", AgentView{Online: true, Reported: 1, Sent: 5, SentAt: now.Add(-time.Second)}, 6, 5, true, SendDelta},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Decide(tc.v, tc.latest, tc.base, tc.fresh, now, after); got != tc.want {
				t.Errorf("Decide(%+v, latest %d, base %d, fresh %v) = %v, want %v", tc.v, tc.latest, tc.base, tc.fresh, got, tc.want)
			}
		})
	}
}

// BenchmarkSnapshot100k measures building one store's snapshot message for 100,000 SKUs from
// the ERP's stock and 1,000 unposted sales: compute, diff against nothing, encode.
func BenchmarkSnapshot100k(b *testing.B) {
	const n = 100_000
	stock := store.ERPStock{OnHand: make(map[string]string, n)}
	for i := range n {
		sku := fmt.Sprintf("%08d", i)
		stock.Items = append(stock.Items, store.MasterItem{SKU: sku, Description: "Item " + sku, Price: int64(100 + i%900), TaxCode: "STD", Status: protocol.ItemActive})
		stock.OnHand[sku] = fmt.Sprint(i % 50)
	}
	var unposted []protocol.Record
	for i := range 1000 {
		unposted = append(unposted, rec(protocol.KindSale, line(fmt.Sprintf("%08d", i*97%n), "1"), line(fmt.Sprintf("%08d", i*31%n), "2")))
	}
	b.ReportAllocs()
	var size int
	for b.Loop() {
		items, err := Build(stock, unposted)
		if err != nil {
			b.Fatal(err)
		}
		changed, _ := Diff(nil, items)
		payload, err := json.Marshal(Snapshot("S001", store.InventoryState{Version: 1}, changed))
		if err != nil {
			b.Fatal(err)
		}
		size = len(payload)
	}
	b.ReportMetric(float64(size), "bytes/snapshot")
}
