package web

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/creds"
	"github.com/lanebridge/lanebridge/hub/internal/store"
)

// The enrolment endpoint, with the real handler and store: a token works once, an expired one
// and a used one are refused with the fix, guessing is throttled per address, every attempt is
// audited, and the password returned is the one the broker now accepts.
func TestEnroll(t *testing.T) {
	f := newFixture(t, Options{Enroll: EnrollOptions{BrokerURL: "ssl://hub.example:8883", HubURL: "https://hub.example:8443"}})
	ctx := context.Background()
	add := func(tok string, life time.Duration) {
		t.Helper()
		if err := f.st.AddEnrollToken(ctx, "S001", auth.HashSecret(tok), f.clock.now().Add(life)); err != nil {
			t.Fatal(err)
		}
	}
	add("lbe_good", time.Hour)
	add("lbe_short", time.Minute)
	body := func(tok string) string { return `{"token":"` + tok + `"}` }

	r := f.do(t, "POST", "/api/v1/enroll", body("lbe_good"))
	if r.code != 200 || r.h.Get("Cache-Control") != "no-store" {
		t.Fatalf("enroll: %d %s", r.code, r.body)
	}
	var resp EnrollResponse
	if err := json.Unmarshal([]byte(r.body), &resp); err != nil {
		t.Fatal(err)
	}
	if resp.Store != "S001" || resp.Username != "S001" || resp.Broker != "ssl://hub.example:8883" || resp.HubURL != "https://hub.example:8443" || len(resp.Password) < 40 || resp.ActionNeeded != "" {
		t.Fatalf("response = %+v", resp)
	}
	c, err := f.st.Credentials(ctx, "S001")
	if err != nil || !creds.Verify(c.Hash, resp.Password) || !creds.VerifyMosquitto(c.MosquittoHash, resp.Password) {
		t.Fatalf("stored credentials do not match the password handed out: %+v %v", c, err)
	}
	if strings.Contains(c.Hash, resp.Password) {
		t.Fatal("plain password stored")
	}

	if r := f.do(t, "POST", "/api/v1/enroll", body("lbe_good")); r.code != 410 || !strings.Contains(r.body, "already used") {
		t.Fatalf("second use: %d %s", r.code, r.body)
	}
	if c2, _ := f.st.Credentials(ctx, "S001"); c2.Hash != c.Hash {
		t.Fatal("a second use changed the password")
	}
	f.clock.add(2 * time.Minute)
	if r := f.do(t, "POST", "/api/v1/enroll", body("lbe_short")); r.code != 410 || !strings.Contains(r.body, "expired") {
		t.Fatalf("expired: %d %s", r.code, r.body)
	}
	f.clock.add(time.Hour) // the throttle forgets nothing by time alone, but its delay has passed

	// Guessing: the throttle admits a few failures, then closes the address; even the right
	// token is refused while it is closed.
	add("lbe_later", 24*time.Hour)
	codes := []int{}
	for i := range 6 {
		codes = append(codes, f.do(t, "POST", "/api/v1/enroll", body("lbe_guess"+string(rune('a'+i)))).code)
	}
	if codes[0] != 401 || codes[len(codes)-1] != 429 {
		t.Fatalf("guess codes = %v, want 401… then 429", codes)
	}
	if r := f.do(t, "POST", "/api/v1/enroll", body("lbe_later")); r.code != 429 || r.h.Get("Retry-After") == "" {
		t.Fatalf("right token while throttled: %d", r.code)
	}
	f.clock.add(time.Hour)
	if r := f.do(t, "POST", "/api/v1/enroll", body("lbe_later")); r.code != 200 {
		t.Fatalf("after the back-off: %d %s", r.code, r.body)
	}
	if r := f.do(t, "POST", "/api/v1/enroll", `{"token":""}`); r.code != 400 {
		t.Fatalf("empty token: %d", r.code)
	}

	entries, err := f.st.Audit(ctx, 0, 100)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, e := range entries {
		if e.Action == "POST /api/v1/enroll" {
			got[e.Actor+" "+e.Outcome]++
			if strings.Contains(e.Detail, resp.Password) {
				t.Fatal("password in the audit log")
			}
		}
	}
	if got["enroll:S001 200"] != 2 || got["enroll:S001 410"] != 2 || got["enroll 401"] < 1 || got["enroll throttled"] < 2 {
		t.Fatalf("audit = %v", got)
	}
}

// With an external broker the answer says what the operator must still do.
func TestEnrollExternalBroker(t *testing.T) {
	f := newFixture(t, Options{Enroll: EnrollOptions{BrokerURL: "tcp://mosquitto:1883", ExternalBroker: true}})
	if err := f.st.AddEnrollToken(context.Background(), "S002", auth.HashSecret("lbe_x"), f.clock.now().Add(time.Hour)); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, "POST", "/api/v1/enroll", `{"token":"lbe_x"}`)
	if r.code != 200 || !strings.Contains(r.body, "export mosquitto") {
		t.Fatalf("%d %s", r.code, r.body)
	}
}

// The store page lists the store's configuration pushes with their state and the agent's words.
func TestStorePageConfigPushes(t *testing.T) {
	f := newFixture(t, Options{})
	ctx := context.Background()
	exp := time.Now().Add(time.Hour)
	for _, p := range []store.ConfigPush{{Store: "S001", Version: 1, CommandID: "c1", Overrides: "log: {level: debug}\n", ExpiresAt: exp},
		{Store: "S001", Version: 2, CommandID: "c2", Overrides: "hub: {window: 4}\n<script>", ExpiresAt: exp}} {
		if err := f.st.AddConfigPush(ctx, p); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := f.st.PutConfigReport(ctx, "S001", 2, "rolled_back", "the agent failed with version 2: printer tap: listen"); err != nil {
		t.Fatal(err)
	}
	r := f.do(t, "GET", "/stores/S001", "", bearer(f.admin))
	if r.code != 200 {
		t.Fatalf("%d %s", r.code, r.body)
	}
	i := strings.Index(r.body, `id="config-pushes"`)
	if i < 0 {
		t.Fatal("no config-pushes table")
	}
	tbl := r.body[i:]
	tbl = tbl[:strings.Index(tbl, "</table>")]
	for _, want := range []string{`rolled_back`, `superseded`, "printer tap: listen", "window: 4", "&lt;script&gt;"} {
		if !strings.Contains(tbl, want) {
			t.Errorf("config pushes table lacks %q:\n%s", want, tbl)
		}
	}
	if strings.Index(tbl, "window: 4") > strings.Index(tbl, "level: debug") {
		t.Error("pushes not newest first")
	}
	if r := f.do(t, "GET", "/stores/S002", "", bearer(f.admin)); !strings.Contains(r.body, "No configuration pushed") {
		t.Error("S002 page lacks the empty-state line")
	}
}
