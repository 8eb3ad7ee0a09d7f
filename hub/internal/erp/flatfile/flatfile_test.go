package flatfile

import (
	"context"
	"encoding/csv"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lanebridge/lanebridge/hub/internal/erp"
	"github.com/lanebridge/lanebridge/protocol"
)

func sale(store, receipt string, total int64) erp.Posting {
	r := protocol.Record{Kind: protocol.KindSale, Store: store, Terminal: "T1", Receipt: receipt, BusinessDate: "2026-11-26", Currency: "USD",
		Lines:     []protocol.Line{{SKU: "100001", Quantity: "2", UnitPrice: 129, Amount: 258}, {SKU: "100002", Quantity: "1", UnitPrice: 249, Amount: 249, Voided: true}},
		Discounts: []protocol.Discount{{Description: "10% off", Amount: 25}},
		Taxes:     []protocol.Tax{{Code: "T1", Rate: "8.25", Taxable: 233, Amount: 19}},
		Tenders:   []protocol.Tender{{Type: protocol.TenderCash, Amount: 252}},
		Total:     total,
	}
	return erp.Posting{Key: store + "|T1|2026-11-26|" + receipt + "|sale", Record: r}
}

func readRows(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := csv.NewReader(f).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func TestPostBatchFilesAndLedger(t *testing.T) {
	dir := t.TempDir()
	out, in, state := filepath.Join(dir, "out"), filepath.Join(dir, "in"), filepath.Join(dir, "state")
	c, err := Open(out, in, state)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ps := []erp.Posting{sale("S001", "1", 252), sale("S001", "2", 252), sale("S002", "1", 252)}
	refs, err := c.PostBatch(ctx, ps)
	if err != nil {
		t.Fatal(err)
	}
	if refs[0] != refs[1] || refs[0] == refs[2] || !strings.HasPrefix(refs[0], "LB_S001_2026-11-26_") {
		t.Fatalf("refs = %v: want one file per store-day", refs)
	}
	files, _ := filepath.Glob(filepath.Join(out, "*"))
	hidden, _ := filepath.Glob(filepath.Join(out, ".tmp-*"))
	if len(files) != 2 || len(hidden) != 0 {
		t.Fatalf("outbound = %v, temp files %v", files, hidden)
	}
	rows := readRows(t, filepath.Join(out, refs[0]))
	// header + per posting: 1 line (voided dropped), 1 discount, 1 tax, 1 tender
	if len(rows) != 1+2*4 || strings.Join(rows[0], ",") != strings.Join(Header, ",") {
		t.Fatalf("rows = %v", rows)
	}
	want := map[string]string{"line": "258", "discount": "-25", "tax": "19", "tender": "252"}
	for _, r := range rows[1:5] {
		if want[r[8]] != r[14] || r[18] != "252" {
			t.Errorf("row %v: amount %s, want %s", r, r[14], want[r[8]])
		}
	}
	// Posting again finds the ledger: no new file.
	again, err := c.Post(ctx, ps[0])
	if err != nil || again != refs[0] {
		t.Fatalf("Post again = %q, %v", again, err)
	}
	if files2, _ := filepath.Glob(filepath.Join(out, "*")); len(files2) != 2 {
		t.Fatalf("Post again wrote a file: %v", files2)
	}
	c.Close()

	// A crash between rename and ledger: the ledger lacks the key, Open recovers it from the file.
	if err := os.Truncate(filepath.Join(state, "sent.log"), 0); err != nil {
		t.Fatal(err)
	}
	c2, err := Open(out, in, state)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for _, p := range ps {
		if ref, ok, err := c2.Find(ctx, p.Key); err != nil || !ok || ref == "" {
			t.Fatalf("Find(%s) after recovery = %q, %v, %v", p.Key, ref, ok, err)
		}
	}
	if _, ok, _ := c2.Find(ctx, "nope"); ok {
		t.Fatal("Find(unknown) found")
	}
}

func TestPullInboundOnce(t *testing.T) {
	dir := t.TempDir()
	in := filepath.Join(dir, "in")
	c, err := Open(filepath.Join(dir, "out"), in, filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	write := func(name, body string) {
		if err := os.WriteFile(filepath.Join(in, name), []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("onhand_001.csv", "store,sku,on_hand\nS001,100001,10\nS001,100002,4.5\n")
	write("onhand_002.csv", "store,sku,on_hand\nS001,100001,12\nS002,100001,3\n")
	write("items_001.csv", "sku,description,price,tax_code,status\n100001,Milk 1L,129,T1,active\n100002,Bread,249,T1,\n")
	u, err := c.Pull(context.Background(), nil)
	if err != nil {
		t.Fatal(err)
	}
	if u.OnHand["S001"]["100001"] != "12" || len(u.OnHand["S001"]) != 1 || u.OnHand["S002"]["100001"] != "3" {
		t.Fatalf("OnHand = %v (later file replaces a store)", u.OnHand)
	}
	if len(u.Items) != 2 || u.Items[1].Status != protocol.ItemActive || u.Items[0].Price != 129 {
		t.Fatalf("Items = %+v", u.Items)
	}
	if err := u.Commit(); err != nil {
		t.Fatal(err)
	}
	u2, err := c.Pull(context.Background(), nil)
	if err != nil || len(u2.OnHand) != 0 || u2.Items != nil || u2.Commit != nil {
		t.Fatalf("second Pull = %+v, %v; want nothing (files processed)", u2, err)
	}
	if done, _ := filepath.Glob(filepath.Join(in, "processed", "*.csv")); len(done) != 3 {
		t.Fatalf("processed = %v", done)
	}
	write("onhand_bad.csv", "store,sku,on_hand\nS001,1,1.0.0\n")
	if _, err := c.Pull(context.Background(), nil); err == nil {
		t.Fatal("Pull(bad quantity) succeeded")
	}
}

// TestCrashBetweenLedgerAndRename: the ledger names a file whose rename never happened; Open
// retracts its keys (so the posting is written again), while a published file that the ERP has
// already consumed still counts as sent.
func TestCrashBetweenLedgerAndRename(t *testing.T) {
	dir := t.TempDir()
	out, state := filepath.Join(dir, "out"), filepath.Join(dir, "state")
	os.MkdirAll(out, 0o755)
	os.MkdirAll(state, 0o755)
	// A crash after the intent was logged but before the rename: temp copy present.
	os.WriteFile(filepath.Join(out, ".tmp-LB_S1_2026-11-26_x_aaaa.csv"), []byte("key\n"), 0o644)
	// A published file the ERP already took away: no temp copy, no final file.
	ledger := "S1|T1|2026-11-26|1|sale\tLB_S1_2026-11-26_x_aaaa.csv\nS1|T1|2026-11-26|2|sale\tLB_S1_2026-11-26_y_bbbb.csv\n"
	os.WriteFile(filepath.Join(state, "sent.log"), []byte(ledger), 0o644)
	c, err := Open(out, "", state)
	if err != nil {
		t.Fatal(err)
	}
	if _, found, _ := c.Find(context.Background(), "S1|T1|2026-11-26|1|sale"); found {
		t.Error("key of an unpublished file counts as sent: it would never be posted")
	}
	if _, found, _ := c.Find(context.Background(), "S1|T1|2026-11-26|2|sale"); !found {
		t.Error("key of a published (consumed) file is not sent: it would be posted twice")
	}
	if m, _ := filepath.Glob(filepath.Join(out, ".tmp-*")); len(m) != 0 {
		t.Errorf("temporary files left: %v", m)
	}
	c.Close()
	// The retraction is durable.
	c, err = Open(out, "", state)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if _, found, _ := c.Find(context.Background(), "S1|T1|2026-11-26|1|sale"); found {
		t.Error("retraction lost on reopen")
	}
}

// TestTornLedgerLine: the hub was SIGKILLed while appending the intent for a file (found by
// testharness/chaos TestChaosHubBrokerKill): the ledger ends in a line cut inside the file
// name, and the temporary copy was never renamed. Open must not count the key as sent (its
// sale would never reach the ERP), must post it again, and later appends start on a line of
// their own.
func TestTornLedgerLine(t *testing.T) {
	dir := t.TempDir()
	out, state := filepath.Join(dir, "out"), filepath.Join(dir, "state")
	os.MkdirAll(out, 0o755)
	os.MkdirAll(state, 0o755)
	os.WriteFile(filepath.Join(out, ".tmp-LB_S1_2026-11-26_20261201T182450.603490Z_1f21504e.csv"), []byte("key\n"), 0o644)
	ledger := "S1|T1|2026-11-26|1|sale\tLB_S1_2026-11-26_x_aaaa.csv\nS1|T1|2026-11-26|2|sale\tLB_S1_2026-11-26_20261201T182450.603490Z"
	lp := filepath.Join(state, "sent.log")
	os.WriteFile(lp, []byte(ledger), 0o644)
	os.WriteFile(filepath.Join(out, "LB_S1_2026-11-26_x_aaaa.csv"), []byte("key\nS1|T1|2026-11-26|1|sale\n"), 0o644)
	c, err := Open(out, "", state)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, found, _ := c.Find(ctx, "S1|T1|2026-11-26|2|sale"); found {
		t.Fatal("the key of a torn ledger line counts as sent: its sale would never be posted")
	}
	if _, found, _ := c.Find(ctx, "S1|T1|2026-11-26|1|sale"); !found {
		t.Fatal("the complete line before the torn one was lost")
	}
	if _, err := c.Post(ctx, sale("S1", "2", 252)); err != nil {
		t.Fatal(err)
	}
	c.Close()
	b, _ := os.ReadFile(lp)
	for i, line := range strings.Split(strings.TrimSuffix(string(b), "\n"), "\n") {
		k, f, ok := strings.Cut(line, "\t")
		if !ok || !strings.HasPrefix(k, "S1|") || (f != "" && !strings.HasSuffix(f, ".csv")) {
			t.Errorf("ledger line %d malformed after recovery: %q", i+1, line)
		}
	}
	c, err = Open(out, "", state)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ref, found, _ := c.Find(ctx, "S1|T1|2026-11-26|2|sale")
	if _, err := os.Stat(filepath.Join(out, ref)); !found || err != nil {
		t.Fatalf("the re-posted key is not in a published file: %q %v %v", ref, found, err)
	}
}
