package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/lanebridge/lanebridge/testharness/sim"
)

// chromium returns Debian's Chromium; testharness/services.sh installs it.
func chromium(t testing.TB) string {
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Fatal("chromium is not installed (apt-get install chromium; testharness/services.sh does it)")
	return ""
}

// browser starts a headless Chromium with a fresh profile and returns a tab's context; the
// tab, the browser and every action end within d.
func browser(t testing.TB, d time.Duration) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(chromium(t)), chromedp.NoSandbox,
		chromedp.DisableGPU, chromedp.Flag("disable-quic", true), chromedp.Flag("disable-component-update", true),
		chromedp.UserDataDir(t.TempDir()), chromedp.WindowSize(1280, 900))
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	ctx, cancelAlloc := chromedp.NewExecAllocator(ctx, opts...)
	t.Cleanup(cancelAlloc)
	ctx, cancelTab := chromedp.NewContext(ctx)
	t.Cleanup(cancelTab)
	if err := chromedp.Do(ctx); err != nil { // starts the browser
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// do runs browser actions and fails the test on an error.
func do(t testing.TB, ctx context.Context, what string, steps ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, steps...); err != nil {
		t.Fatalf("browser: %s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression (awaiting a promise) in the tab.
func eval[T any](t testing.TB, ctx context.Context, expr string) T {
	t.Helper()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
	if err != nil {
		t.Fatalf("browser: %s: %v", expr, err)
	}
	return v
}

// waitPage polls a JavaScript predicate until it is true; unlike chromedp.Poll it survives the
// navigations the page makes meanwhile.
func waitPage(t testing.TB, ctx context.Context, what, pred string) {
	t.Helper()
	eventually(t, 20*time.Second, what, func() error {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](pred))
		if err != nil {
			return err
		}
		if !ok {
			loc, _ := chromedp.Run(ctx, chromedp.Location())
			return fmt.Errorf("not yet (at %s)", loc)
		}
		return nil
	})
}

// testPassword is the password of the accounts the browser tests sign in with.
const testPassword = "correct horse battery"

// uiHub starts a hub with store seeded (seedStore) and a user with role and testPassword.
func uiHub(t testing.TB, store, user, role string) (string, *hub, *proc) {
	t.Helper()
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	ag := seedStore(t, dir, h, store)
	addUser(t, h, user, role, testPassword)
	return dir, h, ag
}

// addUser creates an operator account with the real CLI (password from a file).
func addUser(t testing.TB, h *hub, name, role, password string) {
	t.Helper()
	pwFile := filepath.Join(h.Dir, name+".password")
	if err := os.WriteFile(pwFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h.CLI(t, "users", "add", name, "--role", role, "--password-file", pwFile)
}

// openLogin opens the hub's / and expects to be sent to the sign-in form.
func openLogin(t testing.TB, ctx context.Context, h *hub) {
	t.Helper()
	do(t, ctx, "open /", chromedp.Navigate("http://"+h.HTTP+"/"))
	waitPage(t, ctx, "the login page", `location.pathname === "/login" && document.readyState === "complete" && document.getElementById("login") !== null`)
	// The meta refresh navigated behind chromedp's back, which may still hold the old document
	// ("Could not find node with given id" on the form): load the form once more, awaited.
	do(t, ctx, "load the login page", chromedp.Navigate("http://"+h.HTTP+"/login"))
}

// submitLogin types the credentials into the form, presses Sign in and returns the error the
// page shows ("" when it navigated to the dashboard).
func submitLogin(t testing.TB, ctx context.Context, user, password string) string {
	t.Helper()
	// chromedp.Clear resets the value attribute, not what was typed: empty the fields in the page.
	eval[chromedp.Void](t, ctx, `for (const id of ["error", "username", "password"]) {
		const e = document.getElementById(id); if (id === "error") e.textContent = ""; else e.value = ""; }`)
	do(t, ctx, "fill in and submit the login form",
		chromedp.SendKeys(chromedp.ID("username"), user), chromedp.SendKeys(chromedp.ID("password"), password),
		chromedp.Click(chromedp.ID("submit")))
	var msg string
	eventually(t, 20*time.Second, "the sign-in answer", func() error {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](`location.pathname === "/" ? "" :
			(document.getElementById("error").hidden ? "pending" : document.getElementById("error").textContent)`))
		if err != nil || v == "pending" {
			return fmt.Errorf("no answer yet (%v)", err)
		}
		msg = v
		return nil
	})
	return msg
}

