package e2e

import (
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// history is an exception's history as the API returns it.
func (h *hub) history(t testing.TB, id int64) []struct{ Actor, Action, From, To, Comment string } {
	t.Helper()
	b, err := h.Get(fmt.Sprintf("/api/v1/exceptions/%d/history", id))
	if err != nil {
		t.Fatal(err)
	}
	var resp struct {
		History []struct{ Actor, Action, From, To, Comment string }
	}
	if err := json.Unmarshal(b, &resp); err != nil {
		t.Fatal(err)
	}
	return resp.History
}

// TestExceptionsInBrowser: an operator in a real Chromium filters the exceptions queue,
// resolves one exception with a comment, finds the resolve in its history on its page (who,
// when, what), and acknowledges two others at once; the hub's API shows each change made by
// that operator. Each page is saved as a screenshot.
func TestExceptionsInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	const store, user = "S050", "eve"
	dir, h, ag := uiHub(t, store, user, "operator")
	ag2 := seedStore(t, dir, h, "S051")
	// The close of the seeded day raises another exception (no Z report) beside each store's
	// quarantined capture.
	if _, err := h.Post("/api/v1/stores/"+store+"/days/2026-11-26/close", nil); err != nil {
		t.Fatal(err)
	}
	open := append(h.openExceptions(t, store), h.openExceptions(t, "S051")...)
	if len(open) < 3 {
		t.Fatalf("open exceptions %+v, want at least 3", open)
	}
	shots := artifacts(t)
	ctx := browser(t, 120*time.Second)
	signIn(t, ctx, h, user, testPassword)

	do(t, ctx, "open /exceptions", chromedp.Navigate("http://"+h.HTTP+"/exceptions"))
	waitPage(t, ctx, "the exceptions queue", `document.getElementById("queue") !== null`)
	shown := eval[int](t, ctx, `document.querySelectorAll("#queue tr[data-id]").length`)
	if shown != len(open) {
		t.Fatalf("the queue shows %d exceptions, the API %d open", shown, len(open))
	}
	screenshot(t, ctx, shots, "exceptions")

	// Filter by store and by the quarantined capture's reason.
	target := open[slices.IndexFunc(open, func(e exception) bool { return e.Store == store && e.Reason == "capture_quarantined" })]
	do(t, ctx, "filter by store and reason", chromedp.SetValue(chromedp.CSS(`select[name=store]`), store),
		chromedp.SetValue(chromedp.CSS(`select[name=reason]`), target.Reason), chromedp.Click(chromedp.CSS(`#filters button[type=submit]`)))
	waitPage(t, ctx, "the filtered queue", `location.search.includes("reason=capture_quarantined") && document.getElementById("queue") !== null`)
	ids := eval[[]string](t, ctx, `[...document.querySelectorAll("#queue tr[data-id]")].map(tr => tr.dataset.id)`)
	if !slices.Equal(ids, []string{fmt.Sprint(target.ID)}) {
		t.Fatalf("filtered by %s and %s the queue shows %v, want exception %d", store, target.Reason, ids, target.ID)
	}
	screenshot(t, ctx, shots, "exceptions-filtered")

	// Resolve it with a comment.
	const comment = "profile fixed: the line was a printer test page"
	do(t, ctx, "resolve with a comment", chromedp.SendKeys(chromedp.ID("comment"), comment),
		chromedp.Click(chromedp.CSS(fmt.Sprintf(`button[data-id="%d"][data-action=resolved]`, target.ID))))
	eventually(t, 20*time.Second, "the exception resolved", func() error {
		if st := h.exceptionState(t, target.ID); st != "resolved" {
			return fmt.Errorf("state %s", st)
		}
		return nil
	})
	waitPage(t, ctx, "the queue reloaded without it", fmt.Sprintf(`document.readyState === "complete" && document.getElementById("queue") !== null &&
		document.querySelector('#queue tr[data-id="%d"]') === null`, target.ID))

	// Its page shows the resolve in its history: who, when, what.
	do(t, ctx, "open the exception's page", chromedp.Navigate(fmt.Sprintf("http://%s/exceptions/%d", h.HTTP, target.ID)))
	waitPage(t, ctx, "the exception's history", `document.getElementById("history") !== null`)
	rows := eval[[]string](t, ctx, `[...document.querySelectorAll("#history tr")].slice(1).map(r => r.innerText)`)
	last := rows[len(rows)-1]
	for _, want := range []string{"user:" + user, "open → resolved", comment, time.Now().UTC().Format("2006-01-02")} {
		if !strings.Contains(last, want) {
			t.Errorf("history row %q lacks %q (rows %q)", last, want, rows)
		}
	}
	if !strings.Contains(rows[0], "raised") {
		t.Errorf("history starts with %q, want the raise", rows[0])
	}
	screenshot(t, ctx, shots, "exception")

	// Acknowledge two others at once.
	var two []int64
	for _, e := range open {
		if e.ID != target.ID && len(two) < 2 {
			two = append(two, e.ID)
		}
	}
	do(t, ctx, "open the open queue", chromedp.Navigate("http://"+h.HTTP+"/exceptions?state=open"))
	waitPage(t, ctx, "the queue", `document.getElementById("queue") !== null`)
	steps := []chromedp.Action[chromedp.Void]{chromedp.SendKeys(chromedp.ID("comment"), "triaged")}
	for _, id := range two {
		steps = append(steps, chromedp.Click(chromedp.CSS(fmt.Sprintf(`input[name=id][value="%d"]`, id))))
	}
	steps = append(steps, chromedp.Click(chromedp.CSS(`button[data-bulk=acknowledged]`)))
	do(t, ctx, "bulk acknowledge two", steps...)
	eventually(t, 20*time.Second, "both acknowledged", func() error {
		for _, id := range two {
			if st := h.exceptionState(t, id); st != "acknowledged" {
				return fmt.Errorf("exception %d is %s", id, st)
			}
		}
		return nil
	})
	for _, id := range two {
		hs := h.history(t, id)
		if e := hs[len(hs)-1]; e.Actor != "user:"+user || e.From != "open" || e.To != "acknowledged" || e.Comment != "triaged" {
			t.Errorf("history of %d ends %+v, want %s's acknowledge", id, e, user)
		}
	}
	for _, e := range open {
		if e.ID != target.ID && !slices.Contains(two, e.ID) && h.exceptionState(t, e.ID) != "open" {
			t.Errorf("exception %d was not selected but changed", e.ID)
		}
	}
	waitPage(t, ctx, "the queue reloaded without the acknowledged", fmt.Sprintf(`document.readyState === "complete" && document.getElementById("queue") !== null &&
		document.querySelector('#queue tr[data-id="%d"]') === null`, two[0]))
	screenshot(t, ctx, shots, "exceptions-after-bulk")

	do(t, ctx, "open /alerts", chromedp.Navigate("http://"+h.HTTP+"/alerts"))
	waitPage(t, ctx, "the alerts page", `document.querySelector("main h2").textContent === "Alerts"`)
	screenshot(t, ctx, shots, "alerts")
	ag.Stop(t)
	ag2.Stop(t)
	checkLogs(t, dir)
}

