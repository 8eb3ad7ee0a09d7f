package web

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/reconcile"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// published records what a Closer would send to agents over the broker.
type published struct {
	mu   sync.Mutex
	msgs []string
}

func (p *published) Publish(topic string, payload []byte) error {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.msgs = append(p.msgs, topic+" "+string(payload))
	return nil
}

// closerReplayer is the hub's Replayer, a reconcile.Closer on the fixture's store, bound once
// the fixture exists.
type closerReplayer struct{ c *reconcile.Closer }

func (r *closerReplayer) Replay(ctx context.Context, st string, cmd protocol.Command) (string, error) {
	return r.c.Replay(ctx, st, cmd)
}

// exceptionsFixture is a fixture with a Replayer publishing to pub, and more exceptions in
// S001: an old agent alarm, a missing_receipts gap and an erp_rejected posting.
func exceptionsFixture(t *testing.T) (*fixture, *published) {
	t.Helper()
	rep, pub := &closerReplayer{}, &published{}
	f := newFixture(t, Options{Replayer: rep})
	rep.c = &reconcile.Closer{St: f.st, Pub: pub}
	ctx := context.Background()
	for _, e := range []store.Exception{
		{Store: "S001", Reason: store.ReasonSpoolAlarm, Key: "disk", Detail: "spool 90% full", CreatedAt: f.clock.now().Add(-48 * time.Hour)},
		{Store: "S001", Reason: reconcile.ReasonMissingReceipts, Key: "2026-11-26|T1|104-104", Detail: "terminal T1: receipts 104..104 missing"},
	} {
		if _, err := f.st.RaiseException(ctx, e); err != nil {
			t.Fatal(err)
		}
	}
	ps, err := f.st.ClaimPostings(ctx, "test", time.Minute, 1)
	if err != nil || len(ps) != 1 {
		t.Fatalf("claim: %v %v", ps, err)
	}
	if err := f.st.FinishPosting(ctx, ps[0].ID, "test", store.PostingOutcome{Rejected: true, Error: "unknown SKU"}); err != nil {
		t.Fatal(err)
	}
	return f, pub
}

// idOf returns the id of the store's exception of a reason.
func (f *fixture) idOf(t *testing.T, storeID, reason string) int64 {
	t.Helper()
	l, err := f.st.Exceptions(context.Background(), store.ExceptionFilter{Store: storeID, Reason: reason})
	if err != nil || len(l) != 1 {
		t.Fatalf("%s exceptions of %s: %v %v", reason, storeID, l, err)
	}
	return l[0].ID
}

// rows returns the exception ids of the queue table of an exceptions page, in order.
func rows(page string) []string {
	var ids []string
	for _, part := range strings.Split(page, `<tr data-id="`)[1:] {
		id, _, _ := strings.Cut(part, `"`)
		ids = append(ids, id)
	}
	return ids
}

func TestExceptionsPageFilters(t *testing.T) {
	f, _ := exceptionsFixture(t)
	id := func(storeID, reason string) string { return fmt.Sprint(f.idOf(t, storeID, reason)) }
	conflict1, conflict2, alarm, gap, rejected := id("S001", "hash_conflict"), id("S002", "hash_conflict"), id("S001", store.ReasonSpoolAlarm),
		id("S001", reconcile.ReasonMissingReceipts), id("S001", store.ReasonERPRejected)
	if _, err := f.st.UpdateException(context.Background(), f.idOf(t, "S002", "hash_conflict"), store.StateResolved, "ops", ""); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"", []string{rejected, gap, alarm, conflict1}}, // open by default, newest first
		{"?state=any", []string{rejected, gap, alarm, conflict2, conflict1}},
		{"?state=resolved", []string{conflict2}},
		{"?store=S001&reason=hash_conflict", []string{conflict1}},
		{"?reason=" + store.ReasonERPRejected, []string{rejected}},
		{"?age_hours=24", []string{alarm}},
		{"?age_hours=24&store=S002", nil},
		{"?state=any&before_id=" + conflict2, []string{conflict1}},
	} {
		r := f.do(t, "GET", "/exceptions"+c.query, "", bearer(f.admin))
		if got := rows(r.body); r.code != 200 || strings.Join(got, " ") != strings.Join(c.want, " ") {
			t.Errorf("/exceptions%s: %d, rows %v, want %v", c.query, r.code, got, c.want)
		}
	}
	for _, q := range []string{"?age_hours=0", "?age_hours=x", "?before_id=-1"} {
		if r := f.do(t, "GET", "/exceptions"+q, "", bearer(f.admin)); r.code != 400 {
			t.Errorf("/exceptions%s: %d, want 400", q, r.code)
		}
	}
	// The API takes the same age filter.
	r := f.do(t, "GET", "/api/v1/exceptions?age_hours=24", "", bearer(f.admin))
	var list struct{ Exceptions []store.Exception }
	if err := json.Unmarshal([]byte(r.body), &list); err != nil || len(list.Exceptions) != 1 || fmt.Sprint(list.Exceptions[0].ID) != alarm {
		t.Errorf("API age filter: %d %s", r.code, r.body)
	}
	// The actions a row offers depend on its reason.
	page := f.do(t, "GET", "/exceptions", "", bearer(f.admin)).body
	for _, c := range []struct{ id, action string }{{gap, "replay"}, {rejected, "reposted"}} {
		if n := strings.Count(page, `data-action="`+c.action+`"`); n != 1 || !strings.Contains(page, `data-id="`+c.id+`" data-action="`+c.action+`"`) {
			t.Errorf("the page offers %q %d times, want once for exception %s", c.action, n, c.id)
		}
	}
}

