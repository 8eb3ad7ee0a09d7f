package web

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/reconcile"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// recorder is a broker stand-in that keeps what is published (the unit tests have no MQTT;
// testharness/e2e drives a real Mosquitto).
type recorder struct {
	mu  sync.Mutex
	msg map[string][][]byte
}

func (p *recorder) Publish(topic string, payload []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.msg == nil {
		p.msg = map[string][][]byte{}
	}
	p.msg[topic] = append(p.msg[topic], payload)
	return nil
}

// consoleFixture is the fixture served with a real reconcile.Closer (no ERP leg) as closer and
// replayer, S003 selling in EUR (a Z report that disagrees with the capture) and S004 in JPY.
func consoleFixture(t *testing.T) (*fixture, *recorder) {
	t.Helper()
	f := newFixture(t, Options{})
	pub := &recorder{}
	rc := &reconcile.Closer{St: f.st, Pub: pub, NoERP: true, ReplayWait: time.Millisecond}
	f.web = New(f.st, Options{Closer: rc, Replayer: rc, Gatherer: prometheus.NewRegistry(), Now: f.clock.now})
	f.srv = httptest.NewServer(f.web)
	t.Cleanup(f.srv.Close)
	ctx := context.Background()
	sale := func(store, cur string, seq uint64, kind protocol.Kind, total int64) protocol.Record {
		r := protocol.Record{Kind: kind, Store: store, Terminal: "T1", Receipt: fmt.Sprint(seq), BusinessDate: "2026-11-26", Currency: cur,
			Total: total, Tenders: []protocol.Tender{{Type: "card", Amount: total}}, Taxes: []protocol.Tax{{Code: "A", Taxable: total, Amount: total / 10}},
			Epoch: "e1", Seq: seq, CapturedAt: time.Date(2026, 11, 26, 10, 0, int(seq), 0, time.UTC)}
		return r
	}
	for _, id := range []string{"S003", "S004"} {
		if err := f.st.AddStore(ctx, id, "sha256$00$00"); err != nil {
			t.Fatal(err)
		}
	}
	z := sale("S003", "EUR", 3, protocol.KindZReport, 0)
	z.Tenders, z.Taxes, z.Receipt = nil, nil, ""
	z.Z = &protocol.ZReport{Net: 123450, Tenders: []protocol.TenderTotal{{Type: "card", Amount: 123450}}, Taxes: []protocol.Tax{{Code: "A", Amount: 12345}}}
	recs := []protocol.Record{sale("S003", "EUR", 1, protocol.KindSale, 123450), sale("S003", "EUR", 2, protocol.KindReturn, -320), z}
	jpy := []protocol.Record{sale("S004", "JPY", 1, protocol.KindSale, 1235)}
	for _, b := range [][]protocol.Record{recs, jpy} {
		for i := range b {
			b[i].Seal()
		}
		if _, err := f.st.ApplyBatch(ctx, b[0].Store, "e1", b); err != nil {
			t.Fatal(err)
		}
	}
	return f, pub
}

// putStatus stores an agent status that arrived ago before the fixture's clock.
func (f *fixture) putStatus(t *testing.T, st protocol.Status, ago time.Duration) {
	t.Helper()
	st.V = protocol.Version
	if err := f.st.PutStatus(context.Background(), st, f.clock.now().Add(-ago)); err != nil {
		t.Fatal(err)
	}
}

var rowRe = regexp.MustCompile(`<tr data-id="(S\d+)"`)

