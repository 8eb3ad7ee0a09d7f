package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/testharness/sim"
)

// TestQuarantinedInputReachesHub: lines that do not parse are kept by the agent (card data
// masked), surface at the hub as exceptions, and capture goes on.
func TestQuarantinedInputReachesHub(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	h := startHub(t, dir)
	const store = "S020"
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT), map[string]string{"T1": journal})
	g := sim.New("T1", "2026-11-26", 11, nil, 1)
	var lines []string
	for range 3 {
		b, _ := json.Marshal(g.Next())
		lines = append(lines, string(b))
	}
	pan := "4111 1111 1111 1111"
	lines = append(lines[:1], append([]string{"SALE 12.00 VISA " + pan + " EXP 12/29", `{"kind":"refund","terminal":"T1","business_date":"2026-11-26"}`}, lines[1:]...)...)
	// A burst larger than one status page (100): every one must still reach the hub.
	const burst = 250
	for i := range burst {
		lines = append(lines, fmt.Sprintf("line noise %d", i))
	}
	if err := os.WriteFile(journal, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ag := startAgent(t, dir, store, cfg)
	h.WaitRecords(t, store, 3, 30*time.Second)
	var exc []struct {
		Reason, Detail, State string
	}
	eventually(t, 60*time.Second, "every quarantine exception", func() error {
		b, err := h.Get("/api/v1/exceptions?store=" + store + "&reason=capture_quarantined&limit=1000")
		if err != nil {
			return err
		}
		var resp struct {
			Exceptions []struct{ Reason, Detail, State string } `json:"exceptions"`
		}
		if err := json.Unmarshal(b, &resp); err != nil {
			return err
		}
		exc = resp.Exceptions
		if len(exc) != 2+burst {
			return fmt.Errorf("%d exceptions, want %d", len(exc), 2+burst)
		}
		return nil
	})
	all := fmt.Sprint(exc)
	if strings.Contains(all, pan) || strings.Contains(all, "4111111111111111") {
		t.Fatalf("exception shows a full card number: %s", all)
	}
	if !strings.Contains(all, "4111 11** **** 1111") || !strings.Contains(all, `unknown kind "refund"`) {
		t.Fatalf("exceptions do not explain what was wrong: %s", all)
	}
	ag.Stop(t)
	// Nothing the agent wrote holds the card number.
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil || info.IsDir() || p == journal {
			return nil
		}
		b, _ := os.ReadFile(p)
		if strings.Contains(string(b), pan) || strings.Contains(string(b), "4111111111111111") {
			t.Errorf("%s holds the full card number", p)
		}
		return nil
	})
	checkLogs(t, dir)
}

// TestQuarantinedNULOnPostgres: a hub on PostgreSQL gets a quarantined receipt whose barcode
// payload holds NUL and bytes that are not UTF-8. It stores the exception (NUL as ␀) and the
// agent's status, acknowledges the quarantine, and the records after it arrive. PostgreSQL
// refused such a status before, and the store's quarantine reports stalled.
func TestQuarantinedNULOnPostgres(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	pg := os.Getenv("LANEBRIDGE_TEST_PG_URL")
	if pg == "" {
		pg = "postgres://postgres@127.0.0.1:5432/test?sslmode=disable"
	}
	schema := fmt.Sprintf("lbe2e_nul_%x", time.Now().UnixNano()&0xffffffff)
	hubCfg := writeHubConfig(t, dir, "hub.yaml", fmt.Sprintf("store:\n  postgres_url: %s&search_path=%s\n", pg, schema))
	t.Cleanup(func() { dropSchema(pg, schema) })
	h := startHub(t, dir, "--config", hubCfg)
	const store = "S021"
	journal := filepath.Join(dir, "T1.jsonl")
	cfg := agentConfig(t, dir, store, enroll(t, dir, store, "tcp://"+h.MQTT, "--config", hubCfg), map[string]string{"T1": journal})
	g := sim.New("T1", "2026-11-26", 12, nil, 1)
	var lines []string
	for i := range 4 {
		if i == 2 {
			lines = append(lines, "SALE 1001 BARCODE \x1dk\x49\x00\x00\x1d4902\xff\xfe END")
		}
		b, _ := json.Marshal(g.Next())
		lines = append(lines, string(b))
	}
	if err := os.WriteFile(journal, []byte(strings.Join(lines, "\n")+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ag := startAgent(t, dir, store, cfg)
	h.WaitRecords(t, store, 4, 30*time.Second)
	eventually(t, 30*time.Second, "the quarantine exception", func() error {
		b, err := h.Get("/api/v1/exceptions?store=" + store + "&reason=capture_quarantined")
		if err != nil {
			return err
		}
		if !strings.Contains(string(b), "BARCODE") || !strings.Contains(string(b), "\u2400") {
			return fmt.Errorf("exceptions: %s", b)
		}
		return nil
	})
	eventually(t, 30*time.Second, "the hub's acknowledgement of the quarantine", func() error {
		si, err := h.Store(store)
		if err != nil {
			return err
		}
		if si.Status == nil || len(si.Status.Quarantine) != 0 || si.Status.QuarantineCount != 1 {
			return fmt.Errorf("agent status %+v: want one quarantined capture, none left to report", si.Status)
		}
		return nil
	})
	ag.Stop(t)
	checkLogs(t, dir)
}
