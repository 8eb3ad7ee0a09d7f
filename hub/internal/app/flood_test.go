package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	mqtt "github.com/eclipse/paho.mqtt.golang"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/creds"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// floodReports is how many 1 MiB quarantine reports the attacking agent sends.
const floodReports = 150

// TestQuarantineFlood: store S001's agent, a real MQTT client on the embedded broker, sends
// floodReports statuses each reporting a new quarantined capture with 1 MiB of text under a
// new terminal name (150 MiB in all). The hub keeps one exception per capture with its text
// clipped to 2 KiB (at most store.MaxOpenPerReason of them; the store contract tests the rest
// coalescing), and store S002's exception stays on the first page of the API (counted) and on
// the dashboard (listed).
func TestQuarantineFlood(t *testing.T) {
	cfg := testConfig(t)
	s := startHub(t, cfg, func(h *hub) {
		for _, id := range []string{"S001", "S002"} {
			if err := h.st.AddStore(context.Background(), id, creds.Hash("pw-"+id)); err != nil {
				t.Fatal(err)
			}
		}
	})
	h := s.h
	eventually(t, 10*time.Second, "healthz", func() error { return healthz(h.httpAddr) })
	agent := func(id string) mqtt.Client {
		c := mqtt.NewClient(mqtt.NewClientOptions().AddBroker("tcp://" + h.mqttAddr).SetClientID(id).
			SetUsername(id).SetPassword("pw-" + id).SetWriteTimeout(30 * time.Second))
		if tok := c.Connect(); !tok.WaitTimeout(10*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: connect: %v", id, tok.Error())
		}
		t.Cleanup(func() { c.Disconnect(100) })
		return c
	}
	publish := func(c mqtt.Client, store string, payload []byte) {
		t.Helper()
		if tok := c.Publish(protocol.StatusTopic(store), 1, true, payload); !tok.WaitTimeout(30*time.Second) || tok.Error() != nil {
			t.Fatalf("%s: publish: %v", store, tok.Error())
		}
	}
	status := func(store, terminal, id, excerpt string) []byte {
		b, _ := json.Marshal(protocol.Status{V: 1, Store: store, State: "online", Epoch: "e1", Quarantine: []protocol.Quarantined{
			{ID: id, Seq: 1, Terminal: terminal, At: time.Now().UTC(), Reason: "no profile rule matched", Excerpt: excerpt}}})
		return b
	}
	openOf := func(store string) []store.Exception {
		ex, err := h.st.Exceptions(context.Background(), storeFilter(store))
		if err != nil {
			t.Fatal(err)
		}
		return ex
	}
	publish(agent("S002"), "S002", status("S002", "T1", "q-s002", "S002's own unparsed receipt"))
	eventually(t, 10*time.Second, "S002's exception", func() error {
		if len(openOf("S002")) != 1 {
			return fmt.Errorf("none yet")
		}
		return nil
	})
	before := dbSize(t, cfg.DataDir)

	attacker := agent("S001")
	tmpl := status("S001", "TERM#####", "QID#####", strings.Repeat("A", 1<<20))
	start := time.Now()
	for i := range floodReports {
		n := []byte(fmt.Sprintf("%05d", i))
		p := bytes.Replace(bytes.Replace(tmpl, []byte("#####"), n, 1), []byte("#####"), n, 1)
		publish(attacker, "S001", p)
	}
	raised := func() int64 {
		var n int64
		for _, e := range openOf("S001") {
			n += e.Count
		}
		return n
	}
	eventually(t, 60*time.Second, "every report counted", func() error {
		if n := raised(); n != floodReports {
			return fmt.Errorf("%d of %d reports counted", n, floodReports)
		}
		return nil
	})
	elapsed := time.Since(start)
	after := dbSize(t, cfg.DataDir)
	ex := openOf("S001")
	var detail int
	for _, e := range ex {
		detail += len(e.Detail)
	}
	t.Logf("flood of %d × 1 MiB: %s; database %d → %d bytes (+%d); %d S001 exceptions holding %d detail bytes",
		floodReports, elapsed.Round(time.Millisecond), before, after, after-before, len(ex), detail)
	if want := min(floodReports, store.MaxOpenPerReason+1); len(ex) != want {
		t.Errorf("S001 has %d open exceptions, want one per capture up to the cap (%d)", len(ex), want)
	}
	if detail > len(ex)*(protocol.MaxText+256) {
		t.Errorf("S001's exceptions hold %d detail bytes, want at most %d each", detail, protocol.MaxText+256)
	}
	if grow := after - before; grow > 16<<20 {
		t.Errorf("database grew by %d bytes for the flood, want kilobytes (at most 16 MiB with the WAL)", grow)
	}

	// The first page of the API and the dashboard still show S002.
	tok := auth.NewToken()
	if err := h.st.AddToken(context.Background(), store.APIToken{Name: "ops", Role: "viewer", Hash: auth.HashSecret(tok)}); err != nil {
		t.Fatal(err)
	}
	code, body, _ := request(t, "GET", "http://"+h.httpAddr+"/api/v1/exceptions?state=open", "", "Authorization: Bearer "+tok)
	if code != 200 {
		t.Fatalf("GET /api/v1/exceptions: %d %s", code, body)
	}
	var page struct {
		Exceptions []store.Exception      `json:"exceptions"`
		Counts     []store.ExceptionCount `json:"counts"`
	}
	if err := json.Unmarshal([]byte(body), &page); err != nil {
		t.Fatal(err)
	}
	var found bool
	for _, c := range page.Counts {
		found = found || c.Store == "S002" && c.Exceptions == 1
	}
	if !found {
		t.Errorf("S002's exception is not on the first page of the API (%d exceptions, counts %+v)", len(page.Exceptions), page.Counts)
	}
	code, dash, _ := request(t, "GET", "http://"+h.httpAddr+"/", "", "Authorization: Bearer "+tok)
	if code != 200 || !strings.Contains(dash, "S002&#39;s own unparsed receipt") && !strings.Contains(dash, "S002's own unparsed receipt") {
		t.Errorf("dashboard (%d) does not show S002's exception", code)
	}
	if !strings.Contains(dash, fmt.Sprint(floodReports)) {
		t.Errorf("dashboard does not count S001's %d exceptions", floodReports)
	}
	if len(dash) > 1<<20 {
		t.Errorf("dashboard is %d bytes", len(dash))
	}
	t.Logf("API first page: %d exceptions, %d bytes; dashboard %d bytes", len(page.Exceptions), len(body), len(dash))
}

func storeFilter(id string) store.ExceptionFilter {
	return store.ExceptionFilter{Store: id, State: store.StateOpen}
}

// dbSize is the size of the hub's SQLite files (database and WAL).
func dbSize(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	for _, f := range []string{"hub.db", "hub.db-wal"} {
		if fi, err := os.Stat(filepath.Join(dir, f)); err == nil {
			n += fi.Size()
		}
	}
	return n
}
