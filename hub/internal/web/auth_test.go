package web

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// nopCloser and nopRefresher serve the close and inventory routes so that the route table has
// them; the tests only need them to answer.
type nopCloser struct{}

func (nopCloser) CloseDay(context.Context, string, string) (any, error) {
	return map[string]string{"state": "ok"}, nil
}
func (nopCloser) ClosedDay(context.Context, string, string) (any, error) {
	return map[string]string{"state": "ok"}, nil
}

type nopReplayer struct{}

func (nopReplayer) Replay(context.Context, string, protocol.Command) (string, error) {
	return "replay-1", nil
}

type nopRefresher struct{}

func (nopRefresher) RefreshInventory(context.Context) (any, error) {
	return map[string]int{"stores": 0}, nil
}

func fullFixture(t *testing.T) *fixture {
	return newAvailFixture(t, Options{Closer: nopCloser{}, Inventory: nopRefresher{}, Replayer: nopReplayer{}})
}

// concrete fills a route pattern's wildcards: it returns the method and a path.
func concrete(pattern string, id int64) (string, string) {
	method, path, _ := strings.Cut(pattern, " ")
	path = strings.NewReplacer("{store}", "S001", "{date}", "2026-11-26", "{id}", fmt.Sprint(id), "{chart}", "backlog.svg", "{$}", "",
		"{channel}", "web", "{order_id}", "W-1").Replace(path)
	return method, path
}

func sessionCookie(r reply) string {
	for _, c := range (&http.Response{Header: r.h}).Cookies() {
		if c.Name == SessionCookie {
			return SessionCookie + "=" + c.Value
		}
	}
	return ""
}

// login logs in and returns the Cookie header line and the CSRF token.
func (f *fixture) login(t *testing.T, user, password string) (cookie, csrf string) {
	t.Helper()
	r := f.do(t, "POST", "/api/v1/session", fmt.Sprintf(`{"username":%q,"password":%q}`, user, password), "Origin: "+f.srv.URL)
	if r.code != 200 {
		t.Fatalf("login %s: %d %s", user, r.code, r.body)
	}
	var info struct {
		CSRF string `json:"csrf_token"`
		User string `json:"username"`
		Role string `json:"role"`
	}
	if err := json.Unmarshal([]byte(r.body), &info); err != nil || info.CSRF == "" || info.User != user || info.Role == "" {
		t.Fatalf("login reply %s: %v", r.body, err)
	}
	c := sessionCookie(r)
	if c == "" {
		t.Fatalf("login set no session cookie: %v", r.h)
	}
	return "Cookie: " + c, info.CSRF
}

// Every route but the public ones answers 401 without valid credentials.
func TestEveryRouteNeedsAuth(t *testing.T) {
	f := fullFixture(t)
	expired := auth.NewToken()
	if err := f.st.AddToken(context.Background(), store.APIToken{Name: "old", Role: "admin", Hash: auth.HashSecret(expired),
		ExpiresAt: f.clock.now()}); err != nil {
		t.Fatal(err)
	}
	var public []string
	routes := f.web.Routes()
	if len(routes) < 20 {
		t.Fatalf("route table has %d routes: %v", len(routes), routes)
	}
	for _, rt := range routes {
		if rt.Role == auth.None {
			public = append(public, rt.Pattern)
			continue
		}
		method, path := concrete(rt.Pattern, f.exceptionID(t, "S001"))
		for _, creds := range []string{"", bearer("lbt_guessed"), bearer(expired), "Authorization: Basic YWRtaW46YWRtaW4=",
			"Cookie: " + SessionCookie + "=forged"} {
			r := f.do(t, method, path, "{}", creds)
			if r.code != http.StatusUnauthorized {
				t.Errorf("%s %s with %q: %d, want 401: %s", method, path, creds, r.code, r.body)
			} else if path != "/" && !strings.Contains(r.body, unauthorizedMsg) {
				t.Errorf("%s %s: 401 body %s", method, path, r.body)
			}
		}
	}
	slices.Sort(public)
	if want := []string{"GET /healthz", "GET /login", "GET /static/", "POST /api/v1/enroll", "POST /api/v1/session"}; !slices.Equal(public, want) {
		t.Errorf("public routes %v, want %v", public, want)
	}
	// A browser asking for the dashboard is sent on to the login page, without script.
	r := f.do(t, "GET", "/", "")
	if r.code != 401 || !strings.Contains(r.body, `url=/login`) || !strings.Contains(r.body, `href="/login"`) || strings.Contains(r.body, "<script") {
		t.Errorf("dashboard without a session: %d %s", r.code, r.body)
	}
	if r := f.do(t, "GET", "/healthz", ""); r.code != 200 {
		t.Errorf("healthz: %d", r.code)
	}
}