// TestExceptionReplayFromAgent: receipts 10..15 vanish from the hub while the store's agent is
// down, so the close's replay command finds nobody and the close raises missing_receipts. Once
// the agent is back, POST /api/v1/exceptions/{id}/replay asks it again: the receipts come back
// from its spool, the exception is acknowledged naming the command, and the next close finds
// no gap.
func TestExceptionReplayFromAgent(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir, h := closeHub(t, "3s")
	const store = "S052"
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": journal})
	simP := runSim(t, dir, journal, "T1", 40, 200, 9)
	ag := startAgent(t, dir, store, cfg)
	<-simP.Done
	h.WaitRecords(t, store, 40, 60*time.Second)
	ag.Stop(t)

	deleteReceipts(t, dir, store, 10, 15)
	closeDay := func() (gaps map[string][][2]int64) {
		t.Helper()
		body, err := h.Post("/api/v1/stores/"+store+"/days/2026-11-26/close", nil)
		var r struct{ Gaps map[string][][2]int64 }
		if err == nil {
			err = json.Unmarshal(body, &r)
		}
		if err != nil {
			t.Fatalf("close: %v", err)
		}
		return r.Gaps
	}
	if gaps := closeDay(); len(gaps["T1"]) != 1 {
		t.Fatalf("close with the agent down: gaps %v, want receipts 10..15 of T1", gaps)
	}
	b, err := h.Get("/api/v1/exceptions?reason=missing_receipts&store=" + store)
	var list struct{ Exceptions []exception }
	if err == nil {
		err = json.Unmarshal(b, &list)
	}
	if err != nil || len(list.Exceptions) != 1 {
		t.Fatalf("missing_receipts exceptions: %s, %v", b, err)
	}
	id := list.Exceptions[0].ID

	ag = startAgent(t, dir, store, cfg)
	eventually(t, 30*time.Second, "the agent online again", func() error {
		si, err := h.Store(store)
		if err == nil && (si.Status == nil || si.Status.State != "online") {
			err = fmt.Errorf("status %+v", si.Status)
		}
		return err
	})
	b, err = h.Post(fmt.Sprintf("/api/v1/exceptions/%d/replay", id), []byte(`{"comment":"agent was down during the close"}`))
	var rep struct {
		Command   string
		Exception exception
	}
	if err == nil {
		err = json.Unmarshal(b, &rep)
	}
	if err != nil || rep.Command == "" || rep.Exception.State != "acknowledged" {
		t.Fatalf("replay: %s, %v", b, err)
	}
	h.WaitRecords(t, store, 40, 30*time.Second)
	hs := h.history(t, id)
	if e := hs[len(hs)-1]; !strings.HasPrefix(e.Actor, "token:") || e.To != "acknowledged" || !strings.Contains(e.Comment, rep.Command) ||
		!strings.Contains(e.Comment, "agent was down") {
		t.Fatalf("history ends %+v, want the replay request naming %s", e, rep.Command)
	}
	if gaps := closeDay(); len(gaps) != 0 {
		t.Fatalf("close after the replay: gaps %v", gaps)
	}
	ag.Stop(t)
	checkLogs(t, dir)
}
