package e2e

import (
	"os"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// TestDashboardInBrowser: the operators' page, rendered by a real browser after signing in,
// shows each store's agent state and record count and the open exceptions.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir, h, ag := uiHub(t, "S030", "viewer1", "viewer")
	enroll(t, dir, "S031", "tcp://"+h.mqtt) // enrolled, never seen
	ctx := browser(t, 60*time.Second)
	signIn(t, ctx, h, "viewer1", testPassword)
	dom := eval[string](t, ctx, `document.documentElement.outerHTML`)
	if shot := os.Getenv("LANEBRIDGE_DASHBOARD_SHOT"); shot != "" { // e.g. /tmp/dashboard.png to look at it
		png, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil || os.WriteFile(shot, png, 0o644) != nil {
			t.Errorf("screenshot: %v", err)
		}
	}
	row := between(dom, `<a href="/api/v1/stores/S030">S030</a>`, "</tr>")
	if row == "" {
		t.Fatalf("dashboard has no row for S030:\n%s", dom)
	}
	for _, want := range []string{"online", ">25<"} {
		if !strings.Contains(row, want) {
			t.Errorf("S030 row lacks %q: %s", want, row)
		}
	}
	if r := between(dom, `<a href="/api/v1/stores/S031">S031</a>`, "</tr>"); !strings.Contains(r, "never seen") {
		t.Errorf("S031 row should say never seen: %s", r)
	}
	exc := between(dom, `id="exceptions"`, "</table>")
	if !strings.Contains(exc, "capture_quarantined") || !strings.Contains(exc, "THIS IS NOT A RECORD") {
		t.Errorf("open exceptions table lacks the quarantined line:\n%s", exc)
	}
	ag.stop(t)
	checkLogs(t, dir)
}

func between(s, start, end string) string {
	i := strings.Index(s, start)
	if i < 0 {
		return ""
	}
	j := strings.Index(s[i:], end)
	if j < 0 {
		return s[i:]
	}
	return s[i : i+j]
}
