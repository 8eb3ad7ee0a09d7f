package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

type acks struct {
	mu   sync.Mutex
	list []protocol.Ack
}

func (a *acks) Publish(topic string, payload []byte) error {
	ack, err := protocol.DecodeAck(payload)
	if err != nil {
		return err
	}
	a.mu.Lock()
	a.list = append(a.list, *ack)
	a.mu.Unlock()
	return nil
}

func (a *acks) wait(t *testing.T, n int) []protocol.Ack {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		a.mu.Lock()
		if len(a.list) >= n {
			out := append([]protocol.Ack(nil), a.list...)
			a.mu.Unlock()
			return out
		}
		a.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("fewer than %d acks", n)
	return nil
}

func batch(t *testing.T, from, to uint64, mutate func(*protocol.Record)) Message {
	t.Helper()
	b := protocol.Batch{V: 1, Store: "S001", Epoch: "e1"}
	for s := from; s <= to; s++ {
		r := protocol.Record{Kind: protocol.KindNoSale, Store: "S001", Terminal: "T1", Receipt: fmt.Sprint(s), BusinessDate: "2026-11-26",
			Epoch: "e1", Seq: s, CapturedAt: time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)}
		if mutate != nil {
			mutate(&r)
		}
		r.Seal()
		b.Records = append(b.Records, r)
	}
	p, _ := json.Marshal(b)
	return Message{Topic: protocol.RecordsTopic("S001"), Payload: p}
}

// TestIngestAcksAfterCommit: in-order batches are acked cumulatively, a gap asks for a resend
// and applies nothing, a repeat is acked again, a conflicting repeat raises an exception, and a
// broken payload is rejected whole.
func TestIngestAcksAfterCommit(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if err := st.AddStore(ctx, "S001", "x"); err != nil {
		t.Fatal(err)
	}
	pub := &acks{}
	in := New(st, pub, Options{Workers: 2, Logger: slog.New(slog.DiscardHandler)})
	go in.Run(ctx)

	steps := []struct {
		name        string
		msg         Message
		wantThrough uint64
		wantResend  uint64
		wantAck     bool
		wantReject  uint64 // Rejected.From
	}{
		{"first batch", batch(t, 1, 10, nil), 10, 0, true, 0},
		{"gap", batch(t, 15, 20, nil), 10, 11, true, 0},
		{"next batch", batch(t, 11, 20, nil), 20, 0, true, 0},
		{"repeat", batch(t, 5, 12, nil), 20, 0, true, 0},
		{"conflict", batch(t, 3, 3, func(r *protocol.Record) { r.Receipt = "X" }), 20, 0, true, 0},
		{"garbage", Message{Topic: protocol.RecordsTopic("S001"), Payload: []byte("{")}, 0, 0, false, 0},
		{"wrong store in payload", Message{Topic: protocol.RecordsTopic("S002"), Payload: batch(t, 21, 21, nil).Payload}, 0, 0, true, 21},
		{"money beyond 10^13", batch(t, 21, 23, func(r *protocol.Record) {
			if r.Seq == 22 {
				r.Total = protocol.MaxMoney + 1
			}
		}), 0, 0, true, 21},
		{"seq beyond 2^53", batch(t, protocol.MaxSeq+1, protocol.MaxSeq+1, nil), 0, 0, true, protocol.MaxSeq + 1},
		{"newer version is not refused for good", func() Message {
			m := batch(t, 21, 21, nil)
			m.Payload = []byte(strings.Replace(string(m.Payload), `"v":1`, `"v":2`, 1))
			return m
		}(), 0, 0, false, 0},
	}
	n := 0
	for _, s := range steps {
		in.Handle(ctx, s.msg)
		if !s.wantAck {
			continue
		}
		n++
		got := pub.wait(t, n)[n-1]
		if s.wantReject > 0 {
			if got.Rejected == nil || got.Rejected.From != s.wantReject || got.AppliedThrough != 0 || got.Epoch != "e1" {
				t.Errorf("%s: ack %+v, want Rejected from %d", s.name, got, s.wantReject)
			}
			continue
		}
		if got.AppliedThrough != s.wantThrough || got.ResendFrom != s.wantResend {
			t.Errorf("%s: ack through %d resend %d, want %d and %d", s.name, got.AppliedThrough, got.ResendFrom, s.wantThrough, s.wantResend)
		}
	}
	time.Sleep(100 * time.Millisecond) // let the rejected messages be processed
	pub.mu.Lock()
	if len(pub.list) != n {
		t.Errorf("%d acks, want %d: rejected payloads must not be acked", len(pub.list), n)
	}
	pub.mu.Unlock()
	recs, err := st.Records(ctx, "S001", "e1", 0, 100)
	if err != nil || len(recs) != 20 {
		t.Fatalf("store has %d records (%v), want 20", len(recs), err)
	}
	if recs[2].Receipt != "3" {
		t.Errorf("conflicting repeat overwrote seq 3: receipt %q", recs[2].Receipt)
	}
	exc, _ := st.Exceptions(ctx, store.ExceptionFilter{Store: "S001"})
	reasons := map[string]int{}
	for _, e := range exc {
		reasons[e.Reason]++
	}
	// garbage, money (e1:21), seq (e1:2^53+1), version; the wrong store's is S002's.
	if reasons[store.ReasonHashConflict] != 1 || reasons[ReasonRejectedBatch] != 4 {
		t.Errorf("exceptions %v, want one hash_conflict and four rejected_batch", reasons)
	}
	for _, e := range exc {
		if e.Key == "e1:21" && (!strings.Contains(e.Detail, "seq 21..23") || !strings.Contains(e.Detail, "total") || !strings.Contains(e.Detail, "10^13")) {
			t.Errorf("money rejection detail %q: want the seqs and the reason", e.Detail)
		}
	}
}