func TestExceptionsPaging(t *testing.T) {
	f := newFixture(t, Options{})
	for i := range 120 {
		if _, err := f.st.RaiseException(context.Background(), store.Exception{Store: "S001", Reason: "capture_quarantined", Key: fmt.Sprint("q", i)}); err != nil {
			t.Fatal(err)
		}
	}
	seen, pages := map[string]bool{}, 0
	for next := "/exceptions?store=S001&limit=10000"; next != ""; pages++ { // the page ignores limit
		r := f.do(t, "GET", next, "", bearer(f.admin))
		for _, id := range rows(r.body) {
			if seen[id] {
				t.Fatalf("page %s repeats exception %s", next, id)
			}
			seen[id] = true
		}
		next = ""
		if _, after, ok := strings.Cut(r.body, `<a id="next" href="`); ok {
			next, _, _ = strings.Cut(after, `"`)
			next = strings.ReplaceAll(next, "&amp;", "&")
			if !strings.Contains(next, "store=S001") {
				t.Fatalf("next page %s drops the filter", next)
			}
		}
	}
	if len(seen) != 121 || pages != 3 {
		t.Fatalf("%d pages showed %d exceptions, want 3 pages of 121", pages, len(seen))
	}
}

// The history of an exception names the principal who changed it; its page shows it.
func TestExceptionHistory(t *testing.T) {
	f := newFixture(t, Options{})
	f.user(t, "ann", "operator", "secret-ann", "S001")
	cookie, csrf := f.login(t, "ann", "secret-ann")
	id := f.exceptionID(t, "S001")
	r := f.do(t, "POST", fmt.Sprintf("/api/v1/exceptions/%d", id), `{"state":"resolved","comment":"re-sent by the agent"}`,
		cookie, "X-CSRF-Token: "+csrf, "Origin: "+f.srv.URL)
	if r.code != 200 {
		t.Fatalf("resolve: %d %s", r.code, r.body)
	}
	r = f.do(t, "GET", fmt.Sprintf("/api/v1/exceptions/%d/history", id), "", cookie)
	var h struct {
		Exception exceptionView          `json:"exception"`
		History   []store.ExceptionEvent `json:"history"`
	}
	if err := json.Unmarshal([]byte(r.body), &h); err != nil || r.code != 200 || len(h.History) != 2 {
		t.Fatalf("history: %d %s", r.code, r.body)
	}
	if e := h.History[1]; e.Actor != "user:ann" || e.From != store.StateOpen || e.To != store.StateResolved || e.Comment != "re-sent by the agent" || e.At.IsZero() {
		t.Fatalf("history entry %+v, want ann's resolve", e)
	}
	if e := h.History[0]; e.Action != store.ActionRaised || e.Actor != "hub" {
		t.Fatalf("first entry %+v, want the raise", e)
	}
	page := f.do(t, "GET", fmt.Sprintf("/exceptions/%d", id), "", cookie)
	if page.code != 200 || !strings.Contains(page.body, "<td>user:ann</td>") || !strings.Contains(page.body, "re-sent by the agent") ||
		!strings.Contains(page.body, "changed open → resolved") || !strings.Contains(page.body, "Exception "+fmt.Sprint(id)) {
		t.Fatalf("exception page: %d %s", page.code, page.body)
	}
	// Another store's exception, its history and its page are not found.
	other := f.exceptionID(t, "S002")
	for _, path := range []string{"/api/v1/exceptions/%d/history", "/exceptions/%d"} {
		if r := f.do(t, "GET", fmt.Sprintf(path, other), "", cookie); r.code != 404 || strings.Contains(r.body, "hash_conflict") {
			t.Errorf("ann GET %s: %d %s", fmt.Sprintf(path, other), r.code, r.body)
		}
		if r := f.do(t, "GET", fmt.Sprintf(path, other), "", bearer(f.admin)); r.code != 200 {
			t.Errorf("admin GET %s: %d", fmt.Sprintf(path, other), r.code)
		}
	}
}

