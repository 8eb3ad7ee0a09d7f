package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/lanebridge/lanebridge/protocol"
)

// sqliteRowsPerInsert bounds a multi-row INSERT (9 columns: well under SQLite's variable limit).
const sqliteRowsPerInsert = 500

// sqliteInsertRows inserts rows (each of len(cols) values) into table in chunks.
func sqliteInsertRows(ctx context.Context, tx *sql.Tx, table string, cols []string, rows [][]any) error {
	for len(rows) > 0 {
		n := min(len(rows), sqliteRowsPerInsert)
		ph := "(" + strings.TrimSuffix(strings.Repeat("?,", len(cols)), ",") + ")"
		q := "INSERT INTO " + table + " (" + strings.Join(cols, ", ") + ") VALUES " +
			strings.TrimSuffix(strings.Repeat(ph+",", n), ",")
		args := make([]any, 0, n*len(cols))
		for _, r := range rows[:n] {
			args = append(args, r...)
		}
		if _, err := tx.ExecContext(ctx, q, args...); err != nil {
			return fmt.Errorf("insert into %s: %w", table, err)
		}
		rows = rows[n:]
	}
	return nil
}

// PutERPStock implements Inventory.
func (s *SQLite) PutERPStock(ctx context.Context, items []MasterItem, onHand map[string]map[string]string, pulledAt time.Time) error {
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("put erp stock: %w", err)
	}
	defer tx.Rollback()
	if items != nil {
		if _, err := tx.ExecContext(ctx, `DELETE FROM erp_items`); err != nil {
			return fmt.Errorf("put erp stock: %w", err)
		}
		rows := make([][]any, 0, len(items))
		seen := make(map[string]bool, len(items))
		for _, it := range items {
			if seen[it.SKU] {
				continue // the last wins would need an order; the ERP's first entry is kept
			}
			seen[it.SKU] = true
			rows = append(rows, []any{it.SKU, it.Description, it.Price, it.TaxCode, it.Status})
		}
		if err := sqliteInsertRows(ctx, tx, "erp_items", []string{"sku", "description", "price", "tax_code", "status"}, rows); err != nil {
			return fmt.Errorf("put erp stock: %w", err)
		}
	}
	now := micros(pulledAt)
	for _, st := range slices.Sorted(maps.Keys(onHand)) {
		if _, err := tx.ExecContext(ctx, `DELETE FROM erp_onhand WHERE store = ?`, st); err != nil {
			return fmt.Errorf("put erp stock of %s: %w", st, err)
		}
		m := onHand[st]
		rows := make([][]any, 0, len(m))
		for sku, q := range m {
			rows = append(rows, []any{st, sku, q, now})
		}
		if err := sqliteInsertRows(ctx, tx, "erp_onhand", []string{"store", "sku", "on_hand", "pulled_at"}, rows); err != nil {
			return fmt.Errorf("put erp stock of %s: %w", st, err)
		}
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("put erp stock: commit: %w", err)
	}
	return nil
}

// ERPStock implements Inventory.
func (s *SQLite) ERPStock(ctx context.Context, store string) (ERPStock, error) {
	var out ERPStock
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return out, fmt.Errorf("erp stock of %s: %w", store, err)
	}
	defer tx.Rollback()
	rows, err := tx.QueryContext(ctx, `SELECT sku, description, price, tax_code, status FROM erp_items ORDER BY sku`)
	if err != nil {
		return out, fmt.Errorf("erp stock of %s: %w", store, err)
	}
	out.Items = []MasterItem{}
	for rows.Next() {
		var it MasterItem
		if err := rows.Scan(&it.SKU, &it.Description, &it.Price, &it.TaxCode, &it.Status); err != nil {
			rows.Close()
			return out, fmt.Errorf("erp stock of %s: %w", store, err)
		}
		out.Items = append(out.Items, it)
	}
	if err := closeRows(rows); err != nil {
		return out, fmt.Errorf("erp stock of %s: %w", store, err)
	}
	rows, err = tx.QueryContext(ctx, `SELECT sku, on_hand, pulled_at FROM erp_onhand WHERE store = ?`, store)
	if err != nil {
		return out, fmt.Errorf("erp stock of %s: %w", store, err)
	}
	out.OnHand = map[string]string{}
	var pulled int64
	for rows.Next() {
		var sku, q string
		var at int64
		if err := rows.Scan(&sku, &q, &at); err != nil {
			rows.Close()
			return out, fmt.Errorf("erp stock of %s: %w", store, err)
		}
		out.OnHand[sku] = q
		pulled = max(pulled, at)
	}
	if err := closeRows(rows); err != nil {
		return out, fmt.Errorf("erp stock of %s: %w", store, err)
	}
	if pulled != 0 {
		out.PulledAt = fromMicros(pulled)
	}
	return out, nil
}

