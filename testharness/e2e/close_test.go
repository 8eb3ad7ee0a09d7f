package e2e

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	_ "modernc.org/sqlite"
)

// closeHub starts a hub whose close waits up to replayWait ("30s") for the replays it asks for.
func closeHub(t *testing.T, replayWait string) (string, *hub) {
	t.Helper()
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	cfgPath := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfgPath, []byte("close:\n  replay_wait: "+replayWait+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return dir, startHub(t, dir, "--config", cfgPath)
}

// deleteReceipts removes terminal T1's receipts from..to of store from the hub's database
// behind its back.
func deleteReceipts(t *testing.T, dir, store string, from, to int) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "hub", "hub.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	res, err := db.Exec(`DELETE FROM records WHERE store = ? AND terminal = 'T1' AND CAST(receipt AS INTEGER) BETWEEN ? AND ?`, store, from, to)
	if err != nil {
		t.Fatal(err)
	}
	if n, _ := res.RowsAffected(); n != int64(to-from+1) {
		t.Fatalf("deleted %d records, want %d", n, to-from+1)
	}
}

// TestCloseReplaysDeletedReceipts removes a range of receipts from the hub's database behind
// its back, runs the close on demand and checks that the replay command brought them back from
// the agent's spool: no missing_receipts exception, no gap left.
func TestCloseReplaysDeletedReceipts(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir, h := closeHub(t, "30s")
	const store = "S003"
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": journal})
	simP := runSim(t, dir, journal, "T1", 40, 200, 7)
	ag := startAgent(t, dir, store, cfg)
	<-simP.Done
	h.WaitRecords(t, store, 40, 60*time.Second)

	deleteReceipts(t, dir, store, 10, 15)
	day := func() string {
		b, err := h.Get("/api/v1/stores/" + store + "/days/2026-11-26")
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	if !strings.Contains(day(), "10,") {
		t.Fatalf("day after delete shows no gap: %s", day())
	}

	body, err := h.Post("/api/v1/stores/"+store+"/days/2026-11-26/close", nil)
	if err != nil {
		t.Fatalf("close: %v", err)
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
	b, err := h.Get("/api/v1/exceptions?reason=missing_receipts")
	if err != nil || strings.Contains(string(b), `"id"`) {
		t.Fatalf("missing_receipts exceptions: %s, %v", b, err)
	}
	got, err := h.Get("/api/v1/stores/" + store + "/days/2026-11-26/close")
	if err != nil || !strings.Contains(string(got), `"business_date": "2026-11-26"`) {
		t.Fatalf("GET close = %s, %v", got, err)
	}
	t.Logf("close after replay: state %s, %d issues (%s)", result.State, len(result.Issues), fmt.Sprint(result.Issues))
	ag.Stop(t)
	checkLogs(t, dir)
}

// TestCloseMissingReceiptsAgentLacksThem captures a day whose receipts 10..15 the terminal never
// emitted (so the agent's journal lacks them too): the close asks the agent to replay the range,
// the agent finds nothing, and a missing_receipts exception names the range.
func TestCloseMissingReceiptsAgentLacksThem(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir, h := closeHub(t, "20s")
	const store = "S004"
	full := filepath.Join(dir, "full.jsonl")
	simP := start(t, "lanebridge-sim", filepath.Join(dir, "sim.log"), "jsonl", "--out", full, "--terminal", "T1",
		"--date", "2026-11-26", "--count", "30", "--rate", "0", "--seed", "8")
	<-simP.Done
	b, err := os.ReadFile(full)
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		var r struct {
			Receipt string `json:"receipt"`
		}
		if err := json.Unmarshal([]byte(l), &r); err != nil {
			t.Fatal(err)
		}
		switch r.Receipt {
		case "10", "11", "12", "13", "14", "15":
			continue // never emitted by the terminal
		}
		kept = append(kept, l)
	}
	if len(kept) != 24 {
		t.Fatalf("kept %d of 30 records, want 24", len(kept))
	}
	journal := filepath.Join(dir, "T1.jsonl")
	if err := os.WriteFile(journal, []byte(strings.Join(kept, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": journal})
	ag := startAgent(t, dir, store, cfg)
	h.WaitRecords(t, store, 24, 60*time.Second)

	body, err := h.Post("/api/v1/stores/"+store+"/days/2026-11-26/close", nil)
	if err != nil {
		t.Fatalf("close: %v", err)
	}
	var result struct {
		State   string                `json:"state"`
		Gaps    map[string][][2]int64 `json:"gaps"`
		Replays []string              `json:"replay_commands"`
		Issues  []struct{ Reason, Key, Detail string }
	}
	if err := json.Unmarshal(body, &result); err != nil {
		t.Fatal(err)
	}
	if len(result.Replays) != 1 {
		t.Fatalf("close sent %d replay commands, want 1: %s", len(result.Replays), body)
	}
	if g := result.Gaps["T1"]; len(g) != 1 || g[0] != [2]int64{10, 15} {
		t.Fatalf("gaps after the replay = %v, want T1 [[10 15]]", result.Gaps)
	}
	var missing []string
	for _, is := range result.Issues {
		if is.Reason == "missing_receipts" {
			missing = append(missing, is.Detail)
		}
		if is.Reason == "posting_missing" {
			t.Errorf("posting_missing raised by a hub without an ERP: %s", is.Detail)
		}
	}
	if len(missing) != 1 || !strings.Contains(missing[0], "10..15") || result.State != "exceptions" {
		t.Fatalf("missing_receipts issues = %q (state %s), want one naming 10..15", missing, result.State)
	}
	ex, err := h.Get("/api/v1/exceptions?reason=missing_receipts&store=" + store)
	if err != nil || !strings.Contains(string(ex), "10..15") || !strings.Contains(string(ex), `"state": "open"`) {
		t.Fatalf("missing_receipts exceptions: %s, %v", ex, err)
	}
	t.Logf("close: state %s, missing_receipts: %s", result.State, missing[0])
	ag.Stop(t)
	checkLogs(t, dir)
}