func TestBulkExceptions(t *testing.T) {
	f, _ := exceptionsFixture(t)
	tok := bearer(f.token(t, "s1op", "operator", "S001"))
	mine, other, alarm := f.idOf(t, "S001", "hash_conflict"), f.idOf(t, "S002", "hash_conflict"), f.idOf(t, "S001", store.ReasonSpoolAlarm)
	bulk := func(body string) reply { return f.do(t, "POST", "/api/v1/exceptions/bulk", body, tok) }
	r := bulk(fmt.Sprintf(`{"ids":[%d,%d,%d,99999,%d],"state":"acknowledged","comment":"triage"}`, mine, other, alarm, mine))
	var res struct {
		Results  []bulkResult `json:"results"`
		Changed  int          `json:"changed"`
		NotFound int          `json:"not_found"`
	}
	if err := json.Unmarshal([]byte(r.body), &res); err != nil || r.code != 200 || res.Changed != 2 || res.NotFound != 2 || len(res.Results) != 4 {
		t.Fatalf("bulk: %d %s", r.code, r.body)
	}
	want := map[int64]int{mine: 200, alarm: 200, other: 404, 99999: 404}
	for _, x := range res.Results {
		if want[x.ID] != x.Status {
			t.Errorf("result %+v, want status %d", x, want[x.ID])
		}
		if x.Status == 404 && strings.Contains(x.Error, "hash_conflict") {
			t.Errorf("a 404 tells about the exception: %+v", x)
		}
	}
	ctx := context.Background()
	if e, _ := f.st.Exception(ctx, other); e.State != store.StateOpen {
		t.Fatalf("another store's exception changed by a bulk action: %+v", e)
	}
	for _, id := range []int64{mine, alarm} {
		h, _ := f.st.ExceptionHistory(ctx, id)
		if e, _ := f.st.Exception(ctx, id); e.State != store.StateAcknowledged || len(h) != 2 || h[1].Actor != "token:s1op" || h[1].Comment != "triage" {
			t.Fatalf("exception %d after bulk: %+v, history %+v", id, e, h)
		}
	}
	// The same request by an unlimited operator changes the other store's too: the defence is the scope.
	r = f.do(t, "POST", "/api/v1/exceptions/bulk", fmt.Sprintf(`{"ids":[%d],"state":"resolved"}`, other), bearer(f.admin))
	if e, _ := f.st.Exception(ctx, other); r.code != 200 || e.State != store.StateResolved {
		t.Fatalf("admin bulk: %d %s; %+v", r.code, r.body, e)
	}
	// With a session cookie but without the session's CSRF token (another site's form) it is refused.
	f.user(t, "ann", "operator", "secret-ann")
	cookie, csrf := f.login(t, "ann", "secret-ann")
	forged := fmt.Sprintf(`{"ids":[%d],"state":"resolved","comment":"csrf"}`, alarm)
	if r := f.do(t, "POST", "/api/v1/exceptions/bulk", forged, cookie, "Origin: "+f.srv.URL); r.code != 403 {
		t.Fatalf("bulk without the CSRF token: %d %s", r.code, r.body)
	}
	if e, _ := f.st.Exception(ctx, alarm); e.State != store.StateAcknowledged {
		t.Fatalf("bulk without the CSRF token changed %+v", e)
	}
	if r := f.do(t, "POST", "/api/v1/exceptions/bulk", forged, cookie, "Origin: "+f.srv.URL, "X-CSRF-Token: "+csrf); r.code != 200 {
		t.Fatalf("bulk with the CSRF token: %d %s", r.code, r.body)
	}
	many := make([]string, maxBulk+1)
	for i := range many {
		many[i] = fmt.Sprint(i + 1)
	}
	for _, body := range []string{`{"ids":[],"state":"resolved"}`, `{"ids":[` + strings.Join(many, ",") + `],"state":"resolved"}`,
		fmt.Sprintf(`{"ids":[%d],"state":"reposted"}`, mine), fmt.Sprintf(`{"ids":[%d],"state":"open"}`, mine), `{"ids":"1"}`, `{"ids":[1],"state":"resolved","by":"x"}`} {
		if r := bulk(body); r.code != 400 {
			t.Errorf("bulk %.60s: %d, want 400: %s", body, r.code, r.body)
		}
	}
	// Every bulk action is audited with its ids.
	a, err := f.st.Audit(ctx, 0, 100)
	ids := []int64{mine, other, alarm, 99999}
	slices.Sort(ids)
	if err != nil || !slices.ContainsFunc(a, func(e store.AuditEntry) bool {
		return e.Actor == "token:s1op" && e.Action == "POST /api/v1/exceptions/bulk" && strings.Contains(e.Detail, fmt.Sprintf("ids=%v", ids))
	}) {
		t.Fatalf("no audit entry of the bulk action on %v: %+v, %v", ids, a, err)
	}
}

