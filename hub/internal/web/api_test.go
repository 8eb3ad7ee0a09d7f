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
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

func newServer(t *testing.T) (*httptest.Server, Store) {
	t.Helper()
	ctx := context.Background()
	st, err := store.OpenSQLite(ctx, filepath.Join(t.TempDir(), "hub.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	if err := st.AddStore(ctx, "S001", "sha256$00$00"); err != nil {
		t.Fatal(err)
	}
	var recs []protocol.Record
	for i := 1; i <= 7; i++ {
		r := protocol.Record{Kind: protocol.KindSale, Store: "S001", Terminal: "T1", Receipt: fmt.Sprint(100 + i), BusinessDate: "2026-11-26",
			Total: int64(100 * i), Tenders: []protocol.Tender{{Type: "cash", Amount: int64(100 * i)}}, Epoch: "e1", Seq: uint64(i),
			CapturedAt: time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)}
		if i == 4 {
			continue // receipt 104 missing: a gap
		}
		r.Seq = uint64(len(recs) + 1)
		r.Seal()
		recs = append(recs, r)
	}
	if _, err := st.ApplyBatch(ctx, "S001", "e1", recs); err != nil {
		t.Fatal(err)
	}
	if _, err := st.RaiseException(ctx, store.Exception{Store: "S001", Reason: "hash_conflict", Key: "e1:3", Detail: "x"}); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(New(st, Options{Gatherer: prometheus.NewRegistry()}))
	t.Cleanup(srv.Close)
	return srv, st
}

func TestAPI(t *testing.T) {
	srv, _ := newServer(t)
	tests := []struct {
		method, path, body string
		code               int
		contains           []string
	}{
		{"GET", "/api/v1/stores", "", 200, []string{`"id": "S001"`, `"records": 6`}},
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
		{"GET", "/api/v1/exceptions?limit=1", "", 200, []string{"hash_conflict", `"next": 1`}},
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
			req, _ := http.NewRequest(tt.method, srv.URL+tt.path, strings.NewReader(tt.body))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			if resp.StatusCode != tt.code {
				t.Fatalf("status %d, want %d: %s", resp.StatusCode, tt.code, b)
			}
			for _, c := range tt.contains {
				if !strings.Contains(string(b), c) {
					t.Errorf("response lacks %q:\n%s", c, b)
				}
			}
		})
	}
}

func TestExceptionLifecycle(t *testing.T) {
	srv, _ := newServer(t)
	var list struct {
		Exceptions []store.Exception `json:"exceptions"`
	}
	resp, err := http.Get(srv.URL + "/api/v1/exceptions?store=S001")
	if err != nil {
		t.Fatal(err)
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Exceptions) != 1 {
		t.Fatalf("exceptions: %+v", list)
	}
	id := list.Exceptions[0].ID
	post := func(body string) (int, string) {
		resp, err := http.Post(fmt.Sprintf("%s/api/v1/exceptions/%d", srv.URL, id), "application/json", strings.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, b := post(`{"state":"acknowledged","by":"ana","comment":"looking"}`); code != 200 || !strings.Contains(b, "acknowledged") {
		t.Fatalf("acknowledge: %d %s", code, b)
	}
	if code, b := post(`{"state":"resolved","by":"ana","comment":"agent re-sent it"}`); code != 200 || !strings.Contains(b, "resolved") || !strings.Contains(b, "ana") {
		t.Fatalf("resolve: %d %s", code, b)
	}
	if code, _ := post(`{"state":"bogus","by":"ana"}`); code != 400 {
		t.Fatalf("bogus state accepted: %d", code)
	}
	resp, _ = http.Get(srv.URL + "/api/v1/exceptions?store=S001&state=open")
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Exceptions) != 0 {
		t.Fatalf("resolved exception still open: %+v", list.Exceptions)
	}
}

// TestOneStoreCannotHideAnother: store S001 has 300 open exceptions, S002 one, raised first.
// The API's first page counts S002's and the dashboard lists it (newest 10 per store).
func TestOneStoreCannotHideAnother(t *testing.T) {
	srv, st := newServer(t)
	ctx := context.Background()
	if _, err := st.(*store.DB).RaiseException(ctx, store.Exception{Store: "S002", Reason: "capture_quarantined", Key: "e9:q1", Detail: "S002 needs a look"}); err != nil {
		t.Fatal(err)
	}
	for i := range 300 {
		st.(*store.DB).RaiseException(ctx, store.Exception{Store: "S001", Reason: "capture_quarantined", Key: fmt.Sprint("e1:q", i), Detail: "flood"})
	}
	_, body := getT(t, srv.URL+"/api/v1/exceptions?state=open")
	var page struct {
		Exceptions []store.Exception      `json:"exceptions"`
		Counts     []store.ExceptionCount `json:"counts"`
		Next       int64                  `json:"next"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	var s002 int64
	for _, c := range page.Counts {
		if c.Store == "S002" {
			s002 = c.Exceptions
		}
	}
	if len(page.Exceptions) != 100 || page.Next == 0 || s002 != 1 {
		t.Fatalf("first page: %d exceptions, next %d, S002 counted %d; want 100, a cursor and S002's one", len(page.Exceptions), page.Next, s002)
	}
	// Following next reaches S002's exception itself.
	seen := len(page.Exceptions)
	for next := page.Next; next != 0; {
		_, body := getT(t, fmt.Sprintf("%s/api/v1/exceptions?state=open&before_id=%d", srv.URL, next))
		page.Next = 0
		json.Unmarshal([]byte(body), &page)
		seen += len(page.Exceptions)
		next = page.Next
	}
	if seen != 302 {
		t.Fatalf("paging saw %d exceptions, want 302", seen)
	}
	_, dash := getT(t, srv.URL+"/")
	if !strings.Contains(dash, "S002 needs a look") || strings.Count(dash, "<td>flood</td>")+strings.Count(dash, "<pre>flood</pre>") > 10 {
		t.Fatalf("dashboard does not show S002's exception or lists more than 10 of S001's:\n%s", dash)
	}
}

func getT(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}
