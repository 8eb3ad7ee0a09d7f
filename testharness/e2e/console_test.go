package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// artifacts is the directory screenshots go to: $LANEBRIDGE_ARTIFACTS, or one under the
// test's temporary directory.
func artifacts(t *testing.T) string {
	t.Helper()
	dir := os.Getenv("LANEBRIDGE_ARTIFACTS")
	if dir == "" {
		dir = filepath.Join(t.TempDir(), "artifacts")
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Logf("screenshots in %s", dir)
	return dir
}

// screenshot saves the whole page, once it is loaded and laid out (a page just navigated to
// can have no width yet), as dir/name.png (quality 100 makes chromedp capture PNG).
func screenshot(t *testing.T, ctx context.Context, dir, name string) {
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

// moneyText is an amount as the console formats it: a currency code and grouped digits.
var moneyText = regexp.MustCompile(`^[A-Z]{3} -?\d{1,3}(,\d{3})*(\.\d+)?$`)

// TestConsoleInBrowser: an operator signs in, the fleet page shows each store's
// agent state, records and newest open exception; it sorts and filters in the browser; the
// store page shows money formatted; closing a day from it leads to the day's comparison; the
// close calendar shows the day's state.
func TestConsoleInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir, h, ag := uiHub(t, "S030", "op1", "operator")
	enroll(t, dir, "S031", "tcp://"+h.MQTT) // enrolled, never seen
	shots := artifacts(t)
	ctx := browser(t, 120*time.Second)
	signIn(t, ctx, h, "op1", testPassword)
	waitPage(t, ctx, "the fleet page's session", `!document.getElementById("logout").hidden`)
	screenshot(t, ctx, shots, "fleet")

	row := func(id string) string {
		return eval[string](t, ctx, fmt.Sprintf(`(document.querySelector('#stores tr[data-id=%q]') || {outerHTML: ""}).outerHTML`, id))
	}
	s30 := row("S030")
	for _, want := range []string{`<a href="/stores/S030">S030</a>`, ">online<", ">25<", "capture_quarantined", "THIS IS NOT A RECORD", " MiB"} {
		if !strings.Contains(s30, want) {
			t.Errorf("S030 row lacks %q: %s", want, s30)
		}
	}
	if r := row("S031"); !strings.Contains(r, "never seen") || !strings.Contains(r, "offline") {
		t.Errorf("S031 row should say never seen and be at risk: %s", r)
	}
	order := func() string {
		return eval[string](t, ctx, `[...document.querySelectorAll("#stores tbody tr")].filter(r => !r.hidden).map(r => r.dataset.id).join(",")`)
	}
	if got := order(); got != "S031,S030" { // at risk (offline) first
		t.Errorf("fleet order %s, want S031 (never seen) first", got)
	}
	do(t, ctx, "sort by store", chromedp.Click(`#stores th[data-key="id"]`))
	if got := order(); got != "S030,S031" {
		t.Errorf("sorted by store: %s", got)
	}
	do(t, ctx, "sort by store, descending", chromedp.Click(`#stores th[data-key="id"]`))
	if got := order(); got != "S031,S030" {
		t.Errorf("sorted by store descending: %s", got)
	}
	do(t, ctx, "show the online stores", chromedp.SetValue(chromedp.ID("fleet-state"), "online"))
	eval[chromedp.Void](t, ctx, `document.getElementById("fleet-state").dispatchEvent(new Event("change"))`)
	if got := order(); got != "S030" {
		t.Errorf("online only: %s", got)
	}
	do(t, ctx, "show all, search S031", chromedp.SetValue(chromedp.ID("fleet-state"), ""))
	do(t, ctx, "search", chromedp.SendKeys(chromedp.ID("fleet-search"), "s031"))
	if got := order(); got != "S031" {
		t.Errorf("search s031: %s", got)
	}
	screenshot(t, ctx, shots, "fleet-filtered")

	do(t, ctx, "open the store page", chromedp.Navigate("http://"+h.HTTP+"/stores/S030"))
	waitPage(t, ctx, "the store page", `document.getElementById("records") !== null && !document.getElementById("logout").hidden`)
	totals := eval[[]string](t, ctx, `[...document.querySelectorAll("#records tbody tr")].map(r => r.cells[5].innerText)`)
	if len(totals) != 25 {
		t.Errorf("store page lists %d records, want 25", len(totals))
	}
	for _, m := range totals {
		if !moneyText.MatchString(m) || !strings.HasPrefix(m, "USD ") {
			t.Errorf("record total %q is not money formatted in USD", m)
		}
	}
	// Charts: each either loaded or says there is no data yet.
	if bad := eval[int](t, ctx, `[...document.querySelectorAll("figure")].filter(f => {
		const img = f.querySelector("img"); return !(img.complete && img.naturalWidth > 0) && f.querySelector(".no-data").hidden; }).length`); bad != 0 {
		t.Errorf("%d charts neither show nor say no data yet", bad)
	}
	screenshot(t, ctx, shots, "store")

	// Request a replay of receipts 3..4 from the form; the real agent answers in its status.
	do(t, ctx, "fill in the replay form", chromedp.SendKeys(`#replay input[name="terminal"]`, "T1"),
		chromedp.SetValue(`#replay input[name="business_date"]`, "2026-11-26"),
		chromedp.SendKeys(`#replay input[name="from_receipt"]`, "3"), chromedp.SendKeys(`#replay input[name="to_receipt"]`, "4"),
		chromedp.Click(`#replay button[type="submit"]`))
	waitPage(t, ctx, "the replay answer", `document.getElementById("action-status").textContent.startsWith("Replay requested")`)
	said := eval[string](t, ctx, `document.getElementById("action-status").textContent`)
	cmdID := regexp.MustCompile(`replay-[0-9a-f]+`).FindString(said)
	eventually(t, 30*time.Second, "the agent's replay result", func() error {
		si, err := h.Store("S030")
		if err != nil {
			return err
		}
		for _, r := range si.Status.CommandResults {
			if r.ID == cmdID && cmdID != "" {
				if !r.OK || r.Found != 2 {
					t.Fatalf("replay %s result %+v, want 2 records found", cmdID, r)
				}
				return nil
			}
		}
		return fmt.Errorf("no result for %q (page said %q)", cmdID, said)
	})

	do(t, ctx, "close the day", chromedp.Click(`button.close-day[data-date="2026-11-26"]`))
	waitPage(t, ctx, "the day's comparison", `location.pathname === "/calendar/S030/2026-11-26" && document.getElementById("issues") !== null`)
	state := eval[string](t, ctx, `document.getElementById("close-state").innerText`)
	if !strings.Contains(state, "closed ok") && !strings.Contains(state, "differences") {
		t.Errorf("day page close state %q", state)
	}
	if cap := eval[string](t, ctx, `document.getElementById("comparison").innerText`); !strings.Contains(cap, "USD ") {
		t.Errorf("comparison shows no formatted money: %s", cap)
	}
	screenshot(t, ctx, shots, "day")

	do(t, ctx, "open the calendar", chromedp.Navigate("http://"+h.HTTP+"/calendar?month=2026-11"))
	waitPage(t, ctx, "the calendar", `document.getElementById("calendar") !== null`)
	cell := eval[string](t, ctx, `document.querySelector('#calendar tr[data-id="S030"] td[title^="S030 2026-11-26"]').className`)
	if cell != "cal closed" && cell != "cal differences" {
		t.Errorf("calendar cell of S030 on 2026-11-26 is %q, want closed or differences", cell)
	}
	if n := eval[int](t, ctx, `document.querySelectorAll('#calendar tr[data-id="S031"] td.cal.none').length`); n != 30 {
		t.Errorf("S031 has %d days without data in November, want 30", n)
	}
	screenshot(t, ctx, shots, "calendar")
	do(t, ctx, "open the day from the calendar", chromedp.Click(`#calendar tr[data-id="S030"] td[title^="S030 2026-11-26"] a`))
	waitPage(t, ctx, "the day's comparison", `location.pathname === "/calendar/S030/2026-11-26" && document.getElementById("comparison") !== null`)
	checkLogs(t, dir)

	// The agent dies: the broker publishes its Will; the fleet page keeps what was last known.
	ag.Kill()
	eventually(t, 30*time.Second, "the Will at the hub", func() error {
		if si, err := h.Store("S030"); err != nil || si.Status == nil || si.Status.State != "offline" {
			return fmt.Errorf("status %+v, %v", si.Status, err)
		}
		return nil
	})
	do(t, ctx, "back to the fleet", chromedp.Navigate("http://"+h.HTTP+"/"))
	waitPage(t, ctx, "the fleet page", `document.getElementById("stores") !== null`)
	s30 = row("S030")
	for _, want := range []string{">offline<", "last known 0", "unknown since 2026-", ">dev<", "T1: 2026-", " MiB"} {
		if !strings.Contains(s30, want) {
			t.Errorf("S030 row after the Will lacks %q: %s", want, s30)
		}
	}
	screenshot(t, ctx, shots, "fleet-offline")
}