// A viewer sees the queue and an exception's page without any action, and the API refuses
// the actions.
func TestExceptionsViewer(t *testing.T) {
	f, _ := exceptionsFixture(t)
	v := bearer(f.token(t, "v", "viewer"))
	id := f.idOf(t, "S001", reconcile.ReasonMissingReceipts)
	for _, path := range []string{"/exceptions", fmt.Sprintf("/exceptions/%d", id)} {
		r := f.do(t, "GET", path, "", v)
		if r.code != 200 || strings.Contains(r.body, "data-action") || strings.Contains(r.body, "data-bulk") || strings.Contains(r.body, `type="checkbox"`) || strings.Contains(r.body, `id="comment"`) {
			t.Errorf("viewer %s: %d, has actions:\n%s", path, r.code, r.body)
		}
		// An operator gets them: the check above can fail.
		if r := f.do(t, "GET", path, "", bearer(f.admin)); !strings.Contains(r.body, `data-action="replay"`) {
			t.Errorf("admin %s has no replay action", path)
		}
	}
	for _, c := range []struct{ path, body string }{
		{fmt.Sprintf("/api/v1/exceptions/%d", id), `{"state":"resolved"}`},
		{"/api/v1/exceptions/bulk", fmt.Sprintf(`{"ids":[%d],"state":"resolved"}`, id)},
		{fmt.Sprintf("/api/v1/exceptions/%d/replay", id), ``},
	} {
		if r := f.do(t, "POST", c.path, c.body, v); r.code != 403 {
			t.Errorf("viewer POST %s: %d, want 403", c.path, r.code)
		}
	}
	if e, _ := f.st.Exception(context.Background(), id); e.State != store.StateOpen {
		t.Fatalf("a viewer changed %+v", e)
	}
}

