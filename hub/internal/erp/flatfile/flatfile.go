// Package flatfile is the ERP connector for ERPs that exchange files: the hub writes posting
// files into an outbound folder and reads stock and item files from an inbound folder.
//
// # Posting files
//
// One file per store, business day and batch, named
// LB_{store}_{business_date}_{UTC time}_{8 hex}.csv, UTF-8, comma separated, with a header row.
// A file appears complete or not at all: it is written as .tmp-{name} in the same folder,
// fsynced, renamed and the folder fsynced. Consumers must ignore names starting with a dot.
// One row per line, discount, tax and tender of each transaction:
//
//	key               store|terminal|business_date|receipt|kind — the business key; unique per transaction
//	store, terminal, business_date, receipt, kind (sale or return), original_receipt, currency
//	row_type          line | discount | tax | tender
//	row_no            1-based within the transaction and row type
//	sku, description  line: the item; discount: its description; tax: empty
//	quantity          line: exact decimal, negative for returned items; empty otherwise
//	unit_price        line: minor units
//	amount            minor units: line amount, discount (negative), tax amount, tender amount
//	code              tax: tax code; tender: tender type (cash, card, check, gift, other)
//	rate              tax: rate in percent ("8.25")
//	taxable           tax: taxable amount in minor units
//	total             the transaction total in minor units (tax included), on every row
//
// Amounts are integers in minor units (cents): no floating point anywhere.
//
// # Exactly once
//
// The ledger (state folder, sent.log, fsynced) names a file's keys before the file is renamed
// into place. After a crash, Open looks for the temporary copy: still there means the rename
// never happened, so the keys are retracted (a later Post writes them again); gone means the
// file was published, whether or not the ERP has consumed it since. Find answers from the
// ledger, plus, for files written by older versions, from posting files still in outbound.
//
// # Inbound files
//
// onhand_*.csv: header store,sku,on_hand — each file lists complete stock of the stores it
// names. items_*.csv: header sku,description,price,tax_code,status — the complete item master.
// Files are applied in name order; after the hub has stored what they say, they are moved to
// inbound/processed/, so each file is applied once.
package flatfile

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/csv"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/erp"
	"github.com/lanebridge/lanebridge/protocol"
)

// Header is the column list of posting files.
var Header = []string{"key", "store", "terminal", "business_date", "receipt", "kind", "original_receipt", "currency",
	"row_type", "row_no", "sku", "description", "quantity", "unit_price", "amount", "code", "rate", "taxable", "total"}

// Connector writes posting files and reads inbound files. Safe for concurrent use.
type Connector struct {
	outbound, inbound, state string

	mu     sync.Mutex
	sent   map[string]string // key → file name
	ledger *os.File
	now    func() time.Time
}

var (
	_ erp.Connector   = (*Connector)(nil)
	_ erp.BatchPoster = (*Connector)(nil)
	_ erp.StockSource = (*Connector)(nil)
)