// signIn signs in through the login page and waits for the fleet page to know the session.
func signIn(t testing.TB, ctx context.Context, h *hub, user, password string) {
	t.Helper()
	openLogin(t, ctx, h)
	if msg := submitLogin(t, ctx, user, password); msg != "" {
		t.Fatalf("sign in as %s: the page says %q", user, msg)
	}
	// The page names the user itself; the log out control shows once its script has the
	// session (and its CSRF token), so no request of the page is still under way.
	waitPage(t, ctx, "the fleet page with the signed-in user", `document.getElementById("stores") !== null &&
		document.getElementById("who").textContent.includes(`+jsString(user)+`) && !document.getElementById("logout").hidden`)
}

func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// seedStore enrolls store, feeds its agent 25 sales and one line that is not a record (a
// capture_quarantined exception) and waits until the hub shows both and the agent online.
func seedStore(t testing.TB, dir string, h *hub, store string) *proc {
	t.Helper()
	journal := filepath.Join(dir, store+"-T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": journal})
	g := sim.New("T1", "2026-11-26", 12, nil, 1)
	var lines []string
	for range 25 {
		b, _ := json.Marshal(g.Next())
		lines = append(lines, string(b))
	}
	lines = append(lines, "THIS IS NOT A RECORD")
	if err := os.WriteFile(journal, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ag := startAgent(t, dir, store, cfg)
	h.WaitRecords(t, store, 25, 30*time.Second)
	eventually(t, 30*time.Second, "agent online with the exception raised", func() error {
		si, err := h.Store(store)
		if err != nil {
			return err
		}
		if si.Status == nil || si.Status.State != "online" {
			return fmt.Errorf("status %+v", si.Status)
		}
		if len(h.openExceptions(t, store)) == 0 {
			return fmt.Errorf("no exception yet")
		}
		return nil
	})
	return ag
}

// openExceptions lists the store's open exceptions through the API (with the token).
func (h *hub) openExceptions(t testing.TB, store string) []exception {
	t.Helper()
	b, err := h.Get("/api/v1/exceptions?state=open&store=" + store)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct{ Exceptions []exception }
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	return resp.Exceptions
}

func (h *hub) exceptionState(t testing.TB, id int64) string {
	t.Helper()
	b, err := h.Get(fmt.Sprintf("/api/v1/exceptions/%d", id))
	if err != nil {
		t.Fatal(err)
	}
	var e exception
	if err := json.Unmarshal(b, &e); err != nil {
		t.Fatal(err)
	}
	return e.State
}