// UnpostedRecords implements Inventory.
func (s *SQLite) UnpostedRecords(ctx context.Context, store string, pulledAt time.Time) (Unposted, error) {
	var out Unposted
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return out, fmt.Errorf("unposted records of %s: %w", store, err)
	}
	defer tx.Rollback()
	ok, err := sqliteStoreExists(ctx, tx, store)
	if err != nil {
		return out, fmt.Errorf("unposted records of %s: %w", store, err)
	}
	if !ok {
		return out, fmt.Errorf("unposted records of %s: %w", store, ErrNotFound)
	}
	err = tx.QueryRowContext(ctx, `SELECT epoch, applied_through FROM streams WHERE store = ? ORDER BY id DESC LIMIT 1`, store).
		Scan(&out.Epoch, &out.AppliedThrough)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return out, fmt.Errorf("unposted records of %s: progress: %w", store, err)
	}
	rows, err := tx.QueryContext(ctx, `SELECT r.body FROM postings p
		JOIN records r ON r.store = p.store AND r.epoch = p.epoch AND r.seq = p.seq
		WHERE p.store = ? AND (p.state IN ('pending', 'rejected') OR (p.state = 'done' AND p.posted_at >= ?)) ORDER BY p.id`,
		store, micros(pulledAt))
	if err != nil {
		return out, fmt.Errorf("unposted records of %s: %w", store, err)
	}
	out.Records = []protocol.Record{}
	for rows.Next() {
		var body []byte
		if err := rows.Scan(&body); err != nil {
			rows.Close()
			return out, fmt.Errorf("unposted records of %s: %w", store, err)
		}
		r, err := decodeRecord(body)
		if err != nil {
			rows.Close()
			return out, fmt.Errorf("unposted records of %s: %w", store, err)
		}
		out.Records = append(out.Records, r)
	}
	if err := closeRows(rows); err != nil {
		return out, fmt.Errorf("unposted records of %s: %w", store, err)
	}
	return out, nil
}

// InventoryItems implements Inventory.
func (s *SQLite) InventoryItems(ctx context.Context, store string) (InventoryState, []protocol.Item, error) {
	var st InventoryState
	tx, err := s.r.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return st, nil, fmt.Errorf("inventory of %s: %w", store, err)
	}
	defer tx.Rollback()
	var at int64
	err = tx.QueryRowContext(ctx, `SELECT version, epoch, applied_through, items, updated_at FROM inventory_versions WHERE store = ?`, store).
		Scan(&st.Version, &st.Epoch, &st.AppliedThrough, &st.Items, &at)
	if errors.Is(err, sql.ErrNoRows) {
		return st, []protocol.Item{}, nil
	}
	if err != nil {
		return st, nil, fmt.Errorf("inventory of %s: %w", store, err)
	}
	st.UpdatedAt = fromMicros(at)
	rows, err := tx.QueryContext(ctx, `SELECT sku, description, price, tax_code, status, on_hand, available
		FROM inventory_items WHERE store = ? ORDER BY sku`, store)
	if err != nil {
		return st, nil, fmt.Errorf("inventory of %s: %w", store, err)
	}
	items := make([]protocol.Item, 0, st.Items)
	for rows.Next() {
		var it protocol.Item
		if err := rows.Scan(&it.SKU, &it.Description, &it.Price, &it.TaxCode, &it.Status, &it.OnHand, &it.Available); err != nil {
			rows.Close()
			return st, nil, fmt.Errorf("inventory of %s: %w", store, err)
		}
		items = append(items, it)
	}
	if err := closeRows(rows); err != nil {
		return st, nil, fmt.Errorf("inventory of %s: %w", store, err)
	}
	return st, items, nil
}

