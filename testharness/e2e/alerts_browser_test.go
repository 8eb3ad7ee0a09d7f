package e2e

import (
	"encoding/json"
	"fmt"
	"mime"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// hookEvent is one alert event as the hub's webhook POSTs it.
type hookEvent struct {
	Kind, State, Store, Terminal string
	Since                        time.Time
	Detail, Text                 string
}

// webhookReceiver is a real HTTP server on 127.0.0.1 recording the JSON POSTs to its URL; any
// other request is recorded as a bad one and answered 400.
type webhookReceiver struct {
	url    string
	mu     sync.Mutex
	events []hookEvent
	bad    []string
}

func startWebhook(t testing.TB) *webhookReceiver {
	t.Helper()
	w := &webhookReceiver{}
	w.url = serveOn(t, "127.0.0.1", http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		var ev hookEvent
		ct, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
		err := json.NewDecoder(r.Body).Decode(&ev)
		w.mu.Lock()
		defer w.mu.Unlock()
		if r.Method != http.MethodPost || r.URL.Path != "/hooks/ops" || ct != "application/json" || err != nil {
			w.bad = append(w.bad, fmt.Sprintf("%s %s %q: %v", r.Method, r.URL.Path, ct, err))
			http.Error(rw, "want a JSON POST", http.StatusBadRequest)
			return
		}
		w.events = append(w.events, ev)
	})) + "/hooks/ops"
	return w
}

// wait returns the first event of kind, state and terminal, once received.
func (w *webhookReceiver) wait(t testing.TB, kind, state, terminal string) hookEvent {
	t.Helper()
	var got hookEvent
	eventually(t, 20*time.Second, fmt.Sprintf("the webhook's %s %s of %s", kind, state, terminal), func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		for _, ev := range w.events {
			if ev.Kind == kind && ev.State == state && ev.Terminal == terminal {
				got = ev
				return nil
			}
		}
		return fmt.Errorf("received %+v, bad requests %q", w.events, w.bad)
	})
	return got
}

func (w *webhookReceiver) received() ([]hookEvent, []string) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]hookEvent(nil), w.events...), append([]string(nil), w.bad...)
}

// simJournal appends count records (0: until killed) of terminal on date to journal at rate/s
// with the real simulator, receipts from first on.
func simJournal(t testing.TB, dir, journal, terminal, date string, first, count int, rate float64) *proc {
	t.Helper()
	return start(t, "lanebridge-sim", filepath.Join(dir, "sim-"+terminal+".log"), "jsonl", "--out", journal, "--terminal", terminal,
		"--date", date, "--first-receipt", fmt.Sprint(first), "--count", fmt.Sprint(count), "--rate", fmt.Sprint(rate),
		"--seed", fmt.Sprint(first), "--mix", "sale=1")
}

// apiAlert is an alert as GET /api/v1/alerts lists it.
type apiAlert struct {
	Kind, State, Store, Terminal, Threshold string
	ClearedAt                               *time.Time `json:"cleared_at"`
}

// alerts lists the store's alerts in state (open or cleared) through the API.
func (h *hub) alerts(t testing.TB, store, state string) []apiAlert {
	t.Helper()
	b, err := h.Get("/api/v1/alerts?state=" + state + "&store=" + store)
	if err != nil {
		t.Fatal(err)
	}
	var resp struct{ Alerts []apiAlert }
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	for _, a := range resp.Alerts {
		if a.State != state || (a.ClearedAt == nil) != (state == "open") {
			t.Errorf("listing %s alerts: %+v", state, a)
		}
	}
	return resp.Alerts
}

func hasAlert(list []apiAlert, kind, terminal string) bool {
	return slices.ContainsFunc(list, func(a apiAlert) bool { return a.Kind == kind && a.Terminal == terminal })
}