// TestLoginInBrowser: a real Chromium opening the hub lands on the login page; a wrong password
// shows an error, the right one the dashboard with the stores; the session cookie is out of
// the page's reach (HttpOnly); log out ends the session at the hub, not only in the browser;
// repeated failures show the throttle's wait.
func TestLoginInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const store, user, password = "S040", "ana", testPassword
	dir, h, ag := uiHub(t, store, user, "operator")
	ctx := browser(t, 90*time.Second)

	openLogin(t, ctx, h)
	if msg := submitLogin(t, ctx, user, "wrong horse battery"); !strings.Contains(msg, "Wrong username or password") {
		t.Fatalf("wrong password: the page says %q", msg)
	}
	if msg := submitLogin(t, ctx, user, password); msg != "" {
		t.Fatalf("right password: the page says %q", msg)
	}
	waitPage(t, ctx, "the dashboard", `document.getElementById("stores") !== null && !document.getElementById("logout").hidden`)
	row := eval[string](t, ctx, `(document.querySelector('#stores tr[data-id="S040"]') || {innerText: ""}).innerText`)
	if !strings.Contains(row, "online") || !strings.Contains(row, "25") {
		t.Errorf("dashboard row of %s = %q, want online with 25 records", store, row)
	}
	if who := eval[string](t, ctx, `document.getElementById("who").textContent`); who != "Signed in as ana (operator)" {
		t.Errorf("dashboard says %q about who is signed in", who)
	}

	session := browserSession(t, ctx, h)
	if session == nil || !session.HTTPOnly || session.SameSite != network.CookieSameSiteStrict {
		t.Fatalf("session cookie = %+v, want lanebridge_session HttpOnly SameSite=Strict", session)
	}
	if jar := eval[string](t, ctx, `document.cookie`); strings.Contains(jar, "lanebridge_session") || strings.Contains(jar, session.Value) {
		t.Errorf("document.cookie shows the session: %q", jar)
	}
	if code, _ := sessionStatus(t, h, session.Value); code != 200 {
		t.Fatalf("GET /api/v1/session with the browser's cookie: %d", code)
	}

	do(t, ctx, "log out", chromedp.Click(chromedp.ID("logout")))
	waitPage(t, ctx, "the login page after log out", `location.pathname === "/login"`)
	if code, _ := sessionStatus(t, h, session.Value); code != 401 {
		t.Errorf("the session still works at the hub after log out: GET /api/v1/session = %d", code)
	}
	openLogin(t, ctx, h) // / sends the browser to the login page again

	throttled := regexp.MustCompile(`Too many failed sign-ins\. Try again in \d+ (second|seconds|minutes)\.`)
	var msg string
	tries := 0
	for ; tries < 30 && !throttled.MatchString(msg); tries++ {
		msg = submitLogin(t, ctx, user, fmt.Sprintf("wrong password %02d", tries))
	}
	if !throttled.MatchString(msg) {
		t.Errorf("30 wrong passwords: the page says %q, want the throttle's wait", msg)
	}
	t.Logf("after %d more wrong passwords the page says: %s", tries, msg)
	ag.Stop(t)
	checkLogs(t, dir)
}

// browserSession returns the browser's session cookie for the hub (nil if none).
func browserSession(t testing.TB, ctx context.Context, h *hub) *network.Cookie {
	t.Helper()
	cookies, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{"http://" + h.HTTP + "/"}})
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range cookies.Cookies {
		if c.Name == "lanebridge_session" {
			return c
		}
	}
	return nil
}

// sessionStatus returns the status of GET /api/v1/session with the session cookie, and the
// user it names.
func sessionStatus(t testing.TB, h *hub, cookie string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+h.HTTP+"/api/v1/session", nil)
	req.AddCookie(&http.Cookie{Name: "lanebridge_session", Value: cookie})
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var info struct{ Username string }
	json.NewDecoder(resp.Body).Decode(&info)
	return resp.StatusCode, info.Username
}

// hubRequest is what the browser's network log says about one request to the hub's API.
type hubRequest struct {
	method, url string
	status      int64
	cookie      bool // the session cookie went with it
}

