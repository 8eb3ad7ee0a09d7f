package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// TestCloseReplaysDeletedReceipts removes a range of receipts from the hub's database behind
// its back, runs the close on demand and checks that the replay command brought them back from
// the agent's spool: no missing_receipts exception, no gap left.
func TestCloseReplaysDeletedReceipts(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	cfgPath := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfgPath, []byte("close:\n  replay_wait: 30s\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHub(t, dir, "--config", cfgPath)
	const store = "S003"
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.mqtt), map[string]string{"T1": journal})
	simP := runSim(t, dir, journal, "T1", 40, 200, 7)
	ag := startAgent(t, dir, store, cfg)
	<-simP.done
	h.waitRecords(t, store, 40, 60*time.Second)

	db, err := sql.Open("sqlite", filepath.Join(dir, "hub", "hub.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	res, err := db.Exec(`DELETE FROM records WHERE store = ? AND terminal = 'T1' AND CAST(receipt AS INTEGER) BETWEEN 10 AND 15`, store)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != 6 {
		t.Fatalf("deleted %d records, want 6", n)
	}
	db.Close()
	day := func() string {
		b, err := h.get("/api/v1/stores/" + store + "/days/2026-11-26")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if !strings.Contains(day(), "10,") {
		t.Fatalf("day after delete shows no gap: %s", day())
	}

	resp, err := http.Post("http://"+h.http+"/api/v1/stores/"+store+"/days/2026-11-26/close", "application/json", nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("close: %s: %s", resp.Status, body)
	}
	var result struct {
		State   string                `json:"state"`
		Gaps    map[string][][2]int64 `json:"gaps"`
		Replays []string              `json:"replay_commands"`
		Issues  []struct{ Reason, Detail string }
	}
	if err := json.Unmarshal(body, &result); err != nil {
		t.Fatal(err)
	}
	if len(result.Replays) != 1 {
		t.Fatalf("close sent %d replay commands, want 1: %s", len(result.Replays), body)
	}
	for _, is := range result.Issues {
		if is.Reason == "missing_receipts" {
			t.Fatalf("missing_receipts left after replay: %s", is.Detail)
		}
	}
	if len(result.Gaps) != 0 {
		t.Fatalf("gaps after replay: %v", result.Gaps)
	}
	b, err := h.get("/api/v1/exceptions?reason=missing_receipts")
	if err != nil || strings.Contains(string(b), `"id"`) {
		t.Fatalf("missing_receipts exceptions: %s, %v", b, err)
	}
	got, err := h.get("/api/v1/stores/" + store + "/days/2026-11-26/close")
	if err != nil || !strings.Contains(string(got), `"business_date": "2026-11-26"`) {
		t.Fatalf("GET close = %s, %v", got, err)
	}
	t.Logf("close after replay: state %s, %d issues (%s)", result.State, len(result.Issues), fmt.Sprint(result.Issues))
	ag.stop(t)
	checkLogs(t, dir)
}
