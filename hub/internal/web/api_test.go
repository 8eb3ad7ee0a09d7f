package web

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// fixture is a server on a real SQLite store with stores S001 (records, an exception,
// postings) and S002 (an exception, a posting), and an admin token.
type fixture struct {
	srv   *httptest.Server
	web   *Server
	st    *store.DB
	clock *clock
	admin string // admin token
	av    Availability
}

// clock is the settable clock of sessions and the throttle.
type clock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *clock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *clock) add(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func saleRecords(storeID string, n int, skip int) []protocol.Record {
	var recs []protocol.Record
	for i := 1; i <= n; i++ {
		r := protocol.Record{Kind: protocol.KindSale, Store: storeID, Terminal: "T1", Receipt: fmt.Sprint(100 + i), BusinessDate: "2026-11-26",
			Total: int64(100 * i), Tenders: []protocol.Tender{{Type: "cash", Amount: int64(100 * i)}}, Epoch: "e1",
			CapturedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
		if i == skip {
			continue // a gap
		}
		r.Seq = uint64(len(recs) + 1)
		r.Seal()
		recs = append(recs, r)
	}
	return recs
}

func newFixture(t *testing.T, o Options) *fixture {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, id := range []string{"S001", "S002"} {
		if err := st.AddStore(ctx, id, "sha256$00$00"); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := st.ApplyBatch(ctx, "S001", "e1", saleRecords("S001", 7, 4)); err != nil { // receipt 104 missing
		t.Fatal(err)
	}
	if _, err := st.ApplyBatch(ctx, "S002", "e1", saleRecords("S002", 1, 0)); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"S001", "S002"} {
		if _, err := st.RaiseException(ctx, store.Exception{Store: id, Reason: "hash_conflict", Key: "e1:3", Detail: "x"}); err != nil {
			t.Fatal(err)
		}
	}
	f := &fixture{st: st, clock: &clock{t: time.Date(2026, 12, 1, 9, 0, 0, 0, time.UTC)}}
	o.Gatherer = prometheus.NewRegistry()
	if o.Now == nil {
		o.Now = f.clock.now
	}
	f.web = New(st, o)
	f.srv = httptest.NewServer(f.web)
	t.Cleanup(f.srv.Close)
	f.admin = f.token(t, "admin", "admin")
	return f
}

// token adds an API token and returns it.
func (f *fixture) token(t *testing.T, name, role string, stores ...string) string {
	t.Helper()
	tok := auth.NewToken()
	if err := f.st.AddToken(context.Background(), store.APIToken{Name: name, Role: role, Stores: stores, Hash: auth.HashSecret(tok)}); err != nil {
		t.Fatal(err)
	}
	return tok
}

// user adds an operator with a cheaply hashed password (the hash's own parameters verify it).
func (f *fixture) user(t *testing.T, name, role, password string, stores ...string) {
	t.Helper()
	h := auth.HashPasswordWith(password, auth.Params{Memory: 1024, Time: 1, Threads: 1})
	if err := f.st.AddOperator(context.Background(), store.Operator{Name: name, Role: role, Stores: stores, PasswordHash: h}); err != nil {
		t.Fatal(err)
	}
}

// reply is a response read in full.
type reply struct {
	code int
	body string
	h    http.Header
}

// do sends a request; hdr are header lines "Name: value".
func (f *fixture) do(t *testing.T, method, path, body string, hdr ...string) reply {
	t.Helper()
	req, err := http.NewRequest(method, f.srv.URL+path, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range hdr {
		if h == "" {
			continue
		}
		k, v, _ := strings.Cut(h, ": ")
		req.Header.Set(k, v)
	}
	resp, err := f.srv.Client().Transport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return reply{resp.StatusCode, string(b), resp.Header}
}

func bearer(tok string) string { return "Authorization: Bearer " + tok }

// exceptionID returns the id of the store's exception.
func (f *fixture) exceptionID(t *testing.T, storeID string) int64 {
	t.Helper()
	l, err := f.st.Exceptions(context.Background(), store.ExceptionFilter{Store: storeID})
	if err != nil || len(l) != 1 {
		t.Fatalf("exceptions of %s: %v %v", storeID, l, err)
	}
	return l[0].ID
}

func TestAPI(t *testing.T) {
	f := newFixture(t, Options{})
	tests := []struct {
		method, path, body string
		code               int
		contains           []string
	}{
		{"GET", "/api/v1/stores", "", 200, []string{`"id": "S001"`, `"records": 6`, `"id": "S002"`}},
		{"GET", "/api/v1/stores/S001", "", 200, []string{`"applied_through": 6`}},
		{"GET", "/api/v1/stores/S999", "", 404, []string{`"error"`}},
		{"GET", "/api/v1/stores/S%2F1", "", 400, []string{"invalid store id"}},
		{"GET", "/api/v1/stores/S001/records?after_seq=2&limit=3", "", 200, []string{`"seq": 3`, `"seq": 5`, `"next_after_seq": 5`}},
		{"GET", "/api/v1/stores/S001/records?limit=0", "", 400, []string{"limit"}},
		{"GET", "/api/v1/stores/S001/records?after_seq=-1", "", 400, []string{"after_seq"}},
		{"GET", "/api/v1/stores/S001/days/2026-11-26", "", 200, []string{`"kind": "sale"`, `"count": 6`, `"total": 2400`, "104"}},
		{"GET", "/api/v1/stores/S001/days/26-11-2026", "", 400, []string{"YYYY-MM-DD"}},
		{"GET", "/api/v1/exceptions?store=S001&state=open", "", 200, []string{"hash_conflict"}},
		{"GET", "/api/v1/exceptions?reason=nothing", "", 200, []string{`"exceptions": []`}},
		// Numbers that overflow, are negative or are not integers are refused with a 400 naming the
		// parameter (issue 8 §4).
		{"GET", "/api/v1/stores/S001/records?after_seq=99999999999999999999", "", 400, []string{"after_seq"}},
		{"GET", "/api/v1/stores/S001/records?after_seq=9007199254740993", "", 400, []string{"after_seq", "2^53"}},
		{"GET", "/api/v1/stores/S001/records?limit=1e99", "", 400, []string{"limit"}},
		{"GET", "/api/v1/stores/S001/records?limit=99999999999999999999", "", 400, []string{"limit"}},
		{"GET", "/api/v1/exceptions?limit=1e99", "", 400, []string{"limit"}},
		{"GET", "/api/v1/exceptions?limit=-5", "", 400, []string{"limit"}},
		{"GET", "/api/v1/exceptions?limit=10001", "", 400, []string{"limit: must be an integer 1..10000"}},
		{"GET", "/api/v1/exceptions?before_id=99999999999999999999", "", 400, []string{"before_id"}},
		{"GET", "/api/v1/exceptions?before_id=0", "", 400, []string{"before_id"}},
		{"GET", "/api/v1/exceptions?per_store=x", "", 400, []string{"per_store"}},
		{"GET", "/api/v1/exceptions?limit=1", "", 200, []string{"hash_conflict", `"next": 2`}},
		{"GET", "/api/v1/exceptions?before_id=1", "", 200, []string{`"exceptions": []`}},
		{"GET", "/api/v1/exceptions/99999999999999999999", "", 400, []string{"id"}},
		{"GET", "/api/v1/exceptions/-1", "", 400, []string{"id"}},
		{"POST", "/api/v1/exceptions/99999999999999999999", `{"state":"resolved","by":"x"}`, 400, []string{"id"}},
		{"GET", "/api/v1/postings?limit=99999999999999999999", "", 400, []string{"limit"}},
		{"POST", "/api/v1/postings/99999999999999999999/repost", "", 400, []string{"id"}},
		{"GET", "/healthz", "", 200, []string{"ok"}},
		{"GET", "/metrics", "", 200, nil},
		{"GET", "/", "", 200, []string{"S001", "hash_conflict"}},
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			r := f.do(t, tt.method, tt.path, tt.body, bearer(f.admin))
			if r.code != tt.code {
				t.Fatalf("status %d, want %d: %s", r.code, tt.code, r.body)
			}
			for _, c := range tt.contains {
				if !strings.Contains(r.body, c) {
					t.Errorf("response lacks %q:\n%s", c, r.body)
				}
			}
		})
	}
}

func TestExceptionLifecycle(t *testing.T) {
	f := newFixture(t, Options{})
	id := f.exceptionID(t, "S001")
	post := func(body string) reply {
		return f.do(t, "POST", fmt.Sprintf("/api/v1/exceptions/%d", id), body, bearer(f.admin))
	}
	if r := post(`{"state":"acknowledged","comment":"looking"}`); r.code != 200 || !strings.Contains(r.body, "acknowledged") {
		t.Fatalf("acknowledge: %d %s", r.code, r.body)
	}
	// "by" in the body is not believed: the change is the principal's.
	if r := post(`{"state":"resolved","by":"somebody else","comment":"agent re-sent it"}`); r.code != 200 ||
		!strings.Contains(r.body, "resolved") || !strings.Contains(r.body, `"updated_by": "token:admin"`) {
		t.Fatalf("resolve: %d %s", r.code, r.body)
	}
	if r := post(`{"state":"bogus"}`); r.code != 400 {
		t.Fatalf("bogus state accepted: %d", r.code)
	}
	var list struct {
		Exceptions []store.Exception `json:"exceptions"`
	}
	r := f.do(t, "GET", "/api/v1/exceptions?store=S001&state=open", "", bearer(f.admin))
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.Exceptions) != 0 {
		t.Fatalf("resolved exception still open: %s", r.body)
	}
}

