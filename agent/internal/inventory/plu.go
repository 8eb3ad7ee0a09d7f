package inventory

import (
	"bufio"
	"encoding/csv"
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/lanebridge/lanebridge/agent/internal/boltfile"
	"github.com/lanebridge/lanebridge/protocol"
)

// PLU file columns.
var PLUColumns = []string{"sku", "description", "price", "price_major", "tax_code", "status", "on_hand", "available"}

// DefaultPLUColumns are written when no columns are configured.
var DefaultPLUColumns = []string{"sku", "description", "price", "tax_code"}

// PLUFile describes the PLU / price file written for terminals that load one.
type PLUFile struct {
	// Path of the file; it is replaced atomically (temp file, fsync, rename, directory fsync).
	Path string
	// Format is "csv" (the only one so far).
	Format string
	// Columns, from PLUColumns: price is in minor units, price_major is price/100 with two
	// decimals, available includes the local overlay at the time of writing.
	Columns []string
	// Comma is the field delimiter (default ',').
	Comma rune
	// Header writes the column names as the first line.
	Header bool
}

// ValidPLUColumn reports whether c is a known column.
func ValidPLUColumn(c string) bool {
	for _, k := range PLUColumns {
		if c == k {
			return true
		}
	}
	return false
}

// exportable reports whether a terminal should sell the item.
func exportable(it protocol.Item) bool {
	return it.Status != protocol.ItemInactive && it.Status != protocol.ItemDeleted
}

// writePLU writes every active item of db to p.Path atomically; avail gives the available
// quantity of an item.
func writePLU(p *PLUFile, db *DB, avail func(protocol.Item) (Qty, error)) (n int, err error) {
	cols := p.Columns
	if len(cols) == 0 {
		cols = DefaultPLUColumns
	}
	dir := filepath.Dir(p.Path)
	tmp, err := os.CreateTemp(dir, "."+filepath.Base(p.Path)+".tmp-*")
	if err != nil {
		return 0, fmt.Errorf("plu file: %w", err)
	}
	defer func() {
		if err != nil {
			_ = tmp.Close()
			_ = os.Remove(tmp.Name())
		}
	}()
	bw := bufio.NewWriterSize(tmp, 1<<16)
	w := csv.NewWriter(bw)
	if p.Comma != 0 {
		w.Comma = p.Comma
	}
	if p.Header {
		if err := w.Write(cols); err != nil {
			return 0, fmt.Errorf("plu file: %w", err)
		}
	}
	row := make([]string, len(cols))
	_, err = db.ForEach(func(it protocol.Item) error {
		if !exportable(it) {
			return nil
		}
		for i, c := range cols {
			switch c {
			case "sku":
				row[i] = it.SKU
			case "description":
				row[i] = it.Description
			case "price":
				row[i] = strconv.FormatInt(it.Price, 10)
			case "price_major":
				row[i] = formatMajor(it.Price)
			case "tax_code":
				row[i] = it.TaxCode
			case "status":
				row[i] = it.Status
			case "on_hand":
				q, err := ParseQty(it.OnHand)
				if err != nil {
					return err
				}
				row[i] = q.String()
			case "available":
				q, err := avail(it)
				if err != nil {
					return err
				}
				row[i] = q.String()
			default:
				return fmt.Errorf("unknown column %q", c)
			}
		}
		n++
		return w.Write(row)
	})
	if err != nil {
		return 0, fmt.Errorf("plu file: %w", err)
	}
	w.Flush()
	if err := w.Error(); err != nil {
		return 0, fmt.Errorf("plu file: %w", err)
	}
	if err := bw.Flush(); err != nil {
		return 0, fmt.Errorf("plu file: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return 0, fmt.Errorf("plu file: fsync: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return 0, fmt.Errorf("plu file: %w", err)
	}
	if err := os.Chmod(tmp.Name(), 0o644); err != nil {
		return 0, fmt.Errorf("plu file: %w", err)
	}
	if err := os.Rename(tmp.Name(), p.Path); err != nil {
		return 0, fmt.Errorf("plu file: %w", err)
	}
	if err := boltfile.SyncDir(dir); err != nil {
		return 0, fmt.Errorf("plu file: sync directory: %w", err)
	}
	return n, nil
}

func formatMajor(minor int64) string {
	sign := ""
	u := uint64(minor)
	if minor < 0 {
		sign = "-"
		u = uint64(-(minor + 1)) + 1
	}
	return fmt.Sprintf("%s%d.%02d", sign, u/100, u%100)
}