func TestFleetPage(t *testing.T) {
	f, _ := consoleFixture(t)
	now := f.clock.now()
	// S001: online, 2 minutes fast, backlog 5. S002: sent a status with backlog 42, then its
	// Will. S003: online without exceptions. S004: online status, but 10 minutes old.
	f.putStatus(t, protocol.Status{Store: "S001", State: "online", Version: "1.4.2", Clock: now.Add(-10*time.Second + 2*time.Minute), Backlog: 5,
		SpoolUsedBytes: 12 << 20, SpoolMaxBytes: 64 << 20,
		OldestUnsentAge: 12, LastCapture: map[string]time.Time{"T2": now.Add(-time.Hour), "T1": now.Add(-time.Minute)}}, 10*time.Second)
	f.putStatus(t, protocol.Status{Store: "S002", State: "online", Version: "1.4.1", Clock: now.Add(-time.Hour), Backlog: 42, OldestUnsentAge: 30}, time.Hour)
	f.putStatus(t, protocol.Status{Store: "S002", State: "offline"}, 50*time.Minute) // the Will
	f.putStatus(t, protocol.Status{Store: "S003", State: "online", Version: "1.4.2", Clock: now}, 0)
	f.putStatus(t, protocol.Status{Store: "S004", State: "online", Version: "1.4.2", Clock: now.Add(-10 * time.Minute)}, 10*time.Minute)

	if _, err := f.st.RaiseAlert(context.Background(), store.Alert{Kind: "terminal_silent", Store: "S003", Terminal: "T9", Since: now, Detail: "no sale for 2h"}); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, "GET", "/", "", bearer(f.admin))
	if r.code != 200 {
		t.Fatalf("GET /: %d %s", r.code, r.body)
	}
	var order []string
	for _, m := range rowRe.FindAllStringSubmatch(r.body, -1) {
		order = append(order, m[1])
	}
	// Offline with exceptions, then offline (stale status), then alerts, then exceptions only.
	if want := []string{"S002", "S004", "S003", "S001"}; fmt.Sprint(order) != fmt.Sprint(want) {
		t.Errorf("row order %v, want at risk first %v", order, want)
	}
	s2 := between(r.body, `<tr data-id="S002"`, "</tr>")
	if !strings.Contains(s2, "last known 42") || !strings.Contains(s2, "unknown since 2026-12-01 08:00:00Z") || !strings.Contains(s2, ">offline<") {
		t.Errorf("offline S002 does not show its last known backlog and since when:\n%s", s2)
	}
	if strings.Contains(s2, `<td class="num">0</td>`) {
		t.Errorf("offline S002 shows a backlog of 0:\n%s", s2)
	}
	s1 := between(r.body, `<tr data-id="S001"`, "</tr>")
	for _, want := range []string{">online<", `<td class="num">5</td>`, "1.4.2", "2m0s", "T1: 2026-12-01 08:59:00Z<br>T2: 2026-12-01 08:00:00Z", "hash_conflict", `href="/exceptions?store=S001">1<`,
		"12.0 MiB of 64.0 MiB (18%)"} {
		if !strings.Contains(s1, want) {
			t.Errorf("S001 row lacks %q:\n%s", want, s1)
		}
	}
	if s4 := between(r.body, `<tr data-id="S004"`, "</tr>"); !strings.Contains(s4, ">offline<") {
		t.Errorf("S004, silent for 10 minutes, is not offline:\n%s", s4)
	}
	if s3 := between(r.body, `<tr data-id="S003"`, "</tr>"); !strings.Contains(s3, `<a class="tag" href="/alerts?store=S003">terminal_silent T9</a>`) ||
		!strings.Contains(s3, "spool use: not reported by this agent") {
		t.Errorf("S003 row lacks its alert or the spool fallback:\n%s", s3)
	}
	counts := between(r.body, `id="fleet-counts"`, "</ul>")
	for _, want := range []string{"<b>4</b>stores", ">2</b>online", ">2</b>offline", ">4</b>at risk", `class="bad">1</b><a href="/alerts">open alerts`, "<b>2</b><a href=\"/exceptions\">open exceptions"} {
		if !strings.Contains(counts, want) {
			t.Errorf("counts lack %q: %s", want, counts)
		}
	}
}

