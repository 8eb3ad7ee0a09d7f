package app

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/agent/internal/config"
	"github.com/lanebridge/lanebridge/agent/internal/inventory"
	"github.com/lanebridge/lanebridge/agent/internal/spool"
	"github.com/lanebridge/lanebridge/protocol"
)

// inventoryFixture writes a config, a spool with a sale of 2 A and a return of 0.5 A, and an
// item master at version 4 whose figures account for none of them.
func inventoryFixture(t *testing.T) (cfgPath string, cfg *config.Config) {
	t.Helper()
	dir := t.TempDir()
	cfgPath = filepath.Join(dir, "agent.yaml")
	y := fmt.Sprintf("store: S1\ndata_dir: %s\nlisten: \"off\"\nhub:\n  broker: tcp://127.0.0.1:1\n%s", filepath.Join(dir, "data"), oneTerminal(dir))
	if err := os.WriteFile(cfgPath, []byte(y), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := config.Load(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(cfg.DataDir, 0o750)
	sp, err := spool.Open(spoolPath(cfg), spool.Options{Store: "S1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	recs := []protocol.Record{
		{Kind: protocol.KindSale, Terminal: "T1", BusinessDate: "2026-11-27", Lines: []protocol.Line{{SKU: "A", Quantity: "2"}}},
		{Kind: protocol.KindReturn, Terminal: "T1", BusinessDate: "2026-11-27", Lines: []protocol.Line{{SKU: "A", Quantity: "-0.5"}}},
	}
	if _, err := sp.Commit(context.Background(), spool.Capture{Source: "T1", Records: recs}); err != nil {
		t.Fatal(err)
	}
	db, err := inventory.Open(inventoryPath(cfg), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, _, err := db.Apply(&protocol.Inventory{V: 1, Store: "S1", Kind: protocol.InventorySnapshot, Version: 4, Epoch: sp.Epoch(),
		Items: []protocol.Item{{SKU: "A", Description: "Apples", Price: 129, OnHand: "10", Available: "10"}}}); err != nil {
		t.Fatal(err)
	}
	return cfgPath, cfg
}

func TestInventoryCommandOffline(t *testing.T) {
	cfgPath, _ := inventoryFixture(t)
	tests := []struct {
		args    []string
		code    int
		want    string
		wantErr string
	}{
		{[]string{"inventory", "A", "--config", cfgPath}, 0, "available:    8.5 (hub 10 minus 1.5", ""},
		{[]string{"inventory", "--config", cfgPath, "A", "--json"}, 0, `"available": "8.5"`, ""},
		{[]string{"inventory", "ZZ", "--config", cfgPath}, 1, "", "unknown sku"},
		{[]string{"inventory", "--config", cfgPath}, 1, "", "usage"},
	}
	for _, tt := range tests {
		var out, errb bytes.Buffer
		code := Main(tt.args, &out, &errb)
		if code != tt.code || !strings.Contains(out.String(), tt.want) || !strings.Contains(errb.String(), tt.wantErr) {
			t.Errorf("Main(%q) = %d\nstdout: %s\nstderr: %s\nwant %d, stdout ~ %q, stderr ~ %q", tt.args, code, out.String(), errb.String(), tt.code, tt.want, tt.wantErr)
		}
	}
}

func TestInventoryEndpoint(t *testing.T) {
	_, cfg := inventoryFixture(t)
	sp, err := spool.Open(spoolPath(cfg), spool.Options{Store: "S1"})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	a := &agent{cfg: cfg, sp: sp}
	closeInv, err := a.openDownlink()
	if err != nil {
		t.Fatal(err)
	}
	defer closeInv()
	srv := httptest.NewServer(a.handler())
	defer srv.Close()
	for path, want := range map[string]int{"/inventory/A": 200, "/inventory/ZZ": 404} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		var v inventory.View
		json.NewDecoder(resp.Body).Decode(&v)
		resp.Body.Close()
		if resp.StatusCode != want || (want == 200 && (v.Available != "8.5" || v.Version != 4 || v.Description != "Apples")) {
			t.Errorf("GET %s: %d %+v; want %d", path, resp.StatusCode, v, want)
		}
	}
	if st := a.status(); st.InventoryVersion != 4 {
		t.Errorf("status inventory_version = %d, want 4", st.InventoryVersion)
	}
}

// The status carries the spool's use and limit, for the hub's spool_used alert.
func TestStatusReportsSpoolUse(t *testing.T) {
	_, cfg := inventoryFixture(t)
	sp, err := spool.Open(spoolPath(cfg), spool.Options{Store: "S1", MaxSize: 4 << 20})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Close()
	st := (&agent{cfg: cfg, sp: sp}).status()
	if st.SpoolMaxBytes != 4<<20 || st.SpoolUsedBytes <= 0 || st.SpoolUsedBytes > st.SpoolMaxBytes {
		t.Fatalf("status spool_used_bytes %d, spool_max_bytes %d; want the spool's use of 4 MiB", st.SpoolUsedBytes, st.SpoolMaxBytes)
	}
}