// TestAlertAndWebhookInBrowser (issue 9): a store's terminal T2 falls silent while T1 keeps
// selling; the real hub raises terminal_silent for T2 only, the Fleet and Alerts pages in
// Chromium show it with its threshold and a real webhook receiver gets the raise as JSON with
// a one-line text; T2 selling again clears it (API, page, webhook). Then closing today, still
// trading, from the store page: dismissing the reason prompt leaves the day open, giving a
// reason closes it and the audit log carries the reason.
func TestAlertAndWebhookInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	began := time.Now()
	const store, user, silentAfter = "S050", "op9", "3s"
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	hook := startWebhook(t)
	// The stores trade around the clock in a zone where it is about noon now, so today's
	// business date stays today (and still trading) whenever the test runs.
	offset := 12 - time.Now().UTC().Hour()
	today := time.Now().UTC().Add(time.Duration(offset) * time.Hour).Format(time.DateOnly)
	cfg := writeHubConfig(t, dir, "hub.yaml", fmt.Sprintf("alerts:\n  terminal_silent_after: %s\n  trading_hours: \"Mon-Sun 00:00-24:00\"\n"+
		"  time_zone: Etc/GMT%+d\n  evaluate_every: 200ms\n  webhook: %s\n", silentAfter, -offset, hook.url))
	h := startHub(t, dir, "--config", cfg)
	addUser(t, h, user, "operator", testPassword)

	j1, j2 := filepath.Join(dir, store+"-T1.jsonl"), filepath.Join(dir, store+"-T2.jsonl")
	for _, j := range []string{j1, j2} {
		if err := os.WriteFile(j, nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	ag := startAgent(t, dir, store, agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT, "--config", cfg),
		map[string]string{"T1": j1, "T2": j2}))
	t1 := simJournal(t, dir, j1, "T1", today, 1, 0, 5) // T1 sells 5 a second throughout
	simJournal(t, dir, j2, "T2", today, 1, 3, 0)       // T2 sells 3, then falls silent

	// The raise, seen by the API first: then the pages must show it.
	eventually(t, 30*time.Second, "terminal_silent of T2 open", func() error {
		if open := h.alerts(t, store, "open"); !hasAlert(open, "terminal_silent", "T2") {
			return fmt.Errorf("open alerts %+v", open)
		}
		return nil
	})
	raised := time.Since(began)
	open := h.alerts(t, store, "open")
	if hasAlert(open, "terminal_silent", "T1") || len(open) != 1 {
		t.Errorf("open alerts %+v, want terminal_silent of T2 only (T1 sells)", open)
	}
	shots := artifacts(t)
	ctx := browser(t, 90*time.Second)
	signIn(t, ctx, h, user, testPassword) // lands on the Fleet page
	do(t, ctx, "reload the fleet page", chromedp.Navigate("http://"+h.HTTP+"/"))
	waitPage(t, ctx, "the fleet page", `document.querySelector('#stores tr[data-id="S050"]') !== null && !document.getElementById("logout").hidden`)
	tags := eval[[]string](t, ctx, `[...document.querySelectorAll('#stores tr[data-id="S050"] a.tag')].map(a => a.textContent + " " + a.getAttribute("href"))`)
	if len(tags) != 1 || tags[0] != "terminal_silent T2 /alerts?store=S050" {
		t.Errorf("fleet row of %s has alert tags %q, want terminal_silent T2 linking to its alerts", store, tags)
	}
	screenshot(t, ctx, shots, "alert-fleet")

	alertRows := func(table string) []string {
		do(t, ctx, "open the alerts page", chromedp.Navigate("http://"+h.HTTP+"/alerts"))
		waitPage(t, ctx, "the alerts page", `document.getElementById("cleared-alerts") !== null && !document.getElementById("logout").hidden`)
		return eval[[]string](t, ctx, `[...document.querySelectorAll("#`+table+` tr")].slice(1).map(r => [...r.cells].map(c => c.innerText.trim()).join("|"))`)
	}
	// Cells: kind, store, terminal, since, cleared, detail, threshold.
	rows := alertRows("open-alerts")
	if c := strings.Split(strings.Join(rows, "\n"), "|"); len(rows) != 1 || len(c) != 7 || c[0] != "terminal_silent" || c[1] != store ||
		c[2] != "T2" || c[4] != "—" || !strings.HasPrefix(c[5], "nothing captured for") || c[6] != "3s inside trading hours" {
		t.Errorf("open alerts on the page: %q, want terminal_silent of S050 T2, not cleared, with its detail and threshold 3s inside trading hours", rows)
	}
	screenshot(t, ctx, shots, "alerts-open")

	ev := hook.wait(t, "terminal_silent", "raised", "T2")
	if ev.Store != store || ev.Since.IsZero() || !strings.Contains(ev.Detail, "nothing captured") || strings.ContainsAny(ev.Text, "\r\n") ||
		!strings.Contains(ev.Text, "terminal T2 of store S050") || !strings.Contains(ev.Text, "3s inside trading hours") {
		t.Errorf("webhook raise %+v, want store S050, since, detail and a one-line text naming T2 and the threshold", ev)
	}

	// T2 sells again (and keeps selling): the alert clears.
	simJournal(t, dir, j2, "T2", today, 4, 0, 5)
	eventually(t, 30*time.Second, "terminal_silent of T2 cleared", func() error {
		if c := h.alerts(t, store, "cleared"); !hasAlert(c, "terminal_silent", "T2") {
			return fmt.Errorf("cleared alerts %+v", c)
		}
		return nil
	})
	cleared := time.Since(began)
	if open := h.alerts(t, store, "open"); len(open) != 0 {
		t.Errorf("open alerts after T2 sold again: %+v", open)
	}
	if ev := hook.wait(t, "terminal_silent", "cleared", "T2"); ev.Store != store || strings.ContainsAny(ev.Text, "\r\n") ||
		!strings.HasPrefix(ev.Text, "Lanebridge alert cleared: terminal silent terminal T2 of store S050") {
		t.Errorf("webhook clear %+v", ev)
	}
	if rows := alertRows("cleared-alerts"); len(rows) != 1 || !strings.HasPrefix(rows[0], "terminal_silent|S050|T2|") ||
		strings.Contains(rows[0], "|—|") || !strings.HasSuffix(rows[0], "|3s inside trading hours") {
		t.Errorf("cleared alerts on the page: %q", rows)
	}
	if rows := alertRows("open-alerts"); len(rows) != 1 || rows[0] != "None." {
		t.Errorf("open alerts on the page after the clear: %q", rows)
	}
	screenshot(t, ctx, shots, "alerts-cleared")
	events, bad := hook.received()
	if len(events) != 2 || len(bad) != 0 {
		t.Errorf("webhook received %+v and bad requests %q, want T2's raise and clear only", events, bad)
	}

	// Close today, still trading, from the store page.
	dialogs := make(chan *page.EventJavascriptDialogOpening, 4)
	if err := chromedp.Listen(ctx, func(ev any) {
		if d, ok := ev.(*page.EventJavascriptDialogOpening); ok {
			select {
			case dialogs <- d:
			default:
			}
		}
	}); err != nil {
		t.Fatal(err)
	}
	closePath := "/api/v1/stores/" + store + "/days/" + today + "/close"
	reason := "Z printed early: power cut announced for 15:00"
	for _, accept := range []bool{false, true} {
		do(t, ctx, "open the store page", chromedp.Navigate("http://"+h.HTTP+"/stores/"+store))
		button := `button.close-day[data-date="` + today + `"]`
		waitPage(t, ctx, "the store page with today", `document.querySelector('`+button+`') !== null && !document.getElementById("logout").hidden`)
		do(t, ctx, "click Close day", chromedp.Click(button))
		var d *page.EventJavascriptDialogOpening
		select {
		case d = <-dialogs:
		case <-time.After(20 * time.Second):
			t.Fatalf("no prompt for a reason within 20s; the page says %q", eval[string](t, ctx, `document.getElementById("action-status").textContent`))
		}
		if d.Type != page.DialogTypePrompt || !strings.Contains(d.Message, "is still trading") || !strings.Contains(d.Message, "Reason for closing "+today) {
			t.Errorf("dialog %s %q, want a prompt saying the day is still trading and asking for a reason", d.Type, d.Message)
		}
		if _, err := chromedp.Call(ctx, page.HandleJavaScriptDialog, page.HandleJavaScriptDialogParams{Accept: accept, PromptText: reason}); err != nil {
			t.Fatal(err)
		}
		if !accept {
			waitPage(t, ctx, "the cancel", `document.getElementById("action-status").textContent === "Close of `+today+` cancelled."`)
			screenshot(t, ctx, shots, "close-cancelled")
			if b, err := h.Get(closePath); err == nil || !strings.Contains(err.Error(), "404") {
				t.Fatalf("the prompt was dismissed, yet the day is closed: %s %v", b, err)
			}
			continue
		}
		waitPage(t, ctx, "the day's comparison", `location.pathname === "/calendar/S050/`+today+`" && document.getElementById("comparison") !== null`)
		screenshot(t, ctx, shots, "closed-with-reason")
	}
	if b, err := h.Get(closePath); err != nil {
		t.Fatalf("day not closed after the reason was given: %v", err)
	} else if !strings.Contains(string(b), `"state"`) {
		t.Errorf("closed day: %s", b)
	}
	b, err := h.Get("/api/v1/audit?limit=1000")
	if err != nil {
		t.Fatal(err)
	}
	var audit struct {
		Entries []struct{ Actor, Action, Target, Detail, Outcome string }
	}
	if err := json.Unmarshal(b, &audit); err != nil {
		t.Fatal(err)
	}
	// Three attempts: the dismissed one (409, no reason), then 409 and the retry with the reason.
	var closes []string
	outcomes := map[string]int{}
	for _, e := range audit.Entries {
		if e.Target == closePath {
			closes = append(closes, fmt.Sprintf("%s %s %s %q", e.Actor, e.Action, e.Outcome, e.Detail))
			outcomes[e.Outcome]++
			if e.Actor != "user:"+user || (e.Outcome == "200") != strings.Contains(e.Detail, "reason: "+reason) {
				t.Errorf("audit of a close: %+v, want %s's, with the reason %q on the one that closed", e, user, reason)
			}
		}
	}
	if len(closes) != 3 || outcomes["409"] != 2 || outcomes["200"] != 1 {
		t.Errorf("audit entries for %s: %q, want two refused (409) and one close (200)", closePath, closes)
	}
	t.Logf("raised after %v, cleared after %v, whole test %v; audit of the close: %q", raised.Round(time.Millisecond),
		cleared.Round(time.Millisecond), time.Since(began).Round(time.Millisecond), closes)
	t1.Kill()
	ag.Stop(t)
	checkLogs(t, dir)
}