func TestStorePage(t *testing.T) {
	f, _ := consoleFixture(t)
	r := f.do(t, "GET", "/stores/S003", "", bearer(f.admin))
	if r.code != 200 {
		t.Fatalf("GET /stores/S003: %d %s", r.code, r.body)
	}
	recs := between(r.body, `id="records"`, "</table>")
	for _, want := range []string{"EUR 1,234.50", "EUR -3.20", "card EUR 1,234.50", "z_report", "2026-11-26"} {
		if !strings.Contains(recs, want) {
			t.Errorf("records lack %q:\n%s", want, recs)
		}
	}
	if strings.Contains(recs, "123450") {
		t.Errorf("records show raw minor units:\n%s", recs)
	}
	for _, want := range []string{`src="/stores/S003/charts/throughput.svg"`, `src="/stores/S003/charts/latency.svg"`, "no data yet",
		`href="/calendar/S003/2026-11-26"`, `class="close-day" data-store="S003" data-date="2026-11-26"`, `<span class="warn">open</span>`, `id="replay"`} {
		if !strings.Contains(r.body, want) {
			t.Errorf("store page lacks %s", want)
		}
	}
	if r := f.do(t, "GET", "/stores/S004", "", bearer(f.admin)); !strings.Contains(r.body, "JPY 1,235") {
		t.Errorf("JPY store page lacks JPY 1,235:\n%s", between(r.body, `id="records"`, "</table>"))
	}
	// Paging: S001 has seqs 1..6; after_seq=3 shows 4..6 with a link to the older page.
	r = f.do(t, "GET", "/stores/S001?after_seq=3", "", bearer(f.admin))
	if !strings.Contains(r.body, "seq 4–6") || !strings.Contains(r.body, `id="older" href="/stores/S001?epoch=e1&amp;after_seq=0"`) || strings.Contains(r.body, `id="newer"`) {
		t.Errorf("page after seq 3:\n%s", between(r.body, "<h3>Records", `<h3>Replay`))
	}
	for path, code := range map[string]int{"/stores/S999": 404, "/stores/S001?after_seq=x": 400, "/stores/a+b": 400} {
		if r := f.do(t, "GET", path, "", bearer(f.admin)); r.code != code {
			t.Errorf("GET %s: %d, want %d", path, r.code, code)
		}
	}
}

func TestCalendar(t *testing.T) {
	f, _ := consoleFixture(t)
	// A real close of S003's day: its Z report says EUR 1,234.50 card and 123.45 tax A,
	// the capture 1,234.50 − 3.20 and 123.45 − 0.32.
	if r := f.do(t, "POST", "/api/v1/stores/S003/days/2026-11-26/close", "", bearer(f.admin)); r.code != 200 {
		t.Fatalf("close: %d %s", r.code, r.body)
	}
	if err := f.st.PutClose(context.Background(), store.CloseRecord{Store: "S004", BusinessDate: "2026-11-26", State: reconcile.StateClosed,
		Body: []byte(`{"state":"closed","z":{},"captured":{},"issues":[]}`)}); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, "GET", "/calendar?month=2026-11", "", bearer(f.admin))
	if r.code != 200 {
		t.Fatalf("calendar: %d %s", r.code, r.body)
	}
	for id, want := range map[string]string{"S001": `class="cal open" title="S001 2026-11-26: open"`, "S003": `class="cal differences" title="S003 2026-11-26: differences"`,
		"S004": `class="cal closed" title="S004 2026-11-26: closed ok"`} {
		if row := between(r.body, `<tr data-id="`+id+`"`, "</tr>"); !strings.Contains(row, want) || strings.Count(row, `class="cal none"`) != 29 {
			t.Errorf("calendar row of %s lacks %s or has not 29 days without data:\n%s", id, want, row)
		}
	}
	if !strings.Contains(r.body, `href="/calendar?month=2026-10"`) || !strings.Contains(r.body, `href="/calendar?month=2026-12"`) {
		t.Error("calendar lacks the month links")
	}
	if r := f.do(t, "GET", "/calendar", "", bearer(f.admin)); !strings.Contains(r.body, "<strong>2026-12</strong>") {
		t.Error("calendar does not default to the clock's month")
	}
	r = f.do(t, "GET", "/calendar/S003/2026-11-26", "", bearer(f.admin))
	if r.code != 200 {
		t.Fatalf("day: %d %s", r.code, r.body)
	}
	cmp := between(r.body, `id="comparison"`, "</table>")
	for _, want := range []string{
		`<tr class="diff"><td>T1</td><td>tender card</td>
<td class="num">EUR 1,234.50</td><td class="num">EUR 1,231.30</td>
<td class="num">EUR 3.20</td>`,
		`<tr class="diff"><td>T1</td><td>tax A</td>
<td class="num">EUR 123.45</td><td class="num">EUR 123.13</td>`,
	} {
		if !strings.Contains(cmp, want) {
			t.Errorf("comparison lacks\n%s\nin\n%s", want, cmp)
		}
	}
	if issues := between(r.body, `id="issues"`, "</table>"); !strings.Contains(r.body, "differences</span> at") ||
		!strings.Contains(issues, `<tr class="diff"><td>z_mismatch_tender</td>`) || !strings.Contains(issues, `<tr class="diff"><td>z_mismatch_tax</td>`) {
		t.Errorf("day page lacks the close state or its differences:\n%s", between(r.body, `id="close-state"`, `<h3>Captured</h3>`))
	}
	if r := f.do(t, "GET", "/calendar/S004/2026-11-26", "", bearer(f.admin)); !strings.Contains(r.body, "None: Z, captured and ERP agree.") {
		t.Errorf("agreeing day:\n%s", r.body)
	}
	if r := f.do(t, "GET", "/calendar/S002/2026-11-26", "", bearer(f.admin)); !strings.Contains(r.body, "Not closed yet.") {
		t.Errorf("day never closed:\n%s", r.body)
	}
	for path, code := range map[string]int{"/calendar?month=2026-13": 400, "/calendar/S001/26-11-2026": 400, "/calendar/S999/2026-11-26": 404} {
		if r := f.do(t, "GET", path, "", bearer(f.admin)); r.code != code {
			t.Errorf("GET %s: %d, want %d", path, r.code, code)
		}
	}
}