// Request replay sends the agent a replay command for the gap and acknowledges the exception
// naming it; re-post queues an erp_rejected exception's posting again.
func TestExceptionReplayAndRepost(t *testing.T) {
	f, pub := exceptionsFixture(t)
	ctx := context.Background()
	gap := f.idOf(t, "S001", reconcile.ReasonMissingReceipts)
	r := f.do(t, "POST", fmt.Sprintf("/api/v1/exceptions/%d/replay", gap), `{"comment":"till was offline"}`, bearer(f.admin))
	var res struct {
		Exception store.Exception `json:"exception"`
		Command   string          `json:"command"`
	}
	if err := json.Unmarshal([]byte(r.body), &res); err != nil || r.code != 200 || res.Command == "" || res.Exception.State != store.StateAcknowledged {
		t.Fatalf("replay: %d %s", r.code, r.body)
	}
	cmd, err := f.st.Command(ctx, res.Command)
	if err != nil || cmd.Command.Type != protocol.CommandReplay || cmd.Command.Terminal != "T1" || cmd.Command.BusinessDate != "2026-11-26" ||
		cmd.Command.FromReceipt != 104 || cmd.Command.ToReceipt != 104 {
		t.Fatalf("command %+v, %v", cmd, err)
	}
	if len(pub.msgs) != 1 || !strings.HasPrefix(pub.msgs[0], protocol.CommandsTopic("S001")+" ") || !strings.Contains(pub.msgs[0], res.Command) {
		t.Fatalf("published %v", pub.msgs)
	}
	h, _ := f.st.ExceptionHistory(ctx, gap)
	if last := h[len(h)-1]; last.Actor != "token:admin" || !strings.Contains(last.Comment, res.Command) || !strings.Contains(last.Comment, "till was offline") {
		t.Fatalf("history after replay: %+v", h)
	}
	other := f.idOf(t, "S001", "hash_conflict")
	if r := f.do(t, "POST", fmt.Sprintf("/api/v1/exceptions/%d/replay", other), "", bearer(f.admin)); r.code != 400 || len(pub.msgs) != 1 {
		t.Fatalf("replay of a hash_conflict: %d %s; published %d", r.code, r.body, len(pub.msgs))
	}
	// A store-limited operator cannot replay another store's gap.
	if _, err := f.st.RaiseException(ctx, store.Exception{Store: "S002", Reason: reconcile.ReasonMissingReceipts, Key: "2026-11-26|T1|5-6"}); err != nil {
		t.Fatal(err)
	}
	s1 := bearer(f.token(t, "s1op", "operator", "S001"))
	if r := f.do(t, "POST", fmt.Sprintf("/api/v1/exceptions/%d/replay", f.idOf(t, "S002", reconcile.ReasonMissingReceipts)), "", s1); r.code != 404 || len(pub.msgs) != 1 {
		t.Fatalf("replay of another store's gap: %d %s; published %d", r.code, r.body, len(pub.msgs))
	}

	rejected := f.idOf(t, "S001", store.ReasonERPRejected)
	r = f.do(t, "GET", fmt.Sprintf("/api/v1/exceptions/%d/history", rejected), "", bearer(f.admin))
	var v struct {
		Exception exceptionView `json:"exception"`
	}
	if err := json.Unmarshal([]byte(r.body), &v); err != nil || v.Exception.PostingID == 0 {
		t.Fatalf("erp_rejected exception names no posting: %s", r.body)
	}
	if page := f.do(t, "GET", fmt.Sprintf("/exceptions/%d", rejected), "", bearer(f.admin)).body; !strings.Contains(page, fmt.Sprintf("Posting %d", v.Exception.PostingID)) || !strings.Contains(page, "unknown SKU") {
		t.Fatalf("exception page lacks its posting:\n%s", page)
	}
	if r := f.do(t, "POST", fmt.Sprintf("/api/v1/exceptions/%d", rejected), `{"state":"reposted","comment":"SKU created"}`, bearer(f.admin)); r.code != 200 {
		t.Fatalf("repost: %d %s", r.code, r.body)
	}
	if p, err := f.st.Posting(ctx, v.Exception.PostingID); err != nil || p.State != store.PostingPending {
		t.Fatalf("posting after repost: %+v, %v", p, err)
	}
}

// An agent's text (a quarantined capture's key and detail) cannot inject markup or script into
// the console's pages.
func TestExceptionPagesEscapeAgentText(t *testing.T) {
	f := newFixture(t, Options{})
	const evil = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	if _, err := f.st.RaiseException(context.Background(), store.Exception{Store: "S001", Reason: "capture_quarantined", Key: evil, Detail: evil}); err != nil {
		t.Fatal(err)
	}
	id := f.idOf(t, "S001", "capture_quarantined")
	for _, path := range []string{"/exceptions", fmt.Sprintf("/exceptions/%d", id)} {
		r := f.do(t, "GET", path, "", bearer(f.admin))
		if r.code != 200 || strings.Contains(r.body, "<script>alert") || strings.Contains(r.body, "<img src=x") || !strings.Contains(r.body, "&lt;script&gt;alert(1)") {
			t.Errorf("%s: %d, the agent's text is not escaped:\n%s", path, r.code, r.body)
		}
	}
}
