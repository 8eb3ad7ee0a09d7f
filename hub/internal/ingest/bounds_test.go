package ingest

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/hub/internal/store/storetest"
	"github.com/lanebridge/lanebridge/protocol"
)

// engines runs fn on a fresh hub store on SQLite and on PostgreSQL (storetest).
func engines(t *testing.T, fn func(t *testing.T, st *store.DB)) { storetest.Engines(t, fn) }

// running enrolls S001 in st and runs an ingester on it until the test ends.
func running(t *testing.T, st *store.DB) (context.Context, *Ingester, *acks) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	if err := st.AddStore(ctx, "S001", "x"); err != nil {
		t.Fatal(err)
	}
	pub := &acks{}
	in := New(st, pub, Options{Workers: 1})
	go in.Run(ctx)
	return ctx, in, pub
}

func statusMsg(t *testing.T, st protocol.Status) Message {
	t.Helper()
	st.V = protocol.Version
	p, err := json.Marshal(st)
	if err != nil {
		t.Fatal(err)
	}
	return Message{Topic: protocol.StatusTopic(st.Store), Payload: p}
}

// A quarantined receipt whose barcode payload holds NUL and bytes that are not UTF-8 is
// stored and acknowledged on both engines (PostgreSQL refused the status and the exception
// before, and the store's quarantine reports stalled).
func TestQuarantineWithNULOnBothEngines(t *testing.T) {
	engines(t, func(t *testing.T, st *store.DB) {
		ctx, in, pub := running(t, st)
		excerpt := "SALE 1001\n\x1dkBARCODE\x00\x00\x1d4902\xff\xfe END"
		in.Handle(ctx, statusMsg(t, protocol.Status{Store: "S001", State: "online", Epoch: "e1",
			Quarantine: []protocol.Quarantined{{ID: "q1", Seq: 1, Terminal: "T1\x00", At: time.Now(), Reason: "barcode: bad payload", Excerpt: excerpt}}}))
		if a := pub.wait(t, 1)[0]; a.QuarantineThrough != 1 {
			t.Fatalf("ack %+v, want quarantine_through 1", a)
		}
		ex, err := st.Exceptions(ctx, store.ExceptionFilter{Store: "S001", Reason: store.ReasonQuarantine})
		if err != nil || len(ex) != 1 {
			t.Fatalf("quarantine exceptions = %+v, %v", ex, err)
		}
		if want := "BARCODE\u2400\u2400\x1d4902\uFFFD\uFFFD END"; !strings.Contains(ex[0].Detail, want) || !strings.HasPrefix(ex[0].Detail, "terminal T1\u2400 at ") {
			t.Fatalf("exception key %q detail %q: want NUL as ␀ and bad bytes as U+FFFD", ex[0].Key, ex[0].Detail)
		}
		info, err := st.GetStore(ctx, "S001")
		if err != nil || info.Status == nil || len(info.Status.Quarantine) != 1 || !strings.Contains(info.Status.Quarantine[0].Excerpt, "BARCODE\u2400") {
			t.Fatalf("stored status = %+v, %v", info.Status, err)
		}
	})
}

// Record text that PostgreSQL's jsonb cannot hold (NUL, a lone surrogate, in known or unknown
// fields) is refused for good with an exception instead of failing the apply on every resend.
func TestUnstorableRecordRefused(t *testing.T) {
	engines(t, func(t *testing.T, st *store.DB) {
		ctx, in, pub := running(t, st)
		in.Handle(ctx, batch(t, 1, 2, nil))
		pub.wait(t, 1)
		for i, edit := range []string{`"kind":"no_sale","x":"\u0000"`, `"kind":"no_sale","x":"\ud800"`} {
			m := batch(t, 3, 3, nil)
			m.Payload = []byte(strings.Replace(string(m.Payload), `"kind":"no_sale"`, edit, 1))
			in.Handle(ctx, m)
			if a := pub.wait(t, 2+i)[1+i]; a.Rejected == nil || a.Rejected.From != 3 {
				t.Fatalf("ack %+v, want seq 3 rejected", a)
			}
		}
		in.Handle(ctx, batch(t, 3, 3, nil))
		if a := pub.wait(t, 4)[3]; a.AppliedThrough != 3 {
			t.Fatalf("ack %+v after the clean resend, want through 3", a)
		}
		ex, _ := st.Exceptions(ctx, store.ExceptionFilter{Reason: ReasonRejectedBatch})
		if len(ex) != 1 || ex[0].Count != 2 || !strings.Contains(ex[0].Detail, "seq 3..3") {
			t.Fatalf("rejections = %+v, want one for e1:3 counted twice", ex)
		}
	})
}

// A permanently rejected batch resent again and again stays one exception that counts the
// resends, and each resend is answered with the refusal (a well-behaved agent stops at the
// first; see the uplink's test).
func TestRejectionCoalesces(t *testing.T) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, in, pub := running(t, st)
	bad := batch(t, protocol.MaxSeq+1, protocol.MaxSeq+1, nil)
	for range 5 {
		in.Handle(ctx, bad)
	}
	for _, a := range pub.wait(t, 5) {
		if a.Rejected == nil || a.Rejected.From != protocol.MaxSeq+1 || !strings.Contains(a.Rejected.Reason, "2^53") {
			t.Fatalf("ack %+v, want the refusal of seq 2^53+1", a)
		}
	}
	ex, _ := st.Exceptions(ctx, store.ExceptionFilter{})
	if len(ex) != 1 || ex[0].Count != 5 || ex[0].Key != fmt.Sprintf("e1:%d", uint64(protocol.MaxSeq+1)) {
		t.Fatalf("exceptions = %+v, want one counting 5", ex)
	}
}

// A quarantine report resent after its exception was resolved leaves it resolved (the same
// capture); an alarm the agent still reports after its exception was resolved opens it again.
func TestResolvedEventsAndResends(t *testing.T) {
	st, err := store.OpenSQLite(context.Background(), filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	ctx, in, pub := running(t, st)
	status := statusMsg(t, protocol.Status{Store: "S001", State: "online", Epoch: "e1", Alarms: []string{"spool at 91% of max_size"},
		Quarantine: []protocol.Quarantined{{ID: "q1", Seq: 1, Terminal: "T1", At: time.Now(), Reason: "no rule"}}})
	in.Handle(ctx, status)
	pub.wait(t, 1)
	for _, e := range must(st.Exceptions(ctx, store.ExceptionFilter{})) {
		if _, err := st.UpdateException(ctx, e.ID, store.StateResolved, "ops", "seen"); err != nil {
			t.Fatal(err)
		}
	}
	in.Handle(ctx, status)
	pub.wait(t, 2)
	got := map[string]string{}
	for _, e := range must(st.Exceptions(ctx, store.ExceptionFilter{})) {
		got[e.Reason] = fmt.Sprint(e.State, " ", e.Count)
	}
	if got[store.ReasonQuarantine] != "resolved 1" || got[store.ReasonSpoolAlarm] != "open 2" {
		t.Fatalf("after the resend: %v, want the quarantine left resolved and the alarm open again, counted twice", got)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
