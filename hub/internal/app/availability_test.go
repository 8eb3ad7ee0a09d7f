package app

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/auth"
	"github.com/lanebridge/lanebridge/hub/internal/availability"
	"github.com/lanebridge/lanebridge/hub/internal/store"
	"github.com/lanebridge/lanebridge/protocol"
)

// TestHubServesAvailability runs a hub with a flat-file ERP and two channels: the pulled stock
// shows in GET /api/v1/availability, an applied sale lowers it and signals Changed, and a
// reservation through the API lowers the other channel's figure.
func TestHubServesAvailability(t *testing.T) {
	cfg := testConfig(t)
	in, out := t.TempDir(), t.TempDir()
	cfg.ERP.Kind = "flatfile"
	cfg.ERP.Flatfile.Inbound, cfg.ERP.Flatfile.Outbound = in, out
	cfg.Inventory.Interval = time.Second
	cfg.Availability.Channels = []availability.ChannelConfig{{Name: "webshop", Stores: []string{"*"}}, {Name: "market", Stores: []string{"S001"}}}
	if err := cfg.validate(); err != nil {
		t.Fatal(err)
	}
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(in, name), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write("items_1.csv", "sku,description,price,tax_code,status\nX,Mug,1299,STD,active\n")
	write("onhand_1.csv", "store,sku,on_hand\nS001,X,10\nS002,X,5\n")
	var changed <-chan struct{}
	s := startHub(t, cfg, func(h *hub) {
		ctx := context.Background()
		for _, id := range []string{"S001", "S002"} {
			if err := h.st.AddStore(ctx, id, "x"); err != nil {
				t.Fatal(err)
			}
		}
		changed = h.av.Changed()
	})
	tok := auth.NewToken()
	if err := s.h.st.AddToken(context.Background(), store.APIToken{Name: "shop", Role: "operator", Hash: auth.HashSecret(tok)}); err != nil {
		t.Fatal(err)
	}
	call := func(method, path, body string) (int, string) {
		req, _ := http.NewRequest(method, "http://"+s.h.httpAddr+path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+tok)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	want := func(what string, parts ...string) {
		eventually(t, 10*time.Second, what, func() error {
			code, body := call("GET", "/api/v1/availability?sku=X", "")
			for _, p := range parts {
				if code != 200 || !strings.Contains(strings.Join(strings.Fields(body), ""), p) {
					return fmt.Errorf("%d %s lacks %s", code, body, p)
				}
			}
			return nil
		})
	}
	want("the pulled stock", `"available":"15"`, `{"channel":"webshop","available":"15"}`, `{"channel":"market","available":"10"}`)
	for len(changed) > 0 {
		<-changed
	}
	b := testBatch("S001", 1, 1)
	b.Records[0].Lines = []protocol.Line{{SKU: "X", Quantity: "2", UnitPrice: 50, Amount: 100}}
	b.Records[0].Seal()
	if _, err := s.h.st.ApplyBatch(context.Background(), "S001", b.Epoch, b.Records); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(5 * time.Second):
		t.Fatal("no Changed signal after an applied sale")
	}
	want("the sale", `"available":"13"`, `{"channel":"market","available":"8"}`)
	if code, body := call("POST", "/api/v1/reservations", `{"channel":"webshop","order_id":"W-1","lines":[{"sku":"X","quantity":"8","store":"S001"}]}`); code != 201 {
		t.Fatalf("reserve: %d %s", code, body)
	}
	want("the reservation", `{"channel":"webshop","available":"5"}`, `{"channel":"market","available":"0"}`)
}
