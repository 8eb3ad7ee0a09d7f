package replay

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

const store = "S-replay"

type fakePub struct {
	mu      sync.Mutex
	batches []*protocol.Batch
	fail    error
}

func (p *fakePub) PublishRecords(_ context.Context, payload []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.fail != nil {
		return p.fail
	}
	b, err := protocol.DecodeBatch(store, payload) // what the hub will do with it
	if err != nil {
		return fmt.Errorf("hub would reject the batch: %w", err)
	}
	p.batches = append(p.batches, b)
	return nil
}

func (p *fakePub) seqs() (out []uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, b := range p.batches {
		for _, r := range b.Records {
			out = append(out, r.Seq)
		}
	}
	return out
}

// newSpool captures T1 receipts 1..10 (seq 1..10) and T2 receipts 1..3 (seq 11..13) and acks
// through seq ack.
func newSpool(t *testing.T, ack uint64) *spool.Spool {
	t.Helper()
	sp, err := spool.Open(filepath.Join(t.TempDir(), "spool.db"), spool.Options{Store: store})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { sp.Close() })
	var recs []protocol.Record
	add := func(term string, n int) {
		recs = append(recs, protocol.Record{Kind: protocol.KindSale, Terminal: term, Receipt: strconv.Itoa(n), BusinessDate: "2026-11-27",
			Lines: []protocol.Line{{SKU: "A", Quantity: "1", UnitPrice: 100, Amount: 100}}, Total: 100})
	}
	for i := 1; i <= 10; i++ {
		add("T1", i)
	}
	for i := 1; i <= 3; i++ {
		add("T2", i)
	}
	if _, err := sp.Commit(context.Background(), spool.Capture{Source: "x", Records: recs}); err != nil {
		t.Fatal(err)
	}
	if err := sp.Ack(sp.Epoch(), ack); err != nil {
		t.Fatal(err)
	}
	return sp
}

func TestReplay(t *testing.T) {
	tests := []struct {
		name       string
		ack        uint64
		cmd        protocol.Command // epoch "=" means the spool's
		wantOK     bool
		wantSeqs   []uint64
		wantDetail string
	}{
		{"receipt range", 13, protocol.Command{Terminal: "T1", BusinessDate: "2026-11-27", FromReceipt: 3, ToReceipt: 7}, true, []uint64{3, 4, 5, 6, 7}, "5 record(s) replayed"},
		{"single receipt", 13, protocol.Command{Terminal: "T2", BusinessDate: "2026-11-27", FromReceipt: 2}, true, []uint64{12}, "1 record(s)"},
		{"partly unacknowledged", 5, protocol.Command{Terminal: "T1", BusinessDate: "2026-11-27", FromReceipt: 4, ToReceipt: 7}, true, []uint64{4, 5}, "2 matching record(s) not yet acknowledged (seq 6-7)"},
		{"missing range", 13, protocol.Command{Terminal: "T1", BusinessDate: "2026-11-27", FromReceipt: 11, ToReceipt: 20}, true, nil, "no retained acknowledged record"},
		{"other day", 13, protocol.Command{Terminal: "T1", BusinessDate: "2026-11-28", FromReceipt: 1, ToReceipt: 20}, true, nil, "no retained"},
		{"seq range", 13, protocol.Command{Epoch: "=", FromSeq: 9, ToSeq: 12}, true, []uint64{9, 10, 11, 12}, "4 record(s)"},
		{"seq range beyond last", 13, protocol.Command{Epoch: "=", FromSeq: 12, ToSeq: 99}, true, []uint64{12, 13}, "2 record(s)"},
		{"other epoch", 13, protocol.Command{Epoch: "ffffffffffffffffffffffffffffffff", FromSeq: 1, ToSeq: 5}, true, nil, "not this spool's epoch"},
		{"bad receipt range", 13, protocol.Command{Terminal: "T1", FromReceipt: 9, ToReceipt: 3}, false, nil, "empty"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sp := newSpool(t, tt.ack)
			pub := &fakePub{}
			e, err := New(sp, pub, Options{Store: store, BatchSize: 2})
			if err != nil {
				t.Fatal(err)
			}
			c := tt.cmd
			c.V, c.ID, c.Type = 1, "cmd-"+tt.name, protocol.CommandReplay
			if c.Epoch == "=" {
				c.Epoch = sp.Epoch()
			}
			r := e.Execute(context.Background(), &c)
			if r.OK != tt.wantOK || !slices.Equal(r.Seqs, tt.wantSeqs) || r.Found != len(tt.wantSeqs) || !strings.Contains(r.Detail, tt.wantDetail) {
				t.Fatalf("result %+v; want ok=%v seqs=%v detail ~ %q", r, tt.wantOK, tt.wantSeqs, tt.wantDetail)
			}
			if got := pub.seqs(); !slices.Equal(got, tt.wantSeqs) {
				t.Fatalf("published seqs %v, want %v", got, tt.wantSeqs)
			}
			for _, b := range pub.batches {
				if !b.Replay || b.CommandID != c.ID || b.Epoch != sp.Epoch() || len(b.Records) > 2 {
					t.Fatalf("batch replay=%v command=%q epoch=%s records=%d", b.Replay, b.CommandID, b.Epoch, len(b.Records))
				}
			}
			if res := e.Results(); len(res) != 1 || res[0].ID != c.ID || res[0].At.IsZero() {
				t.Fatalf("results %+v", res)
			}
		})
	}
}