// Open prepares the folders (created if missing), loads the ledger from state and recovers
// keys of posting files left in outbound.
func Open(outbound, inbound, state string) (*Connector, error) {
	for _, d := range []string{outbound, state} {
		if err := os.MkdirAll(d, 0o750); err != nil {
			return nil, fmt.Errorf("flat-file connector: %w", err)
		}
	}
	if inbound != "" {
		if err := os.MkdirAll(filepath.Join(inbound, "processed"), 0o750); err != nil {
			return nil, fmt.Errorf("flat-file connector: %w", err)
		}
	}
	c := &Connector{outbound: outbound, inbound: inbound, state: state, sent: map[string]string{}, now: time.Now}
	lp := filepath.Join(state, "sent.log")
	torn := false
	if b, err := os.ReadFile(lp); err == nil {
		// A last line without its newline is an append cut short by a crash (SIGKILL can end
		// a write part-way; a power cut loses its unsynced tail). Its fsync never returned,
		// so its file was never renamed into place: drop the fragment, whose file name is cut
		// and would match no temporary copy, leaving its key "sent" with no file published.
		if i := strings.LastIndexByte(string(b), '\n'); i+1 < len(b) {
			if err := os.Truncate(lp, int64(i+1)); err != nil {
				return nil, fmt.Errorf("flat-file connector: drop the torn end of the ledger: %w", err)
			}
			b, torn = b[:i+1], true
		}
		for _, line := range strings.Split(string(b), "\n") {
			k, f, ok := strings.Cut(line, "\t")
			switch {
			case !ok || k == "":
			case f == "":
				delete(c.sent, k) // retracted: the file was never published
			default:
				c.sent[k] = f
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("flat-file connector: read ledger: %w", err)
	}
	f, err := os.OpenFile(lp, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o640)
	if err != nil {
		return nil, fmt.Errorf("flat-file connector: open ledger: %w", err)
	}
	c.ledger = f
	if torn {
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("flat-file connector: sync ledger: %w", err)
		}
	}
	if err := c.recover(); err != nil {
		f.Close()
		return nil, err
	}
	return c, nil
}

// Close closes the ledger.
func (c *Connector) Close() error { return c.ledger.Close() }

// recover settles what a crash left: keys logged for a file whose temporary copy is still
// there were never published (the rename had not happened) and are retracted; stray temporary
// files are removed; keys of posting files in outbound that the ledger lacks are added.
func (c *Connector) recover() error {
	var retract []string
	for k, name := range c.sent {
		if _, err := os.Stat(filepath.Join(c.outbound, ".tmp-"+name)); err == nil {
			delete(c.sent, k)
			retract = append(retract, k+"\t")
		}
	}
	if len(retract) > 0 {
		if err := c.appendLedger(retract); err != nil {
			return fmt.Errorf("flat-file connector: %w", err)
		}
	}
	if tmps, _ := filepath.Glob(filepath.Join(c.outbound, ".tmp-LB_*.csv")); len(tmps) > 0 {
		for _, t := range tmps {
			os.Remove(t)
		}
		if err := syncDir(c.outbound); err != nil {
			return fmt.Errorf("flat-file connector: %w", err)
		}
	}
	names, err := filepath.Glob(filepath.Join(c.outbound, "LB_*.csv"))
	if err != nil {
		return err
	}
	var missing []string
	for _, n := range names {
		keys, err := fileKeys(n)
		if err != nil {
			return fmt.Errorf("flat-file connector: recover %s: %w", n, err)
		}
		for _, k := range keys {
			if _, ok := c.sent[k]; !ok {
				c.sent[k] = filepath.Base(n)
				missing = append(missing, k+"\t"+filepath.Base(n))
			}
		}
	}
	if len(missing) == 0 {
		return nil
	}
	return c.appendLedger(missing)
}

func fileKeys(path string) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = -1
	var keys []string
	seen := map[string]bool{}
	for i := 0; ; i++ {
		rec, err := r.Read()
		if err == io.EOF {
			return keys, nil
		}
		if err != nil {
			return nil, err
		}
		if i == 0 || len(rec) == 0 || seen[rec[0]] {
			continue
		}
		seen[rec[0]] = true
		keys = append(keys, rec[0])
	}
}

func (c *Connector) appendLedger(lines []string) error {
	if _, err := c.ledger.WriteString(strings.Join(lines, "\n") + "\n"); err != nil {
		return fmt.Errorf("write ledger: %w", err)
	}
	if err := c.ledger.Sync(); err != nil {
		return fmt.Errorf("sync ledger: %w", err)
	}
	return nil
}

// Find implements erp.Connector; the reference is the file name.
func (c *Connector) Find(_ context.Context, key string) (string, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	f, ok := c.sent[key]
	return f, ok, nil
}

// Post implements erp.Connector as a batch of one.
func (c *Connector) Post(ctx context.Context, p erp.Posting) (string, error) {
	refs, err := c.PostBatch(ctx, []erp.Posting{p})
	if err != nil {
		return "", err
	}
	return refs[0], nil
}

