package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// renderPage loads url in headless Chromium and returns the DOM after scripts ran; with shot
// set it also writes a PNG screenshot.
func renderPage(t testing.TB, url, shot string) string {
	t.Helper()
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--user-data-dir=" + t.TempDir(), "--window-size=1280,900"}
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, chromium(t), append(args, "--dump-dom", url)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom %s: %v", url, err)
	}
	if shot != "" {
		exec.CommandContext(ctx, chromium(t), append(args, "--screenshot="+shot, url)...).Run()
	}
	return string(out)
}

// TestDashboardInBrowser: the operators' page, rendered by a real browser, shows each store's
// agent state and record count and the open exceptions.
func TestDashboardInBrowser(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S030"
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.mqtt), map[string]string{"T1": journal})
	enroll(t, dir, "S031", "tcp://"+h.mqtt) // enrolled, never seen
	g := sim.New("T1", "2026-11-26", 12, nil, 1)
	var lines []string
	for range 25 {
		b, _ := json.Marshal(g.Next())
		lines = append(lines, string(b))
	}
	lines = append(lines, "THIS IS NOT A RECORD")
	os.WriteFile(journal, []byte(strings.Join(lines, "\n")+"\n"), 0o644)
	ag := startAgent(t, dir, store, cfg)
	h.waitRecords(t, store, 25, 30*time.Second)
	eventually(t, 30*time.Second, "agent online with the exception raised", func() error {
		si, err := h.store(store)
		if err != nil {
			return err
		}
		if si.Status == nil || si.Status.State != "online" {
			return fmt.Errorf("status %+v", si.Status)
		}
		b, err := h.get("/api/v1/exceptions?store=" + store)
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "capture_quarantined") {
			return fmt.Errorf("no exception yet")
		}
		return nil
	})
	shot := os.Getenv("LANEBRIDGE_DASHBOARD_SHOT") // e.g. /tmp/dashboard.png to look at it
	dom := renderPage(t, "http://"+h.http+"/", shot)
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
