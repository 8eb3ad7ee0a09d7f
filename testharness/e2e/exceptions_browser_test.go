package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// artefacts returns the directory screenshots go to: $LANEBRIDGE_ARTIFACTS/<test>, or one
// under the test's temporary directory; it logs which.
func artefacts(t testing.TB) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "artefacts")
	if base := os.Getenv("LANEBRIDGE_ARTIFACTS"); base != "" {
		dir = filepath.Join(base, t.Name())
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// screenshot saves a PNG of the whole page, once it is loaded and laid out, as dir/name.png.
func screenshot(t testing.TB, ctx context.Context, dir, name string) {
	t.Helper()
	var png []byte
	eventually(t, 20*time.Second, "a screenshot of "+name, func() error {
		ready, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.readyState === "complete" && document.body.clientWidth > 0`))
		if err == nil && !ready {
			err = fmt.Errorf("page not laid out yet")
		}
		if err == nil {
			png, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
		}
		return err
	})
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// history is an exception's history as the API returns it.
func (h *hub) history(t testing.TB, id int64) []struct{ Actor, Action, From, To, Comment string } {
	t.Helper()
	b, err := h.get(fmt.Sprintf("/api/v1/exceptions/%d/history", id))
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
	if _, err := h.post("/api/v1/stores/"+store+"/days/2026-11-26/close", nil); err != nil {
		t.Fatal(err)
	}
	open := append(h.openExceptions(t, store), h.openExceptions(t, "S051")...)
	if len(open) < 3 {
		t.Fatalf("open exceptions %+v, want at least 3", open)
	}
	shots := artefacts(t)
	ctx := browser(t, 120*time.Second)
	// Not signIn: the meta refresh from / to /login can race chromedp's view of the document
	// ("Could not find node with given id"); a direct navigation cannot.
	do(t, ctx, "open /login", chromedp.Navigate("http://"+h.http+"/login"))
	if msg := submitLogin(t, ctx, user, testPassword); msg != "" {
		t.Fatalf("sign in as %s: the page says %q", user, msg)
	}
	waitPage(t, ctx, "the fleet page", `document.getElementById("stores") !== null && document.getElementById("who").textContent.includes("eve")`)

	do(t, ctx, "open /exceptions", chromedp.Navigate("http://"+h.http+"/exceptions"))
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
	do(t, ctx, "open the exception's page", chromedp.Navigate(fmt.Sprintf("http://%s/exceptions/%d", h.http, target.ID)))
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
	do(t, ctx, "open the open queue", chromedp.Navigate("http://"+h.http+"/exceptions?state=open"))
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

	do(t, ctx, "open /alerts", chromedp.Navigate("http://"+h.http+"/alerts"))
	waitPage(t, ctx, "the alerts page", `document.querySelector("main h2").textContent === "Alerts"`)
	screenshot(t, ctx, shots, "alerts")
	ag.stop(t)
	ag2.stop(t)
	checkLogs(t, dir)
}
