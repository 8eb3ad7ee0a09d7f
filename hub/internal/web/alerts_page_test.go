package web

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
)

func TestAlertsPage(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	since := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for _, a := range []store.Alert{
		{Kind: "store_offline", Store: "S002", Since: since, Detail: "no status for 16m", Threshold: "15m inside trading hours"},
		{Kind: "terminal_silent", Store: "S001", Terminal: "T1", Since: since.Add(time.Hour), Detail: "no sale for 65m", Threshold: "60m inside trading hours"},
		{Kind: "backlog", Store: "S002", Since: since.Add(2 * time.Hour), Detail: "4000 records unsent", Threshold: "1000 records"},
	} {
		if _, err := f.st.RaiseAlert(ctx, a); err != nil {
			t.Fatal(err)
		}
	}
	if _, ok, err := f.st.ClearAlert(ctx, "store_offline", "S002", "", since.Add(20*time.Minute)); !ok || err != nil {
		t.Fatalf("clear: %v %v", ok, err)
	}
	page := f.do(t, "GET", "/alerts", "", bearer(f.admin))
	open, cleared, ok := strings.Cut(page.body, "Recently cleared")
	if page.code != 200 || !ok {
		t.Fatalf("alerts page: %d %s", page.code, page.body)
	}
	for _, want := range []string{"terminal_silent", "<td>T1</td>", "2026-12-01 09:00:00Z", "no sale for 65m", "60m inside trading hours", "backlog", "1000 records"} {
		if !strings.Contains(open, want) {
			t.Errorf("open alerts lack %q", want)
		}
	}
	if strings.Contains(open, "store_offline") || !strings.Contains(cleared, "store_offline") || !strings.Contains(cleared, "2026-12-01 08:20:00Z") ||
		!strings.Contains(cleared, "15m inside trading hours") {
		t.Errorf("the cleared alert is not listed as cleared, with when and its threshold:\n%s", page.body)
	}
	if strings.Index(open, "backlog") > strings.Index(open, "terminal_silent") {
		t.Errorf("open alerts are not newest first")
	}
	// A principal limited to S001 is shown S001's alerts only.
	page = f.do(t, "GET", "/alerts", "", bearer(f.token(t, "v1", "viewer", "S001")))
	if page.code != 200 || strings.Contains(page.body, "S002") || !strings.Contains(page.body, "terminal_silent") {
		t.Fatalf("S001 viewer's alerts page: %d %s", page.code, page.body)
	}
}