// TestOneStoreCannotHideAnother: store S001 floods 300 open exceptions after S002's. The API's
// first page counts S002's and the dashboard lists it (newest 10 per store); a principal limited
// to S002 is counted only S002's.
func TestOneStoreCannotHideAnother(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	if _, err := f.st.RaiseException(ctx, store.Exception{Store: "S002", Reason: "capture_quarantined", Key: "e9:q1", Detail: "S002 needs a look"}); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		if _, err := f.st.RaiseException(ctx, store.Exception{Store: "S001", Reason: "capture_quarantined", Key: fmt.Sprint("e1:q", i), Detail: "flood"}); err != nil {
			t.Fatal(err)
		}
	}
	type page struct {
		Exceptions []store.Exception      `json:"exceptions"`
		Counts     []store.ExceptionCount `json:"counts"`
		Next       int64                  `json:"next"`
	}
	get := func(path, tok string) page {
		t.Helper()
		r := f.do(t, "GET", path, "", bearer(tok))
		var p page
		if err := json.Unmarshal([]byte(r.body), &p); err != nil || r.code != 200 {
			t.Fatalf("%s: %d %s", path, r.code, r.body)
		}
		return p
	}
	counted := func(p page, id string) (n int64) {
		for _, c := range p.Counts {
			if c.Store == id {
				n += c.Exceptions
			}
		}
		return n
	}
	first := get("/api/v1/exceptions?state=open", f.admin)
	if len(first.Exceptions) != 100 || first.Next == 0 || counted(first, "S002") != 2 {
		t.Fatalf("first page: %d exceptions, next %d, S002 counted %d; want 100, a cursor and S002's two", len(first.Exceptions), first.Next, counted(first, "S002"))
	}
	// Following next reaches every exception, S002's included.
	seen := len(first.Exceptions)
	for next := first.Next; next != 0; {
		p := get(fmt.Sprintf("/api/v1/exceptions?state=open&before_id=%d", next), f.admin)
		seen += len(p.Exceptions)
		next = p.Next
	}
	if seen != 303 {
		t.Fatalf("paging saw %d exceptions, want 303", seen)
	}
	if p := get("/api/v1/exceptions?state=open", f.token(t, "s2", "viewer", "S002")); counted(p, "S001") != 0 || counted(p, "S002") != 2 || len(p.Exceptions) != 2 {
		t.Fatalf("S002-limited principal: %d exceptions, counts %+v", len(p.Exceptions), p.Counts)
	}
	dash := f.do(t, "GET", "/", "", bearer(f.admin)).body
	if !strings.Contains(dash, "S002 needs a look") || strings.Count(dash, "<td>flood</td>")+strings.Count(dash, "<pre>flood</pre>") > 10 {
		t.Fatalf("dashboard does not show S002's exception or lists more than 10 of S001's:\n%s", dash)
	}
}