// A role below a route's gets 403 and changes nothing; the route's role and above pass.
func TestRoleMatrix(t *testing.T) {
	f := fullFixture(t)
	toks := map[auth.Role]string{auth.Viewer: f.token(t, "v", "viewer"), auth.Operator: f.token(t, "o", "operator"), auth.Admin: f.admin}
	id := f.exceptionID(t, "S001")
	body := map[string]string{"POST /api/v1/exceptions/{id}": `{"state":"acknowledged"}`}
	checked := 0
	for _, rt := range f.web.Routes() {
		if rt.Role == auth.None || rt.Pattern == "DELETE /api/v1/session" {
			continue
		}
		method, path := concrete(rt.Pattern, id)
		for role, tok := range toks {
			r := f.do(t, method, path, body[rt.Pattern], bearer(tok))
			switch {
			case role < rt.Role && r.code != http.StatusForbidden:
				t.Errorf("%s as %s: %d, want 403: %s", rt.Pattern, role, r.code, r.body)
			case role >= rt.Role && (r.code == http.StatusForbidden || r.code == http.StatusUnauthorized):
				t.Errorf("%s as %s: %d, want it allowed: %s", rt.Pattern, role, r.code, r.body)
			}
			checked++
		}
		if rt.Pattern == "POST /api/v1/exceptions/{id}" {
			// The operator's and admin's changes went through; the viewer's did not come first.
			if e, _ := f.st.Exception(context.Background(), id); e.UpdatedBy == "token:v" {
				t.Errorf("viewer changed the exception: %+v", e)
			}
		}
	}
	if checked < 3*15 {
		t.Fatalf("only %d checks", checked)
	}
	for _, want := range []struct {
		pattern string
		role    auth.Role
	}{{"GET /api/v1/audit", auth.Admin}, {"POST /api/v1/postings/{id}/repost", auth.Operator}, {"POST /api/v1/stores/{store}/days/{date}/close", auth.Operator},
		{"POST /api/v1/inventory/refresh", auth.Operator}, {"GET /api/v1/stores", auth.Viewer}, {"GET /metrics", auth.Viewer}} {
		if i := slices.IndexFunc(f.web.Routes(), func(r Route) bool { return r.Pattern == want.pattern }); i < 0 || f.web.Routes()[i].Role != want.role {
			t.Errorf("route %s: want role %s", want.pattern, want.role)
		}
	}
}