// watchHub records the tab's requests to the hub's API.
func watchHub(t testing.TB, ctx context.Context, h *hub) func() []hubRequest {
	t.Helper()
	var mu sync.Mutex
	reqs := map[network.RequestID]*hubRequest{}
	var order []network.RequestID
	get := func(id network.RequestID) *hubRequest {
		if reqs[id] == nil {
			reqs[id] = &hubRequest{}
			order = append(order, id)
		}
		return reqs[id]
	}
	prefix := "http://" + h.HTTP + "/api/v1/"
	err := chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch ev := ev.(type) {
		case *network.EventRequestWillBeSent:
			if strings.HasPrefix(ev.Request.URL, prefix) {
				r := get(ev.RequestID)
				r.method, r.url = ev.Request.Method, ev.Request.URL
			}
		case *network.EventRequestWillBeSentExtraInfo:
			c, _ := ev.Headers["Cookie"].(string)
			if strings.Contains(c, "lanebridge_session=") {
				get(ev.RequestID).cookie = true
			}
		case *network.EventResponseReceived:
			if strings.HasPrefix(ev.Response.URL, prefix) {
				get(ev.RequestID).status = ev.Response.Status
			}
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	return func() []hubRequest {
		mu.Lock()
		defer mu.Unlock()
		var out []hubRequest
		for _, id := range order {
			if r := reqs[id]; r.url != "" {
				out = append(out, *r)
			}
		}
		return out
	}
}

// attackPages serves the pages of the attacker's site: each makes the signed-in operator's
// browser POST to the hub, with a form (top-level navigation) or with fetch (no-cors: no
// preflight, cookies included). /form-login signs the browser in as the attacker's own user
// (login CSRF: the operator would then work, and type, in the attacker's account).
func attackPages(closeURL, resolveURL, loginURL, attacker string) http.Handler {
	body := `{"state":"resolved","by":"attacker","comment":"x"}`
	pages := map[string]string{
		"/form-close": `<form id="f" method="post" action="` + closeURL + `"></form>`,
		// text/plain sends name=value unencoded: the body is JSON the handler would decode.
		"/form-resolve": `<form id="f" method="post" enctype="text/plain" action="` + resolveURL + `">` +
			`<input type="hidden" name='{"state":"resolved","by":"attacker","comment":"' value='"}'></form>`,
		// The attacker's password is testPassword+"=": the "=" text/plain puts between name and value.
		"/form-login": `<form id="f" method="post" enctype="text/plain" action="` + loginURL + `">` +
			`<input type="hidden" name='{"username":"` + attacker + `","password":"` + testPassword + `' value='"}'></form>`,
		"/fetch": "",
	}
	script := map[string]string{
		"/form-close":   `document.getElementById("f").submit()`,
		"/form-resolve": `document.getElementById("f").submit()`,
		"/form-login":   `document.getElementById("f").submit()`,
		"/fetch": fmt.Sprintf(`const o = {method: "POST", mode: "no-cors", credentials: "include"};
Promise.allSettled([fetch(%q, o), fetch(%q, {...o, headers: {"Content-Type": "text/plain"}, body: %q})]).then(() => { document.title = "sent"; });`,
			closeURL, resolveURL, body),
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		p, ok := pages[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		fmt.Fprintf(w, "<!doctype html><html><head><title>cute cats</title></head><body>%s<script>%s</script></body></html>", p, script[r.URL.Path])
	})
}

// serveOn serves h on host (port chosen by the kernel) until the test ends; it returns the origin.
func serveOn(t testing.TB, host string, h http.Handler) string {
	t.Helper()
	l, err := net.Listen("tcp", host+":0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: h, ReadHeaderTimeout: 5 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	return "http://" + l.Addr().String()
}

// TestCSRFFromOtherOrigin is the attack of issue 8: an operator signed in to the hub in a real
// Chromium visits a page on another origin that makes the browser POST the close of a store-day
// and the resolution of an exception to the hub. Two attacking origins: another port on the
// hub's host (same site: the SameSite=Strict cookie goes along, only the hub's CSRF defence
// stands) and another loopback address (cross-site). The hub's API (with a token) must show
// the exception open and the day not closed; the same requests from the hub's own page with
// the session's CSRF token succeed, so the refusal is the defence and not a broken request.
func TestCSRFFromOtherOrigin(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const store, user, password = "S041", "bo", testPassword
	dir, h, ag := uiHub(t, store, user, "operator")
	const attacker = "mallory"
	addUser(t, h, attacker, "operator", testPassword+"=")
	exc := h.openExceptions(t, store)[0]
	closePath := "/api/v1/stores/" + store + "/days/2026-11-26/close"
	resolvePath := fmt.Sprintf("/api/v1/exceptions/%d", exc.ID)
	hubURL := "http://" + h.HTTP
	ctx := browser(t, 90*time.Second)
	requests := watchHub(t, ctx, h)
	signIn(t, ctx, h, user, password)

	evil := attackPages(hubURL+closePath, hubURL+resolvePath, hubURL+"/api/v1/session", attacker)
	for _, origin := range []struct {
		host     string
		sameSite bool
	}{{"127.0.0.1", true}, {"127.0.0.2", false}} {
		base := serveOn(t, origin.host, evil)
		before := len(requests())
		for _, page := range []string{"/form-close", "/form-resolve", "/form-login", "/fetch"} {
			do(t, ctx, "open "+base+page, chromedp.Navigate(base+page))
		}
		var sent []hubRequest
		eventually(t, 20*time.Second, "the attack's 5 requests answered by the hub", func() error {
			sent = requests()[before:]
			n := 0
			for _, r := range sent {
				if r.method == http.MethodPost && r.status != 0 {
					n++
				}
			}
			if n < 5 {
				return fmt.Errorf("%d of 5 answered: %+v", n, sent)
			}
			return nil
		})
		for _, r := range sent {
			if r.status < 400 {
				t.Errorf("attack from %s: %s %s answered %d", base, r.method, r.url, r.status)
			}
			if origin.sameSite && !r.cookie && !strings.HasSuffix(r.url, "/session") {
				t.Errorf("attack from %s: %s %s went without the session cookie: the test does not test the CSRF defence", base, r.method, r.url)
			}
		}
		t.Logf("attack from %s (same site %v): %+v", base, origin.sameSite, sent)
		if st := h.exceptionState(t, exc.ID); st != "open" {
			t.Fatalf("after the attack from %s exception %d is %s", base, exc.ID, st)
		}
		if b, err := h.Get(closePath); err == nil || !strings.Contains(err.Error(), "404") {
			t.Fatalf("after the attack from %s the day is closed: %s %v", base, b, err)
		}
		if se := browserSession(t, ctx, h); se == nil {
			t.Fatalf("after the attack from %s the browser has no session", base)
		} else if code, name := sessionStatus(t, h, se.Value); code != 200 || name != user {
			t.Fatalf("after the attack from %s the browser's session is %d %q, want %s's", base, code, name, user)
		}
	}

	// The hub's own page: without the CSRF token still refused, with it done.
	do(t, ctx, "back to the dashboard", chromedp.Navigate(hubURL+"/"))
	waitPage(t, ctx, "the dashboard", `document.getElementById("stores") !== null`)
	codes := eval[[]int](t, ctx, fmt.Sprintf(`(async () => {
  const s = await (await fetch("/api/v1/session")).json();
  const post = (url, body, token) => fetch(url, {method: "POST", body,
    headers: token ? {"Content-Type": "application/json", "X-CSRF-Token": token} : {"Content-Type": "application/json"}}).then(r => r.status);
  const resolve = JSON.stringify({state: "resolved", by: %q, comment: "checked"});
  return [await post(%q, resolve, ""), await post(%q, null, ""), await post(%q, resolve, s.csrf_token), await post(%q, null, s.csrf_token)];
})()`, user, resolvePath, closePath, resolvePath, closePath))
	if len(codes) != 4 || codes[0] < 400 || codes[1] < 400 || codes[2] != 200 || codes[3] != 200 {
		t.Fatalf("from the hub's page: resolve, close without the CSRF token, then with it = %v, want [4xx 4xx 200 200]", codes)
	}
	if st := h.exceptionState(t, exc.ID); st != "resolved" {
		t.Errorf("exception %d is %s after the hub's own page resolved it with the token", exc.ID, st)
	}
	if _, err := h.Get(closePath); err != nil {
		t.Errorf("day not closed by the hub's own page with the token: %v", err)
	}
	ag.Stop(t)
	checkLogs(t, dir)
}
