package e2e

import (
	"bytes"
	"encoding/base64"
	"encoding/csv"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// The ERP scenario: two stores, a small simulated day (sales, returns, voids, no-sales,
// paid-outs), the hub posting to the ERP and SIGKILLed twice mid-posting. Afterwards the ERP
// holds exactly one posting per sale and return, with the captured net totals, and (Tryton)
// stock moved by exactly the quantities sold and returned.

const erpRecordsPerStore = 30

var erpStores = []string{"S001", "S002"}

// erpDay runs the day against a hub configured by hubYAML (erp section) and returns the
// hub, and every record per store once all postings are done.
func erpDay(t *testing.T, dir, hubYAML, terminal string) (*hub, map[string][]protocol.Record) {
	t.Helper()
	cfgPath := filepath.Join(dir, "hub.yaml")
	if err := os.WriteFile(cfgPath, []byte(hubYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	h := startHub(t, dir, "--config", cfgPath)
	var agents []*proc
	for i, st := range erpStores {
		journal := filepath.Join(dir, st+"-"+terminal+".jsonl")
		cfg := agentConfig(t, dir, st, enroll(t, dir, st, "tcp://"+h.MQTT), map[string]string{terminal: journal})
		runSim(t, dir, journal, terminal, erpRecordsPerStore, 40, 100+i)
		agents = append(agents, startAgent(t, dir, st, cfg))
	}
	// Kill the hub twice while it is posting.
	for i := range 2 {
		eventually(t, 90*time.Second, "some postings done", func() error {
			n, err := h.countPostings(store0(), "done")
			if err != nil {
				return err
			}
			if n < 3*(i+1) {
				return fmt.Errorf("%d done", n)
			}
			return nil
		})
		h.P.Kill()
		t.Logf("hub SIGKILLed mid-posting (%d/2)", i+1)
		time.Sleep(500 * time.Millisecond)
		h.Start(t)
	}
	recs := map[string][]protocol.Record{}
	for _, st := range erpStores {
		h.WaitRecords(t, st, erpRecordsPerStore, 90*time.Second)
		recs[st] = h.AllRecords(t, st)
	}
	for _, st := range erpStores {
		want := 0
		for _, r := range recs[st] {
			if r.Kind == protocol.KindSale || r.Kind == protocol.KindReturn {
				want++
			}
		}
		eventually(t, 240*time.Second, "all postings of "+st+" done", func() error {
			done, err := h.countPostings(st, "done")
			if err != nil {
				return err
			}
			all, err := h.countPostings(st, "")
			if err != nil {
				return err
			}
			if done != want || all != want {
				return fmt.Errorf("%d done of %d postings, want %d", done, all, want)
			}
			return nil
		})
	}
	b, err := h.Get("/api/v1/exceptions")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), "erp_rejected") || strings.Contains(string(b), "duplicate_receipt") {
		t.Fatalf("exceptions after the day: %s", b)
	}
	for _, a := range agents {
		a.Stop(t)
	}
	return h, recs
}

func store0() string { return erpStores[0] }

func (h *hub) countPostings(store, state string) (int, error) {
	b, err := h.Get("/api/v1/postings?limit=10000&store=" + store + "&state=" + state)
	if err != nil {
		return 0, err
	}
	var v struct {
		Postings []struct {
			Key string `json:"key"`
		} `json:"postings"`
	}
	if err := json.Unmarshal(b, &v); err != nil {
		return 0, err
	}
	return len(v.Postings), nil
}

func postingKey(r protocol.Record) string {
	return strings.Join([]string{r.Store, r.Terminal, r.BusinessDate, r.Receipt, string(r.Kind)}, "|")
}

// netOf is what the ERP should hold for a record: non-voided line amounts minus discounts.
func netOf(r protocol.Record) int64 {
	var n int64
	for _, l := range r.Lines {
		if !l.Voided {
			n += l.Amount
		}
	}
	for _, d := range r.Discounts {
		n -= d.Amount
	}
	return n
}

func TestERPTrytonExactlyOnceUnderHubKill(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	url := os.Getenv("LANEBRIDGE_TRYTON_URL")
	if url == "" {
		if os.Getenv("LANEBRIDGE_TRYTON_REQUIRED") == "1" {
			t.Fatal("LANEBRIDGE_TRYTON_REQUIRED=1 but LANEBRIDGE_TRYTON_URL is unset")
		}
		t.Skip("LANEBRIDGE_TRYTON_URL unset; run testharness/tryton/setup.sh and source its env file")
	}
	db, user, pw := envOr("LANEBRIDGE_TRYTON_DB", "lanebridge"), envOr("LANEBRIDGE_TRYTON_USER", "admin"), envOr("LANEBRIDGE_TRYTON_PASSWORD", "lanebridge")
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	pwFile := filepath.Join(dir, "tryton.password")
	if err := os.WriteFile(pwFile, []byte(pw+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tr := dialTrytonRPC(t, url, db, user, pw)
	// A terminal id unique to this run keeps its business keys apart from earlier runs' sales.
	terminal := fmt.Sprintf("E%d", time.Now().Unix()%1_000_000_000)
	skus := []string{"100001", "100002", "100003", "100004", "100005", "100006", "100007", "100008", "100009", "100010"}
	before := map[string]map[string]float64{}
	for _, st := range erpStores {
		before[st] = tr.onHand(t, st, skus)
	}
	h, recs := erpDay(t, dir, fmt.Sprintf(`erp:
  kind: tryton
  tryton:
    url: %s
    db: %s
    user: %s
    password_file: %s
`, url, db, user, pwFile), terminal)

	sales := tr.sales(t, "%|"+terminal+"|%")
	byKey := map[string][]trytonSale{}
	for _, s := range sales {
		byKey[s.Reference] = append(byKey[s.Reference], s)
	}
	posted := 0
	for _, st := range erpStores {
		var wantNet, gotNet int64
		moved := map[string]float64{}
		for _, r := range recs[st] {
			if r.Kind != protocol.KindSale && r.Kind != protocol.KindReturn {
				if _, ok := byKey[postingKey(r)]; ok {
					t.Errorf("%s %s receipt %s was posted", st, r.Kind, r.Receipt)
				}
				continue
			}
			posted++
			got := byKey[postingKey(r)]
			if len(got) != 1 {
				t.Errorf("Tryton has %d sales for %s, want exactly 1", len(got), postingKey(r))
				continue
			}
			if got[0].State != "done" {
				t.Errorf("sale %s is %s, want done", postingKey(r), got[0].State)
			}
			wantNet += netOf(r)
			gotNet += got[0].total(t)
			for _, l := range r.Lines {
				if !l.Voided {
					q, _ := strconv.ParseFloat(l.Quantity, 64)
					moved[l.SKU] += q
				}
			}
		}
		if gotNet != wantNet {
			t.Errorf("store %s: Tryton sales total %d, captured net %d", st, gotNet, wantNet)
		}
		after := tr.onHand(t, st, skus)
		for _, sku := range skus {
			if d := before[st][sku] - after[sku]; d != moved[sku] {
				t.Errorf("store %s sku %s: stock moved by %v, captured quantity %v", st, sku, d, moved[sku])
			}
		}
		t.Logf("store %s: %d records, net %d posted and equal; stock moved as captured", st, len(recs[st]), gotNet)
	}
	if len(sales) != posted {
		t.Errorf("Tryton has %d sales for terminal %s, want %d (one per sale and return)", len(sales), terminal, posted)
	}
	// The agents end with the right available quantities: Tryton's on-hand, every sale posted.
	checkAgentsAvailable(t, h, dir, erpStores, skus, func(st string) map[string]float64 { return tr.onHand(t, st, skus) })
	checkLogs(t, dir)
	h.P.Stop(t)
}

func TestERPFlatFileExactlyOnceUnderHubKill(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end")
	}
	dir := t.TempDir()
	dumpOnFailure(t, dir)
	out := filepath.Join(dir, "outbound")
	// A small rate makes many files and keeps posting going while the hub is killed.
	h, recs := erpDay(t, dir, fmt.Sprintf(`erp:
  kind: flatfile
  rate: 5
  flatfile:
    outbound: %s
    inbound: %s
`, out, filepath.Join(dir, "inbound")), "T1")
	files, err := filepath.Glob(filepath.Join(out, "*"))
	if err != nil {
		t.Fatal(err)
	}
	type doc struct {
		file   string
		files  int
		amount int64 // line + discount rows
		tender int64
		total  string
	}
	docs := map[string]*doc{}
	for _, f := range files {
		if strings.HasPrefix(filepath.Base(f), ".") || !strings.HasSuffix(f, ".csv") {
			t.Errorf("unexpected file in outbound: %s", f)
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		rows, err := csv.NewReader(bytes.NewReader(b)).ReadAll()
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		seenHere := map[string]bool{}
		for _, r := range rows[1:] {
			d := docs[r[0]]
			if d == nil {
				d = &doc{file: f}
				docs[r[0]] = d
			}
			if !seenHere[r[0]] {
				seenHere[r[0]] = true
				d.files++
			}
			amt, _ := strconv.ParseInt(r[14], 10, 64)
			switch r[8] {
			case "line", "discount":
				d.amount += amt
			case "tender":
				d.tender += amt
			}
			d.total = r[18]
		}
	}
	want := 0
	for _, st := range erpStores {
		for _, r := range recs[st] {
			d := docs[postingKey(r)]
			if r.Kind != protocol.KindSale && r.Kind != protocol.KindReturn {
				if d != nil {
					t.Errorf("%s %s was written to %s", postingKey(r), r.Kind, d.file)
				}
				continue
			}
			want++
			switch {
			case d == nil:
				t.Errorf("%s is in no posting file", postingKey(r))
			case d.files != 1:
				t.Errorf("%s is in %d files, want exactly 1", postingKey(r), d.files)
			case d.amount != netOf(r) || d.total != strconv.FormatInt(r.Total, 10) || d.tender-r.Change != r.Total:
				t.Errorf("%s: file amounts %d (tenders %d, total %s), record net %d total %d change %d", postingKey(r), d.amount, d.tender, d.total, netOf(r), r.Total, r.Change)
			}
		}
	}
	if len(docs) != want {
		t.Errorf("posting files hold %d transactions, want %d", len(docs), want)
	}
	t.Logf("%d transactions in %d posting files, each exactly once", len(docs), len(files))
	checkLogs(t, dir)
	h.P.Stop(t)
}

func envOr(k, def string) string {
	if v := os.Getenv(k); v != "" {
		return v
	}
	return def
}

// trytonRPC is a minimal Tryton JSON-RPC client for checking what the hub posted (the hub's
// own client is internal to hub/).
type trytonRPC struct {
	url, auth string
	ctx       map[string]any
}

func (c *trytonRPC) call(t *testing.T, method string, out any, params ...any) {
	t.Helper()
	if c.ctx != nil {
		params = append(params, c.ctx)
	}
	body, _ := json.Marshal(map[string]any{"id": 1, "method": method, "params": params})
	req, _ := http.NewRequest(http.MethodPost, c.url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if c.auth != "" {
		req.Header.Set("Authorization", c.auth)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("tryton %s: %v", method, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var r struct {
		Result json.RawMessage `json:"result"`
		Error  json.RawMessage `json:"error"`
	}
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatalf("tryton %s: HTTP %d: %s", method, resp.StatusCode, b)
	}
	if len(r.Error) > 0 && string(r.Error) != "null" {
		t.Fatalf("tryton %s: %s", method, r.Error)
	}
	if out != nil {
		if err := json.Unmarshal(r.Result, out); err != nil {
			t.Fatalf("tryton %s: decode %s: %v", method, r.Result, err)
		}
	}
}

func dialTrytonRPC(t *testing.T, base, db, user, pw string) *trytonRPC {
	c := &trytonRPC{url: strings.TrimRight(base, "/") + "/" + db + "/"}
	var login []json.RawMessage
	c.call(t, "common.db.login", &login, user, map[string]any{"password": pw}, "en")
	if len(login) != 2 {
		t.Fatalf("tryton login: %v", login)
	}
	var uid int64
	var session string
	json.Unmarshal(login[0], &uid)
	json.Unmarshal(login[1], &session)
	c.auth = "Session " + base64.StdEncoding.EncodeToString([]byte(fmt.Sprintf("%s:%d:%s", user, uid, session)))
	var prefs map[string]any
	c.call(t, "model.res.user.get_preferences", &prefs, true, map[string]any{})
	c.ctx = prefs
	return c
}

type trytonSale struct {
	Reference string `json:"reference"`
	State     string `json:"state"`
	Total     struct {
		Decimal string `json:"decimal"`
	} `json:"total_amount"`
}

func (s trytonSale) total(t *testing.T) int64 {
	f, err := strconv.ParseFloat(s.Total.Decimal, 64)
	if err != nil {
		t.Fatalf("sale %s total %q: %v", s.Reference, s.Total.Decimal, err)
	}
	if f < 0 {
		return int64(f*100 - 0.5)
	}
	return int64(f*100 + 0.5)
}

// sales returns every sale.sale whose reference matches the LIKE pattern, cancelled included.
func (c *trytonRPC) sales(t *testing.T, like string) []trytonSale {
	var out []trytonSale
	c.call(t, "model.sale.sale.search_read", &out, []any{[]any{"reference", "like", like}}, 0, nil, nil,
		[]string{"reference", "state", "total_amount"})
	return out
}

// onHand returns the quantity of skus in store's warehouse today.
func (c *trytonRPC) onHand(t *testing.T, store string, skus []string) map[string]float64 {
	var wh []int64
	c.call(t, "model.stock.location.search", &wh, []any{[]any{"type", "=", "warehouse"}, []any{"code", "=", store}}, 0, 2, nil)
	if len(wh) != 1 {
		t.Fatalf("tryton warehouse %s: %v (seed it with tryton-seed)", store, wh)
	}
	now := time.Now()
	saved := c.ctx
	c.ctx = map[string]any{}
	for k, v := range saved {
		c.ctx[k] = v
	}
	c.ctx["locations"] = wh
	c.ctx["with_childs"] = true
	c.ctx["stock_date_end"] = map[string]any{"__class__": "date", "year": now.Year(), "month": int(now.Month()), "day": now.Day()}
	defer func() { c.ctx = saved }()
	var rows []struct {
		Code     string  `json:"code"`
		Quantity float64 `json:"quantity"`
	}
	c.call(t, "model.product.product.search_read", &rows, []any{[]any{"code", "in", skus}}, 0, nil, nil, []string{"code", "quantity"})
	m := map[string]float64{}
	for _, r := range rows {
		m[r.Code] = r.Quantity
	}
	if len(m) != len(skus) {
		t.Fatalf("tryton products %v: found %d (seed the simulator catalog with tryton-seed)", skus, len(m))
	}
	return m
}