// A principal limited to S001 sees and acts on S001 only: S002's objects are 404 and absent
// from lists.
func TestStoreScope(t *testing.T) {
	f := fullFixture(t)
	tok := bearer(f.token(t, "s1op", "operator", "S001"))
	ctx := context.Background()
	other := f.exceptionID(t, "S002")
	ps, err := f.st.Postings(ctx, store.PostingFilter{Store: "S002"})
	if err != nil || len(ps) == 0 {
		t.Fatalf("postings of S002: %v %v", ps, err)
	}
	for _, c := range []struct{ method, path, body string }{
		{"GET", "/api/v1/stores/S002", ""},
		{"GET", "/api/v1/stores/S002/records", ""},
		{"GET", "/api/v1/stores/S002/days/2026-11-26", ""},
		{"GET", "/api/v1/stores/S002/inventory", ""},
		{"GET", "/stores/S002/charts/backlog.svg", ""},
		{"GET", "/api/v1/stores/S002/series?metric=backlog", ""},
		{"GET", "/api/v1/stores/S002/days/2026-11-26/close", ""},
		{"POST", "/api/v1/stores/S002/days/2026-11-26/close", ""},
		{"GET", fmt.Sprintf("/api/v1/exceptions/%d", other), ""},
		{"POST", fmt.Sprintf("/api/v1/exceptions/%d", other), `{"state":"resolved"}`},
		{"POST", fmt.Sprintf("/api/v1/postings/%d/repost", ps[0].ID), ""},
		{"GET", "/stores/S002", ""},
		{"POST", "/api/v1/stores/S002/replay", `{"epoch":"e1","from_seq":1,"to_seq":2}`},
		{"GET", "/calendar/S002/2026-11-26", ""},
	} {
		if r := f.do(t, c.method, c.path, c.body, tok); r.code != 404 {
			t.Errorf("%s %s: %d, want 404: %s", c.method, c.path, r.code, r.body)
		}
		// The same request by an unlimited principal is not a 404: the defence is the scope.
		if r := f.do(t, "GET", strings.TrimSuffix(c.path, "/repost"), "", bearer(f.admin)); c.method == "GET" && r.code != 200 {
			t.Errorf("admin %s: %d", c.path, r.code)
		}
	}
	if e, _ := f.st.Exception(ctx, other); e.State != store.StateOpen {
		t.Errorf("S002's exception changed: %+v", e)
	}
	if _, err := f.st.RaiseAlert(ctx, store.Alert{Kind: "store_offline", Store: "S002", Since: f.clock.now()}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/api/v1/stores", "/api/v1/exceptions", "/api/v1/exceptions?store=S002", "/api/v1/postings",
		"/api/v1/postings?store=S002", "/", "/calendar?month=2026-11", "/exceptions?state=any", "/exceptions?store=S002"} {
		r := f.do(t, "GET", path, "", tok)
		if r.code != 200 || strings.Contains(r.body, "S002") {
			t.Errorf("GET %s: %d, lists S002: %s", path, r.code, r.body)
		}
		if !strings.HasSuffix(path, "store=S002") && !strings.Contains(r.body, "S001") {
			t.Errorf("GET %s lacks S001: %s", path, r.body)
		}
		if r := f.do(t, "GET", path, "", bearer(f.admin)); !strings.Contains(r.body, "S002") {
			t.Errorf("admin GET %s lacks S002", path)
		}
	}
	// A fleet-wide action is not for a principal limited to some stores.
	if r := f.do(t, "POST", "/api/v1/inventory/refresh", "", tok); r.code != 403 {
		t.Errorf("inventory refresh by a store-limited operator: %d %s", r.code, r.body)
	}
	if r := f.do(t, "POST", fmt.Sprintf("/api/v1/exceptions/%d", f.exceptionID(t, "S001")), `{"state":"acknowledged"}`, tok); r.code != 200 {
		t.Errorf("own store's exception: %d %s", r.code, r.body)
	}
}