// PostBatch implements erp.BatchPoster: one file per store and business day. Keys already in
// the ledger are not written again; their existing file is returned.
func (c *Connector) PostBatch(ctx context.Context, ps []erp.Posting) ([]string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	refs := make([]string, len(ps))
	groups := map[string][]int{}
	var order []string
	for i, p := range ps {
		if f, ok := c.sent[p.Key]; ok {
			refs[i] = f
			continue
		}
		if p.Record.Kind != protocol.KindSale && p.Record.Kind != protocol.KindReturn {
			return nil, erp.Reject(fmt.Errorf("posting %s: kind %s is not posted", p.Key, p.Record.Kind))
		}
		g := p.Record.Store + "_" + p.Record.BusinessDate
		if _, ok := groups[g]; !ok {
			order = append(order, g)
		}
		groups[g] = append(groups[g], i)
	}
	for _, g := range order {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		idx := groups[g]
		name, err := c.writeTemp(g, ps, idx)
		if err != nil {
			return nil, err
		}
		// Intent first: the ledger names the file before it is published. After a crash, a
		// temporary copy still present means the rename never happened (Open retracts the
		// keys); no temporary copy means the file was published, even if the ERP has already
		// taken it away. So a batch is never written twice and never lost.
		lines := make([]string, 0, len(idx))
		for _, i := range idx {
			lines = append(lines, ps[i].Key+"\t"+name)
		}
		tmp := filepath.Join(c.outbound, ".tmp-"+name)
		if err := c.appendLedger(lines); err != nil {
			os.Remove(tmp)
			return nil, fmt.Errorf("flat-file connector: %w", err)
		}
		if err := c.publish(tmp, name); err != nil {
			retract := make([]string, 0, len(idx))
			for _, i := range idx {
				retract = append(retract, ps[i].Key+"\t")
			}
			if lerr := c.appendLedger(retract); lerr != nil {
				// The temporary copy stays: Open retracts these keys.
				return nil, fmt.Errorf("flat-file connector: %w (and %v)", err, lerr)
			}
			os.Remove(tmp)
			return nil, fmt.Errorf("flat-file connector: %w", err)
		}
		for _, i := range idx {
			refs[i] = name
			c.sent[ps[i].Key] = name
		}
	}
	return refs, nil
}

// publish renames the fsynced temporary file into place and makes the rename durable.
func (c *Connector) publish(tmp, name string) error {
	if err := os.Rename(tmp, filepath.Join(c.outbound, name)); err != nil {
		return fmt.Errorf("publish %s: %w", name, err)
	}
	if err := syncDir(c.outbound); err != nil {
		return fmt.Errorf("publish %s: %w", name, err)
	}
	return nil
}

// writeTemp writes and fsyncs the posting file under its temporary name and returns the
// final name.
func (c *Connector) writeTemp(group string, ps []erp.Posting, idx []int) (string, error) {
	h := sha256.New()
	for _, i := range idx {
		h.Write([]byte(ps[i].Key + "\n"))
	}
	name := fmt.Sprintf("LB_%s_%s_%s.csv", group, c.now().UTC().Format("20060102T150405.000000Z"), hex.EncodeToString(h.Sum(nil))[:8])
	tmp := filepath.Join(c.outbound, ".tmp-"+name)
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
	if err != nil {
		return "", fmt.Errorf("flat-file connector: create %s: %w", tmp, err)
	}
	w := csv.NewWriter(bufio.NewWriter(f))
	rows := [][]string{Header}
	for _, i := range idx {
		rs, err := Rows(ps[i])
		if err != nil {
			f.Close()
			os.Remove(tmp)
			return "", erp.Reject(err)
		}
		rows = append(rows, rs...)
	}
	err = w.WriteAll(rows) // flushes
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return "", fmt.Errorf("flat-file connector: write %s: %w", name, err)
	}
	return name, nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// Rows renders one posting as CSV rows (see the package comment).