func TestCompareLines(t *testing.T) {
	tot := func(cash, card, taxA, net int64) reconcile.Totals {
		return reconcile.Totals{Tenders: map[string]int64{"cash": cash, "card": card}, Taxes: map[string]int64{"A": taxA}, Net: net}
	}
	got := compareLines(reconcile.Result{
		Z:        map[string]reconcile.Totals{"T1": tot(500, 1000, 150, 1500)},
		Captured: map[string]reconcile.Totals{"T1": tot(500, 900, 150, 1400), "T2": {Tenders: map[string]int64{"cash": 70}, Net: 70}},
	})
	var lines []string
	for _, ct := range got {
		for _, l := range ct.Lines {
			lines = append(lines, fmt.Sprintf("%s %s %s z=%d(%v) c=%d d=%d %v", ct.Terminal, l.What, l.Key, l.Z, l.HasZ, l.Captured, l.ZMinusCapture, l.Differs))
		}
	}
	want := []string{
		"T1 tender card z=1000(true) c=900 d=100 true",
		"T1 tender cash z=500(true) c=500 d=0 false",
		"T1 tax A z=150(true) c=150 d=0 false",
		"T1 net total z=1500(true) c=1400 d=100 true",
		"T2 tender cash z=0(false) c=70 d=-70 true", // no Z report: every line differs
		"T2 net total z=0(false) c=70 d=-70 true",
	}
	if strings.Join(lines, "\n") != strings.Join(want, "\n") {
		t.Errorf("compareLines:\n%s\nwant\n%s", strings.Join(lines, "\n"), strings.Join(want, "\n"))
	}
}