// SaveInventory implements Inventory.
func (s *SQLite) SaveInventory(ctx context.Context, store string, base uint64, st InventoryState, changed []protocol.Item, removed []string) error {
	if st.Version <= base {
		return fmt.Errorf("save inventory of %s: version %d is not above base %d", store, st.Version, base)
	}
	tx, err := s.w.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("save inventory of %s: %w", store, err)
	}
	defer tx.Rollback()
	var cur uint64
	err = tx.QueryRowContext(ctx, `SELECT version FROM inventory_versions WHERE store = ?`, store).Scan(&cur)
	if err != nil && !errors.Is(err, sql.ErrNoRows) {
		return fmt.Errorf("save inventory of %s: %w", store, err)
	}
	if cur != base {
		return fmt.Errorf("save inventory of %s: stored version %d, base %d: %w", store, cur, base, ErrVersionConflict)
	}
	for _, sku := range removed {
		if _, err := tx.ExecContext(ctx, `DELETE FROM inventory_items WHERE store = ? AND sku = ?`, store, sku); err != nil {
			return fmt.Errorf("save inventory of %s: %w", store, err)
		}
	}
	if len(changed) > 0 {
		skus := make([]any, 0, len(changed))
		for _, it := range changed {
			skus = append(skus, it.SKU)
		}
		for len(skus) > 0 {
			n := min(len(skus), sqliteRowsPerInsert)
			q := `DELETE FROM inventory_items WHERE store = ? AND sku IN (` + strings.TrimSuffix(strings.Repeat("?,", n), ",") + `)`
			if _, err := tx.ExecContext(ctx, q, append([]any{store}, skus[:n]...)...); err != nil {
				return fmt.Errorf("save inventory of %s: %w", store, err)
			}
			skus = skus[n:]
		}
		rows := make([][]any, 0, len(changed))
		for _, it := range changed {
			rows = append(rows, []any{store, it.SKU, it.Description, it.Price, it.TaxCode, it.Status, it.OnHand, it.Available, st.Version})
		}
		if err := sqliteInsertRows(ctx, tx, "inventory_items",
			[]string{"store", "sku", "description", "price", "tax_code", "status", "on_hand", "available", "version"}, rows); err != nil {
			return fmt.Errorf("save inventory of %s: %w", store, err)
		}
	}
	var items int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM inventory_items WHERE store = ?`, store).Scan(&items); err != nil {
		return fmt.Errorf("save inventory of %s: %w", store, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO inventory_versions (store, version, epoch, applied_through, items, updated_at)
		VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (store) DO UPDATE SET version = excluded.version, epoch = excluded.epoch,
		applied_through = excluded.applied_through, items = excluded.items, updated_at = excluded.updated_at`,
		store, st.Version, st.Epoch, st.AppliedThrough, items, micros(time.Now())); err != nil {
		return fmt.Errorf("save inventory of %s: %w", store, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("save inventory of %s: commit: %w", store, err)
	}
	return nil
}

// InventoryVersions implements Inventory.
func (s *SQLite) InventoryVersions(ctx context.Context) (map[string]InventoryState, error) {
	rows, err := s.r.QueryContext(ctx, `SELECT store, version, epoch, applied_through, items, updated_at FROM inventory_versions`)
	if err != nil {
		return nil, fmt.Errorf("inventory versions: %w", err)
	}
	out := map[string]InventoryState{}
	for rows.Next() {
		var store string
		var st InventoryState
		var at int64
		if err := rows.Scan(&store, &st.Version, &st.Epoch, &st.AppliedThrough, &st.Items, &at); err != nil {
			rows.Close()
			return nil, fmt.Errorf("inventory versions: %w", err)
		}
		st.UpdatedAt = fromMicros(at)
		out[store] = st
	}
	if err := closeRows(rows); err != nil {
		return nil, fmt.Errorf("inventory versions: %w", err)
	}
	return out, nil
}