func Rows(p erp.Posting) ([][]string, error) {
	r := &p.Record
	lines, _, err := erp.NetLines(r)
	if err != nil {
		return nil, fmt.Errorf("posting %s: %w", p.Key, err)
	}
	head := []string{p.Key, r.Store, r.Terminal, r.BusinessDate, r.Receipt, string(r.Kind), r.OriginalReceipt, r.Currency}
	total := strconv.FormatInt(r.Total, 10)
	row := func(typ string, n int, sku, desc, qty, up, amount, code, rate, taxable string) []string {
		return append(slices.Clone(head), typ, strconv.Itoa(n), sku, desc, qty, up, amount, code, rate, taxable, total)
	}
	var out [][]string
	nl, nd := 0, 0
	for _, l := range lines {
		if l.Discount {
			nd++
			out = append(out, row("discount", nd, "", l.Description, "", "", strconv.FormatInt(l.Amount, 10), "", "", ""))
			continue
		}
		nl++
		out = append(out, row("line", nl, l.SKU, l.Description, l.Quantity, strconv.FormatInt(l.UnitPrice, 10), strconv.FormatInt(l.Amount, 10), "", "", ""))
	}
	for i, t := range r.Taxes {
		out = append(out, row("tax", i+1, "", "", "", "", strconv.FormatInt(t.Amount, 10), t.Code, t.Rate, strconv.FormatInt(t.Taxable, 10)))
	}
	for i, t := range r.Tenders {
		out = append(out, row("tender", i+1, "", "", "", "", strconv.FormatInt(t.Amount, 10), t.Type, "", ""))
	}
	return out, nil
}

// Pull implements erp.StockSource from the inbound folder. stores is ignored: the files say
// which stores they cover. Commit moves the files read to inbound/processed/.
func (c *Connector) Pull(_ context.Context, _ []string) (erp.Update, error) {
	u := erp.Update{OnHand: map[string]map[string]string{}}
	if c.inbound == "" {
		return u, nil
	}
	onhand, _ := filepath.Glob(filepath.Join(c.inbound, "onhand_*.csv"))
	items, _ := filepath.Glob(filepath.Join(c.inbound, "items_*.csv"))
	slices.Sort(onhand)
	slices.Sort(items)
	for _, n := range onhand {
		rows, err := readCSV(n, []string{"store", "sku", "on_hand"})
		if err != nil {
			return u, err
		}
		fileStores := map[string]map[string]string{}
		for i, r := range rows {
			if !protocol.ValidQuantity(r[2]) {
				return u, fmt.Errorf("%s row %d: on_hand %q is not an exact decimal", n, i+2, r[2])
			}
			if fileStores[r[0]] == nil {
				fileStores[r[0]] = map[string]string{}
			}
			fileStores[r[0]][r[1]] = r[2]
		}
		for s, m := range fileStores {
			u.OnHand[s] = m // a later file replaces an earlier one per store
		}
	}
	if len(items) > 0 {
		rows, err := readCSV(items[len(items)-1], []string{"sku", "description", "price", "tax_code", "status"})
		if err != nil {
			return u, err
		}
		u.Items = []erp.Item{}
		for i, r := range rows {
			price, err := strconv.ParseInt(r[2], 10, 64)
			if err != nil {
				return u, fmt.Errorf("%s row %d: price %q is not minor units: %w", items[len(items)-1], i+2, r[2], err)
			}
			st := r[4]
			if st == "" {
				st = protocol.ItemActive
			}
			u.Items = append(u.Items, erp.Item{SKU: r[0], Description: r[1], Price: price, TaxCode: r[3], Status: st})
		}
	}
	files := append(onhand, items...)
	if len(files) > 0 {
		u.Commit = func() error {
			for _, f := range files {
				if err := os.Rename(f, filepath.Join(c.inbound, "processed", filepath.Base(f))); err != nil {
					return fmt.Errorf("move %s to processed: %w", f, err)
				}
			}
			return syncDir(filepath.Join(c.inbound, "processed"))
		}
	}
	return u, nil
}

func readCSV(path string, header []string) ([][]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	r := csv.NewReader(bufio.NewReader(f))
	r.FieldsPerRecord = len(header)
	all, err := r.ReadAll()
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	if len(all) == 0 || !slices.Equal(all[0], header) {
		return nil, fmt.Errorf("read %s: header must be %s", path, strings.Join(header, ","))
	}
	return all[1:], nil
}