func TestReplayEndpoint(t *testing.T) {
	f, pub := consoleFixture(t)
	ok := `{"terminal":"T1","business_date":"2026-11-26","from_receipt":104,"to_receipt":104}`
	r := f.do(t, "POST", "/api/v1/stores/S001/replay", ok, bearer(f.token(t, "op", "operator")))
	if r.code != 202 {
		t.Fatalf("replay: %d %s", r.code, r.body)
	}
	var got struct{ ID string }
	if err := json.Unmarshal([]byte(r.body), &got); err != nil || got.ID == "" {
		t.Fatalf("replay answer %s: %v", r.body, err)
	}
	if c, err := f.st.Command(context.Background(), got.ID); err != nil || c.Store != "S001" {
		t.Errorf("command %s not recorded: %+v %v", got.ID, c, err)
	}
	msgs := pub.msg[protocol.CommandsTopic("S001")]
	if len(msgs) != 1 {
		t.Fatalf("published %d commands to S001", len(msgs))
	}
	cmd, err := protocol.DecodeCommand(msgs[0])
	if err != nil || cmd.ID != got.ID || cmd.Type != protocol.CommandReplay || cmd.FromReceipt != 104 || cmd.ToReceipt != 104 || cmd.Terminal != "T1" {
		t.Errorf("published command %+v, %v", cmd, err)
	}
	for _, c := range []struct {
		body  string
		token string
		code  int
	}{
		{ok, f.token(t, "viewer", "viewer"), 403},
		{ok, f.token(t, "s2op", "operator", "S002"), 404},
		{`{"terminal":"T1","business_date":"2026-11-26","from_receipt":5,"to_receipt":4}`, f.admin, 400},
		{`{"terminal":"T1","business_date":"2026-11-26","from_receipt":1,"to_receipt":100001}`, f.admin, 400},
		{`{"terminal":"T1","business_date":"yesterday","from_receipt":1,"to_receipt":2}`, f.admin, 400},
		{`{"terminal":"T\u0000","business_date":"2026-11-26","from_receipt":1,"to_receipt":2}`, f.admin, 400},
		{`{"terminal":"T1","business_date":"2026-11-26","from_receipt":1,"to_receipt":2,"epoch":"e1"}`, f.admin, 400},
		{`{"id":"mine","epoch":"e1","from_seq":1,"to_seq":2}`, f.admin, 400},
		{`{"epoch":"e1","from_seq":0,"to_seq":2}`, f.admin, 400},
		{`{}`, f.admin, 400},
		{`{"bogus":1}`, f.admin, 400},
	} {
		if r := f.do(t, "POST", "/api/v1/stores/S001/replay", c.body, bearer(c.token)); r.code != c.code {
			t.Errorf("replay %s: %d, want %d: %s", c.body, r.code, c.code, r.body)
		}
	}
	if r := f.do(t, "POST", "/api/v1/stores/S001/replay", `{"epoch":"e1","from_seq":1,"to_seq":2}`, bearer(f.admin)); r.code != 202 {
		t.Errorf("seq replay: %d %s", r.code, r.body)
	}
	if n := len(pub.msg[protocol.CommandsTopic("S001")]); n != 2 {
		t.Errorf("%d commands published, want 2 (the refused ones publish nothing)", n)
	}
}

// BenchmarkFleetPage1000 measures the server time of the fleet page of 1,000 stores with
// statuses, exceptions and alerts on a real SQLite store (the goal is at most 300 ms).
func BenchmarkFleetPage1000(b *testing.B) {
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(b.TempDir(), "hub.db"))
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	now := time.Now().UTC()
	for i := range 1000 {
		id := fmt.Sprintf("S%04d", i)
		if err := st.AddStore(ctx, id, "sha256$00$00"); err != nil {
			b.Fatal(err)
		}
		state := "online"
		if i%10 == 0 {
			state = "offline"
		}
		if err := st.PutStatus(ctx, protocol.Status{V: protocol.Version, Store: id, State: state, Version: "1.4.2", Clock: now, Backlog: uint64(i % 7),
			OldestUnsentAge: float64(i % 400), LastCapture: map[string]time.Time{"T1": now, "T2": now}}, now); err != nil {
			b.Fatal(err)
		}
		if i%20 == 0 {
			if _, err := st.RaiseAlert(ctx, store.Alert{Kind: "store_offline", Store: id, Since: now}); err != nil {
				b.Fatal(err)
			}
		}
		for j := range i % 4 {
			if _, err := st.RaiseException(ctx, store.Exception{Store: id, Reason: "missing_receipts", Key: fmt.Sprint(j), Detail: "receipts 4-5 of T1"}); err != nil {
				b.Fatal(err)
			}
		}
	}
	srv := New(st, Options{Gatherer: prometheus.NewRegistry()})
	tok := "lbt_bench"
	if err := st.AddToken(ctx, store.APIToken{Name: "bench", Role: "viewer", Hash: auth.HashSecret(tok)}); err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for b.Loop() {
		req := httptest.NewRequest("GET", "http://localhost/", nil)
		req.Header.Set("Authorization", "Bearer "+tok)
		w := httptest.NewRecorder()
		srv.ServeHTTP(w, req)
		if w.Code != 200 || strings.Count(w.Body.String(), "<tr data-id=") != 1000 {
			b.Fatalf("fleet page: %d, %d rows", w.Code, strings.Count(w.Body.String(), "<tr data-id="))
		}
	}
}

// between is s from the first start to the next end after it ("" without start).
func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	if j := strings.Index(s[i:], end); j >= 0 {
		return s[i : i+j]
	}
	return s[i:]
}
