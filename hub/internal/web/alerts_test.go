package web

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/hub/internal/tradinghours"
)

func TestAlertsEndpoint(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	since := time.Date(2026, 12, 1, 8, 0, 0, 0, time.UTC)
	for i := range 3 {
		if _, err := f.st.RaiseAlert(ctx, store.Alert{Kind: "terminal_silent", Store: "S001", Terminal: fmt.Sprint("T", i), Since: since,
			Detail: "nothing captured", Threshold: "1h inside trading hours"}); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := f.st.ClearAlert(ctx, "terminal_silent", "S001", "T0", since.Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := f.st.RaiseAlert(ctx, store.Alert{Kind: "store_offline", Store: "S002", Since: since, Detail: "S002 is down", Threshold: "offline for 15m"}); err != nil {
		t.Fatal(err)
	}
	type page struct {
		Alerts []map[string]any `json:"alerts"`
		Next   int64            `json:"next"`
	}
	get := func(path, tok string, code int) page {
		t.Helper()
		r := f.do(t, "GET", path, "", bearer(tok))
		var p page
		if r.code != code || (code == 200 && json.Unmarshal([]byte(r.body), &p) != nil) {
			t.Fatalf("%s: %d %s, want %d", path, r.code, r.body, code)
		}
		return p
	}
	open := get("/api/v1/alerts", f.admin, 200)
	if len(open.Alerts) != 3 || open.Next != 0 {
		t.Fatalf("open alerts: %+v", open)
	}
	a := open.Alerts[0]
	for _, k := range []string{"id", "kind", "state", "store", "terminal", "since", "cleared_at", "detail", "threshold"} {
		if _, ok := a[k]; !ok {
			t.Errorf("alert lacks %q: %v", k, a)
		}
	}
	if a["store"] != "S002" || a["threshold"] != "offline for 15m" || a["state"] != "open" || a["cleared_at"] != nil || a["since"] != "2026-12-01T08:00:00Z" {
		t.Errorf("newest open alert %v", a)
	}
	cleared := get("/api/v1/alerts?state=cleared", f.admin, 200)
	if len(cleared.Alerts) != 1 || cleared.Alerts[0]["cleared_at"] != "2026-12-01T09:00:00Z" {
		t.Fatalf("cleared alerts: %+v", cleared)
	}
	p1 := get("/api/v1/alerts?state=all&limit=2", f.admin, 200)
	p2 := get(fmt.Sprintf("/api/v1/alerts?state=all&limit=2&before_id=%d", p1.Next), f.admin, 200)
	if len(p1.Alerts) != 2 || p1.Next == 0 || len(p2.Alerts) != 2 {
		t.Fatalf("pages of all: %+v then %+v", p1, p2)
	}
	// Attack: a viewer of S001 asks for everything, and for S002 by name.
	s1 := f.token(t, "s1", "viewer", "S001")
	for _, path := range []string{"/api/v1/alerts?state=all", "/api/v1/alerts?store=S002"} {
		for _, al := range get(path, s1, 200).Alerts {
			if al["store"] != "S001" {
				t.Fatalf("%s shows an S001 viewer %v", path, al)
			}
		}
	}
	if dash := f.do(t, "GET", "/", "", bearer(s1)).body; strings.Contains(dash, "S002") || strings.Contains(dash, "store_offline") || !strings.Contains(dash, "terminal_silent") {
		t.Fatalf("dashboard for an S001 viewer:\n%s", dash)
	}
	for _, path := range []string{"/api/v1/alerts?state=closed", "/api/v1/alerts?limit=0", "/api/v1/alerts?before_id=x"} {
		get(path, f.admin, 400)
	}
	get("/api/v1/alerts", "", 401)
}

// berlinDays is every store trading 08:00-22:00 in Europe/Berlin.
type berlinDays struct{}

func (berlinDays) StillTrading(_ context.Context, _, date string, now time.Time) (string, error) {
	if tradinghours.MustNew("", "Europe/Berlin").StillTrading(date, now) {
		return "until 22:00 Europe/Berlin", nil
	}
	return "", nil
}

// Closing a day still trading needs a reason, which the audit keeps; a day that has ended
// closes without one.
func TestCloseStillTradingNeedsReason(t *testing.T) {
	f := newFixture(t, Options{Closer: nopCloser{}, Trading: berlinDays{}}) // the clock: 2026-12-01 10:00 in Berlin
	op := f.token(t, "op", "operator")
	post := func(date, body string) reply {
		return f.do(t, "POST", "/api/v1/stores/S001/days/"+date+"/close", body, bearer(op))
	}
	for _, body := range []string{"", `{}`, `{"reason":"  "}`} {
		if r := post("2026-12-01", body); r.code != 409 || !strings.Contains(r.body, `still trading (until 22:00 Europe/Berlin); closing it now needs a reason: send {\"reason\":\"…\"}`) {
			t.Fatalf("close of today with body %q: %d %s, want 409 asking for a reason", body, r.code, r.body)
		}
	}
	if r := post("2026-12-02", ""); r.code != 409 {
		t.Fatalf("close of tomorrow without a reason: %d %s", r.code, r.body)
	}
	if r := post("2026-12-01", `{"reason"`); r.code != 400 {
		t.Fatalf("close with a broken body: %d %s", r.code, r.body)
	}
	if r := post("2026-11-30", ""); r.code != 200 {
		t.Fatalf("close of yesterday: %d %s", r.code, r.body)
	}
	if r := post("2026-12-01", `{"reason":"store flooded,\nclosed early"}`); r.code != 200 {
		t.Fatalf("close of today with a reason: %d %s", r.code, r.body)
	}
	audit, err := f.st.Audit(context.Background(), 0, 20)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, e := range audit {
		found = found || (strings.Contains(e.Target+e.Action, "2026-12-01") || strings.Contains(e.Action, "close")) && strings.Contains(e.Detail, "reason: store flooded, closed early")
	}
	if !found {
		t.Fatalf("audit %+v lacks the close with its reason", audit)
	}
}