// CSRF: a change carried by the session cookie needs the session's token and a same-origin
// Origin or Referer; Bearer requests need neither.
func TestCSRF(t *testing.T) {
	f := newFixture(t, Options{})
	f.user(t, "ana", "operator", "ana's long password")
	cookie, csrf := f.login(t, "ana", "ana's long password")
	path := fmt.Sprintf("/api/v1/exceptions/%d", f.exceptionID(t, "S001"))
	origin := "Origin: " + f.srv.URL
	for _, c := range []struct {
		name string
		hdr  []string
		code int
	}{
		{"no token", []string{cookie, origin}, 403},
		{"wrong token", []string{cookie, origin, "X-CSRF-Token: " + csrf[:len(csrf)-1] + "x"}, 403},
		{"cross-origin Origin", []string{cookie, "X-CSRF-Token: " + csrf, "Origin: http://evil.example"}, 403},
		{"cross-origin Referer", []string{cookie, "X-CSRF-Token: " + csrf, "Referer: http://evil.example/page"}, 403},
		{"null Origin", []string{cookie, "X-CSRF-Token: " + csrf, "Origin: null"}, 403},
		{"no Origin, no Referer", []string{cookie, "X-CSRF-Token: " + csrf}, 403},
		{"other port", []string{cookie, "X-CSRF-Token: " + csrf, "Origin: http://127.0.0.1:1"}, 403},
		{"token and Origin", []string{cookie, "X-CSRF-Token: " + csrf, origin}, 200},
		{"token and Referer", []string{cookie, "X-CSRF-Token: " + csrf, "Referer: " + f.srv.URL + "/"}, 200},
		{"bearer, no token, no Origin", []string{bearer(f.admin)}, 200},
	} {
		t.Run(c.name, func(t *testing.T) {
			before, _ := f.st.Exceptions(context.Background(), store.ExceptionFilter{Store: "S001"})
			r := f.do(t, "POST", path, `{"state":"acknowledged","comment":"`+c.name+`"}`, c.hdr...)
			if r.code != c.code {
				t.Fatalf("%d, want %d: %s", r.code, c.code, r.body)
			}
			after, _ := f.st.Exceptions(context.Background(), store.ExceptionFilter{Store: "S001"})
			if changed := after[0].Comment != before[0].Comment; changed != (c.code == 200) {
				t.Fatalf("changed = %v with status %d", changed, r.code)
			}
		})
	}
	// Logging out is a change too.
	if r := f.do(t, "DELETE", "/api/v1/session", "", cookie, origin); r.code != 403 {
		t.Errorf("logout without token: %d", r.code)
	}
	// Another site cannot log the browser in to an account of its choosing.
	if r := f.do(t, "POST", "/api/v1/session", `{"username":"ana","password":"ana's long password"}`, "Origin: http://evil.example"); r.code != 403 {
		t.Errorf("cross-origin login: %d %s", r.code, r.body)
	}
	// The session's GET returns the token, so pages can fetch it.
	if r := f.do(t, "GET", "/api/v1/session", "", cookie); r.code != 200 || !strings.Contains(r.body, csrf) || !strings.Contains(r.body, `"role": "operator"`) {
		t.Errorf("GET session: %d %s", r.code, r.body)
	}
	if r := f.do(t, "DELETE", "/api/v1/session", "", cookie, origin, "X-CSRF-Token: "+csrf); r.code != 204 || !strings.Contains(r.h.Get("Set-Cookie"), "Max-Age=0") {
		t.Errorf("logout: %d %v", r.code, r.h)
	}
	if r := f.do(t, "GET", "/api/v1/session", "", cookie); r.code != 401 {
		t.Errorf("session after logout: %d", r.code)
	}
}

// DNS rebinding: a Host that is not this hub's is refused before anything else.
func TestHostCheck(t *testing.T) {
	f := newFixture(t, Options{})
	port := strings.TrimPrefix(f.srv.URL, "http://127.0.0.1")
	for _, c := range []struct {
		host string
		code int
	}{{"evil.example", 421}, {"evil.example" + port, 421}, {"127.0.0.1.evil.example" + port, 421}, {"localhost" + port, 200}, {"127.0.0.1" + port, 200}, {"[::1]" + port, 200}} {
		req, _ := http.NewRequest("GET", f.srv.URL+"/api/v1/stores", nil)
		req.Host = c.host
		req.Header.Set("Authorization", "Bearer "+f.admin)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != c.code {
			t.Errorf("Host %s: %d, want %d", c.host, resp.StatusCode, c.code)
		}
	}
	g := newFixture(t, Options{Hosts: []string{"hub.example.com"}})
	for host, code := range map[string]int{"hub.example.com": 200, "HUB.example.com:8443": 200, "localhost": 421} {
		req, _ := http.NewRequest("GET", g.srv.URL+"/healthz", nil)
		req.Host = host
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("hosts [hub.example.com], Host %s: %d, want %d", host, resp.StatusCode, code)
		}
	}
}