func TestIdempotentAndPersistent(t *testing.T) {
	sp := newSpool(t, 13)
	pub := &fakePub{}
	file := filepath.Join(t.TempDir(), "commands.json")
	e, err := New(sp, pub, Options{Store: store, ResultsFile: file})
	if err != nil {
		t.Fatal(err)
	}
	c := &protocol.Command{V: 1, ID: "c1", Type: protocol.CommandReplay, Terminal: "T1", FromReceipt: 1, ToReceipt: 2}

	// A failed publish is reported and not remembered as done.
	pub.fail = errors.New("not connected")
	if r := e.Execute(context.Background(), c); r.OK || !strings.Contains(r.Detail, "not connected") {
		t.Fatalf("failed publish: %+v", r)
	}
	pub.fail = nil
	if r := e.Execute(context.Background(), c); !r.OK || r.Found != 2 {
		t.Fatalf("retry: %+v", r)
	}
	// Executing again publishes nothing more; the result is reported once.
	if r := e.Execute(context.Background(), c); !r.OK || r.Found != 2 {
		t.Fatalf("repeat: %+v", r)
	}
	if got := pub.seqs(); !slices.Equal(got, []uint64{1, 2}) {
		t.Fatalf("published %v, want [1 2] once", got)
	}
	if res := e.Results(); len(res) != 1 || !res[0].OK {
		t.Fatalf("results %+v", res)
	}

	// After a restart the done ID is still known.
	e2, err := New(sp, pub, Options{Store: store, ResultsFile: file})
	if err != nil {
		t.Fatal(err)
	}
	if r := e2.Execute(context.Background(), c); !r.OK || len(pub.seqs()) != 2 {
		t.Fatalf("after restart: %+v, published %v", r, pub.seqs())
	}
	// The status carries the last 20 results, newest last.
	for i := range 25 {
		e2.Execute(context.Background(), &protocol.Command{V: 1, ID: fmt.Sprintf("n%02d", i), Type: protocol.CommandReplay, Epoch: sp.Epoch(), FromSeq: 1})
	}
	res := e2.Results()
	if len(res) != 20 || res[0].ID != "n05" || res[19].ID != "n24" {
		t.Fatalf("results: %d, first %s, last %s", len(res), res[0].ID, res[len(res)-1].ID)
	}
}

func TestRunNotifies(t *testing.T) {
	sp := newSpool(t, 13)
	pub := &fakePub{}
	notified := make(chan struct{}, 1)
	e, err := New(sp, pub, Options{Store: store, OnResult: func() { notified <- struct{}{} }})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error)
	go func() { done <- e.Run(ctx) }()
	e.Commands() <- &protocol.Command{V: 1, ID: "r1", Type: protocol.CommandReplay, Epoch: sp.Epoch(), FromSeq: 2, ToSeq: 3}
	<-notified
	if res := e.Results(); len(res) != 1 || !slices.Equal(res[0].Seqs, []uint64{2, 3}) {
		t.Fatalf("results %+v", res)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