// Sessions end after the idle timeout, after the absolute timeout however busy, and when the
// operator is disabled.
func TestSessionExpiry(t *testing.T) {
	f := newFixture(t, Options{SessionIdle: 30 * time.Minute, SessionAbsolute: 2 * time.Hour})
	f.user(t, "ana", "viewer", "ana's long password")
	get := func(cookie string) int { return f.do(t, "GET", "/api/v1/stores", "", cookie).code }

	cookie, _ := f.login(t, "ana", "ana's long password")
	for range 3 {
		f.clock.add(25 * time.Minute) // used within the idle timeout: it lives on
		if c := get(cookie); c != 200 {
			t.Fatalf("used session after 25m: %d", c)
		}
	}
	f.clock.add(30 * time.Minute)
	if c := get(cookie); c != 401 {
		t.Fatalf("session idle 30m: %d, want 401", c)
	}
	f.clock.add(time.Hour) // the idle session is gone for good, not just refused once
	if c := get(cookie); c != 401 {
		t.Fatalf("expired session back: %d", c)
	}

	// A session that expired and is never presented again is deleted at the next login.
	abandoned, _ := f.login(t, "ana", "ana's long password")
	f.clock.add(31 * time.Minute)
	f.login(t, "ana", "ana's long password")
	if _, err := f.st.Session(context.Background(), auth.HashSecret(strings.TrimPrefix(abandoned, "Cookie: "+SessionCookie+"="))); !errors.Is(err, store.ErrNotFound) {
		t.Fatalf("abandoned expired session still stored: %v", err)
	}

	cookie, _ = f.login(t, "ana", "ana's long password")
	for i := 1; i <= 5; i++ {
		f.clock.add(25 * time.Minute)
		want := 200
		if time.Duration(i)*25*time.Minute >= 2*time.Hour {
			want = 401
		}
		if c := get(cookie); c != want {
			t.Fatalf("busy session at %s: %d, want %d", time.Duration(i)*25*time.Minute, c, want)
		}
	}

	cookie, _ = f.login(t, "ana", "ana's long password")
	if c := get(cookie); c != 200 {
		t.Fatalf("new session: %d", c)
	}
	if err := f.st.DisableOperator(context.Background(), "ana"); err != nil {
		t.Fatal(err)
	}
	if c := get(cookie); c != 401 {
		t.Fatalf("session of a disabled operator: %d", c)
	}
	// Even a session row that outlived the disabling (written by another hub replica in the
	// meantime) is refused.
	if err := f.st.AddSession(context.Background(), store.Session{IDHash: auth.HashSecret("late"), CSRFToken: "c", CreatedAt: f.clock.now(),
		SeenAt: f.clock.now(), Operator: store.Operator{Name: "ana"}}); err != nil {
		t.Fatal(err)
	}
	if c := get("Cookie: " + SessionCookie + "=late"); c != 401 {
		t.Fatalf("late session of a disabled operator: %d", c)
	}
	if r := f.do(t, "POST", "/api/v1/session", `{"username":"ana","password":"ana's long password"}`); r.code != 401 {
		t.Fatalf("disabled operator logs in: %d", r.code)
	}
}

// Failed logins back off per user and per client address; success forgets.
func TestLoginThrottle(t *testing.T) {
	f := newFixture(t, Options{})
	f.user(t, "ana", "viewer", "ana's long password")
	try := func(user, pw string) reply {
		return f.do(t, "POST", "/api/v1/session", fmt.Sprintf(`{"username":%q,"password":%q}`, user, pw))
	}
	wrong, unknown := try("ana", "guess 1"), try("nobody", "guess 1")
	if wrong.code != 401 || unknown.code != 401 || wrong.body != unknown.body {
		t.Fatalf("wrong password %d %s, unknown user %d %s: want the same 401", wrong.code, wrong.body, unknown.code, unknown.body)
	}
	try("ana", "guess 2")
	// Three failures from this address so far: the next attempt, even with the right
	// password and for another user, must wait.
	for _, user := range []string{"ana", "bob"} {
		r := try(user, "ana's long password")
		if r.code != 429 || r.h.Get("Retry-After") != "1" {
			t.Fatalf("attempt 4 for %s: %d Retry-After %q, want 429 after 1s", user, r.code, r.h.Get("Retry-After"))
		}
	}
	f.clock.add(time.Second)
	if r := try("ana", "guess 3"); r.code != 401 {
		t.Fatalf("after waiting: %d", r.code)
	}
	if r := try("ana", "ana's long password"); r.code != 429 || r.h.Get("Retry-After") != "2" {
		t.Fatalf("after 4 failures: %d Retry-After %q, want 2s", r.code, r.h.Get("Retry-After"))
	}
	f.clock.add(2 * time.Second)
	if r := try("ana", "ana's long password"); r.code != 200 {
		t.Fatalf("right password after the back-off: %d %s", r.code, r.body)
	}
	if r := try("ana", "guess 4"); r.code != 401 {
		t.Fatalf("success did not forget the failures: %d", r.code)
	}
}

// Guesses sent all at once get no more tries than guesses sent one after the other.
func TestLoginThrottleConcurrent(t *testing.T) {
	f := newFixture(t, Options{})
	f.user(t, "ana", "viewer", "ana's long password")
	codes := make(chan int, 40)
	var wg sync.WaitGroup
	for i := range cap(codes) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			codes <- f.do(t, "POST", "/api/v1/session", fmt.Sprintf(`{"username":"ana","password":"guess %d"}`, i)).code
		}()
	}
	wg.Wait()
	close(codes)
	n := map[int]int{}
	for c := range codes {
		n[c]++
	}
	if n[401] != 3 || n[429] != cap(codes)-3 {
		t.Fatalf("40 concurrent guesses: %v, want 3 tried (401) and the rest throttled (429)", n)
	}
}

// The audit log holds failed and successful logins and changes, by the principal.
func TestAuditLog(t *testing.T) {
	f := newFixture(t, Options{})
	f.user(t, "ana", "operator", "ana's long password")
	if r := f.do(t, "POST", "/api/v1/session", `{"username":"ana","password":"wrong"}`); r.code != 401 {
		t.Fatal(r.code)
	}
	cookie, csrf := f.login(t, "ana", "ana's long password")
	id := f.exceptionID(t, "S001")
	r := f.do(t, "POST", fmt.Sprintf("/api/v1/exceptions/%d", id), `{"state":"acknowledged","by":"mallory"}`, cookie, "X-CSRF-Token: "+csrf, "Origin: "+f.srv.URL)
	if r.code != 200 || !strings.Contains(r.body, `"updated_by": "user:ana"`) || strings.Contains(r.body, "mallory") {
		t.Fatalf("update: %d %s", r.code, r.body)
	}
	if r := f.do(t, "GET", "/api/v1/audit", "", cookie); r.code != 403 {
		t.Fatalf("operator reads the audit log: %d", r.code)
	}
	r = f.do(t, "GET", "/api/v1/audit?limit=10", "", bearer(f.admin))
	var log struct {
		Entries []store.AuditEntry `json:"entries"`
	}
	if err := json.Unmarshal([]byte(r.body), &log); err != nil || r.code != 200 {
		t.Fatalf("audit: %d %s", r.code, r.body)
	}
	var got []string
	for _, e := range log.Entries {
		got = append(got, e.Actor+" "+e.Action+" "+e.Target+" "+e.Outcome)
		if e.Remote != "127.0.0.1" || e.At.IsZero() {
			t.Errorf("entry %+v", e)
		}
	}
	want := []string{
		fmt.Sprintf("user:ana POST /api/v1/exceptions/{id} /api/v1/exceptions/%d 200", id),
		"user:ana login /api/v1/session ok",
		"user:ana login /api/v1/session failed",
	}
	if d := log.Entries[0].Detail; d != `state=acknowledged comment=""` {
		t.Errorf("change's detail %q", d)
	}
	if !slices.Equal(got, want) {
		t.Fatalf("audit log:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if r := f.do(t, "GET", "/api/v1/audit?limit=1&before_id="+fmt.Sprint(log.Entries[0].ID), "", bearer(f.admin)); !strings.Contains(r.body, `"action": "login"`) ||
		!strings.Contains(r.body, "next_before_id") {
		t.Fatalf("audit page: %s", r.body)
	}
}

// Security headers are on every answer; bodies are capped.
func TestHeadersAndLimits(t *testing.T) {
	f := newFixture(t, Options{})
	for _, path := range []string{"/healthz", "/api/v1/stores", "/"} {
		r := f.do(t, "GET", path, "")
		if csp := r.h.Get("Content-Security-Policy"); !strings.Contains(csp, "frame-ancestors 'none'") || !strings.Contains(csp, "script-src 'self'") ||
			strings.Contains(csp, "unsafe-inline") {
			t.Errorf("%s: CSP %q", path, csp)
		}
		if r.h.Get("X-Content-Type-Options") != "nosniff" || r.h.Get("Referrer-Policy") == "" {
			t.Errorf("%s: headers %v", path, r.h)
		}
	}
	f.user(t, "ana", "viewer", "ana's long password")
	// A right login padded to 2 MiB: the decoder would read it all, the cap stops it at 1 MiB.
	big := `{"username":"ana",` + strings.Repeat(" ", 2<<20) + `"password":"ana's long password"}`
	if r := f.do(t, "POST", "/api/v1/session", big); r.code != 400 {
		t.Errorf("2 MiB login body: %d", r.code)
	}
	r := f.do(t, "POST", "/api/v1/session", `{"username":"ana","password":"ana's long password"}`)
	c := r.h.Get("Set-Cookie")
	for _, attr := range []string{"HttpOnly", "SameSite=Strict", "Path=/"} {
		if !strings.Contains(c, attr) {
			t.Errorf("session cookie %q lacks %s", c, attr)
		}
	}
}

// Every route goes through handle, so that the route table (and the walks above) see it: no
// file of the package registers on the mux directly.
func TestRoutesOnlyThroughHandle(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil || len(files) == 0 {
		t.Fatal(files, err)
	}
	n := 0
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		n += strings.Count(string(b), ".mux.Handle")
	}
	if n != 2 { // handle's two calls
		t.Errorf("%d registrations on the mux, want only handle's 2", n)
	}
}

// Over HTTPS the session cookie is Secure, HSTS is sent, and an http:// Origin of the same
// host is another origin.
func TestHTTPSOrigin(t *testing.T) {
	f := newFixture(t, Options{})
	f.user(t, "ana", "operator", "ana's long password")
	tf := *f
	tf.srv = httptest.NewTLSServer(f.web)
	t.Cleanup(tf.srv.Close)
	r := tf.do(t, "POST", "/api/v1/session", `{"username":"ana","password":"ana's long password"}`)
	c := (&http.Response{Header: r.h}).Cookies()
	if r.code != 200 || len(c) != 1 || !c[0].Secure || r.h.Get("Strict-Transport-Security") == "" {
		t.Fatalf("login over https: %d %+v %v", r.code, c, r.h)
	}
	se, err := f.st.Session(context.Background(), auth.HashSecret(c[0].Value))
	if err != nil {
		t.Fatal(err)
	}
	path := fmt.Sprintf("/api/v1/exceptions/%d", f.exceptionID(t, "S001"))
	cookie, tok := "Cookie: "+SessionCookie+"="+c[0].Value, "X-CSRF-Token: "+se.CSRFToken
	if r := tf.do(t, "POST", path, `{"state":"acknowledged"}`, cookie, tok, "Origin: "+strings.Replace(tf.srv.URL, "https:", "http:", 1)); r.code != 403 {
		t.Errorf("http:// Origin to an https hub: %d", r.code)
	}
	if r := tf.do(t, "POST", path, `{"state":"acknowledged"}`, cookie, tok, "Origin: "+tf.srv.URL); r.code != 200 {
		t.Errorf("same https Origin: %d %s", r.code, r.body)
	}
}
