package store

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lanebridge/lanebridge/protocol"
)

// PutERPStock implements Inventory.
func (p *Postgres) PutERPStock(ctx context.Context, items []MasterItem, onHand map[string]map[string]string, pulledAt time.Time) error {
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("put erp stock: %w", err)
	}
	defer tx.Rollback(ctx)
	if items != nil {
		if _, err := tx.Exec(ctx, `DELETE FROM erp_items`); err != nil {
			return fmt.Errorf("put erp stock: %w", err)
		}
		var sku, desc, tax, status []string
		var price []int64
		seen := make(map[string]bool, len(items))
		for _, it := range items {
			if seen[it.SKU] {
				continue
			}
			seen[it.SKU] = true
			sku, desc, price, tax, status = append(sku, it.SKU), append(desc, it.Description), append(price, it.Price),
				append(tax, it.TaxCode), append(status, it.Status)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO erp_items (sku, description, price, tax_code, status)
			SELECT * FROM unnest($1::text[], $2::text[], $3::bigint[], $4::text[], $5::text[])`, sku, desc, price, tax, status); err != nil {
			return fmt.Errorf("put erp stock: %w", err)
		}
	}
	for _, st := range slices.Sorted(maps.Keys(onHand)) {
		if _, err := tx.Exec(ctx, `DELETE FROM erp_onhand WHERE store = $1`, st); err != nil {
			return fmt.Errorf("put erp stock of %s: %w", st, err)
		}
		var skus, qs []string
		for sku, q := range onHand[st] {
			skus, qs = append(skus, sku), append(qs, q)
		}
		if _, err := tx.Exec(ctx, `INSERT INTO erp_onhand (store, sku, on_hand, pulled_at)
			SELECT $1, u.*, $4 FROM unnest($2::text[], $3::text[]) AS u`, st, skus, qs, pulledAt.UTC()); err != nil {
			return fmt.Errorf("put erp stock of %s: %w", st, err)
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("put erp stock: commit: %w", err)
	}
	return nil
}

// ERPStock implements Inventory.
func (p *Postgres) ERPStock(ctx context.Context, store string) (ERPStock, error) {
	var out ERPStock
	tx, err := p.readTx(ctx)
	if err != nil {
		return out, fmt.Errorf("erp stock of %s: %w", store, err)
	}
	defer tx.Rollback(ctx)
	rows, err := tx.Query(ctx, `SELECT sku, description, price, tax_code, status FROM erp_items ORDER BY sku`)
	if err != nil {
		return out, fmt.Errorf("erp stock of %s: %w", store, err)
	}
	out.Items = []MasterItem{}
	var it MasterItem
	if _, err := pgx.ForEachRow(rows, []any{&it.SKU, &it.Description, &it.Price, &it.TaxCode, &it.Status}, func() error {
		out.Items = append(out.Items, it)
		return nil
	}); err != nil {
		return out, fmt.Errorf("erp stock of %s: %w", store, err)
	}
	rows, err = tx.Query(ctx, `SELECT sku, on_hand, pulled_at FROM erp_onhand WHERE store = $1`, store)
	if err != nil {
		return out, fmt.Errorf("erp stock of %s: %w", store, err)
	}
	out.OnHand = map[string]string{}
	var sku, q string
	var at time.Time
	if _, err := pgx.ForEachRow(rows, []any{&sku, &q, &at}, func() error {
		out.OnHand[sku] = q
		if at.After(out.PulledAt) {
			out.PulledAt = at.UTC()
		}
		return nil
	}); err != nil {
		return out, fmt.Errorf("erp stock of %s: %w", store, err)
	}
	return out, nil
}

// UnpostedRecords implements Inventory.
func (p *Postgres) UnpostedRecords(ctx context.Context, store string, pulledAt time.Time) (Unposted, error) {
	var out Unposted
	tx, err := p.readTx(ctx)
	if err != nil {
		return out, fmt.Errorf("unposted records of %s: %w", store, err)
	}
	defer tx.Rollback(ctx)
	ok, err := pgStoreExists(ctx, tx, store)
	if err != nil {
		return out, fmt.Errorf("unposted records of %s: %w", store, err)
	}
	if !ok {
		return out, fmt.Errorf("unposted records of %s: %w", store, ErrNotFound)
	}
	var through int64
	err = tx.QueryRow(ctx, `SELECT epoch, applied_through FROM streams WHERE store = $1 ORDER BY id DESC LIMIT 1`, store).
		Scan(&out.Epoch, &through)
	if err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return out, fmt.Errorf("unposted records of %s: progress: %w", store, err)
	}
	out.AppliedThrough = uint64(through)
	rows, err := tx.Query(ctx, `SELECT r.body FROM postings p
		JOIN records r ON r.store = p.store AND r.epoch = p.epoch AND r.seq = p.seq
		WHERE p.store = $1 AND (p.state IN ('pending', 'rejected') OR (p.state = 'done' AND p.posted_at >= $2)) ORDER BY p.id`,
		store, pulledAt.UTC())
	if err != nil {
		return out, fmt.Errorf("unposted records of %s: %w", store, err)
	}
	out.Records = []protocol.Record{}
	var body []byte
	if _, err := pgx.ForEachRow(rows, []any{&body}, func() error {
		r, err := decodeRecord(body)
		if err != nil {
			return err
		}
		out.Records = append(out.Records, r)
		return nil
	}); err != nil {
		return out, fmt.Errorf("unposted records of %s: %w", store, err)
	}
	return out, nil
}

// InventoryItems implements Inventory.
func (p *Postgres) InventoryItems(ctx context.Context, store string) (InventoryState, []protocol.Item, error) {
	var st InventoryState
	tx, err := p.readTx(ctx)
	if err != nil {
		return st, nil, fmt.Errorf("inventory of %s: %w", store, err)
	}
	defer tx.Rollback(ctx)
	var v, through int64
	err = tx.QueryRow(ctx, `SELECT version, epoch, applied_through, items, updated_at FROM inventory_versions WHERE store = $1`, store).
		Scan(&v, &st.Epoch, &through, &st.Items, &st.UpdatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return st, []protocol.Item{}, nil
	}
	if err != nil {
		return st, nil, fmt.Errorf("inventory of %s: %w", store, err)
	}
	st.Version, st.AppliedThrough, st.UpdatedAt = uint64(v), uint64(through), st.UpdatedAt.UTC()
	rows, err := tx.Query(ctx, `SELECT sku, description, price, tax_code, status, on_hand, available
		FROM inventory_items WHERE store = $1 ORDER BY sku`, store)
	if err != nil {
		return st, nil, fmt.Errorf("inventory of %s: %w", store, err)
	}
	items := make([]protocol.Item, 0, st.Items)
	var it protocol.Item
	if _, err := pgx.ForEachRow(rows, []any{&it.SKU, &it.Description, &it.Price, &it.TaxCode, &it.Status, &it.OnHand, &it.Available}, func() error {
		items = append(items, it)
		return nil
	}); err != nil {
		return st, nil, fmt.Errorf("inventory of %s: %w", store, err)
	}
	return st, items, nil
}

// SaveInventory implements Inventory. The version row is locked for the transaction, so two
// replicas saving on the same base serialise and the second gets ErrVersionConflict.
func (p *Postgres) SaveInventory(ctx context.Context, store string, base uint64, st InventoryState, changed []protocol.Item, removed []string) error {
	if st.Version <= base || st.Version > 1<<62 || st.AppliedThrough > 1<<62 {
		return fmt.Errorf("save inventory of %s: version %d is not above base %d", store, st.Version, base)
	}
	tx, err := p.pool.Begin(ctx)
	if err != nil {
		return fmt.Errorf("save inventory of %s: %w", store, err)
	}
	defer tx.Rollback(ctx)
	// Create the row at version 0 if missing, then lock it.
	if _, err := tx.Exec(ctx, `INSERT INTO inventory_versions (store, version, epoch, applied_through, items, updated_at)
		VALUES ($1, 0, '', 0, 0, now()) ON CONFLICT (store) DO NOTHING`, store); err != nil {
		return fmt.Errorf("save inventory of %s: %w", store, err)
	}
	var cur int64
	if err := tx.QueryRow(ctx, `SELECT version FROM inventory_versions WHERE store = $1 FOR UPDATE`, store).Scan(&cur); err != nil {
		return fmt.Errorf("save inventory of %s: %w", store, err)
	}
	if uint64(cur) != base {
		return fmt.Errorf("save inventory of %s: stored version %d, base %d: %w", store, cur, base, ErrVersionConflict)
	}
	if len(removed) > 0 {
		if _, err := tx.Exec(ctx, `DELETE FROM inventory_items WHERE store = $1 AND sku = ANY($2::text[])`, store, removed); err != nil {
			return fmt.Errorf("save inventory of %s: %w", store, err)
		}
	}
	if len(changed) > 0 {
		n := len(changed)
		sku, desc, tax, status, onHand, avail := make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n), make([]string, n)
		price := make([]int64, n)
		for i, it := range changed {
			sku[i], desc[i], price[i], tax[i], status[i], onHand[i], avail[i] = it.SKU, it.Description, it.Price, it.TaxCode, it.Status, it.OnHand, it.Available
		}
		if _, err := tx.Exec(ctx, `INSERT INTO inventory_items (store, sku, description, price, tax_code, status, on_hand, available, version)
			SELECT $1, u.*, $9 FROM unnest($2::text[], $3::text[], $4::bigint[], $5::text[], $6::text[], $7::text[], $8::text[]) AS u
			ON CONFLICT (store, sku) DO UPDATE SET description = excluded.description, price = excluded.price,
			tax_code = excluded.tax_code, status = excluded.status, on_hand = excluded.on_hand, available = excluded.available,
			version = excluded.version`, store, sku, desc, price, tax, status, onHand, avail, int64(st.Version)); err != nil {
			return fmt.Errorf("save inventory of %s: %w", store, err)
		}
	}
	if _, err := tx.Exec(ctx, `UPDATE inventory_versions SET version = $2, epoch = $3, applied_through = $4,
		items = (SELECT COUNT(*) FROM inventory_items WHERE store = $1), updated_at = $5 WHERE store = $1`,
		store, int64(st.Version), st.Epoch, int64(st.AppliedThrough), time.Now().UTC()); err != nil {
		return fmt.Errorf("save inventory of %s: %w", store, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("save inventory of %s: commit: %w", store, err)
	}
	return nil
}

// InventoryVersions implements Inventory.
func (p *Postgres) InventoryVersions(ctx context.Context) (map[string]InventoryState, error) {
	rows, err := p.pool.Query(ctx, `SELECT store, version, epoch, applied_through, items, updated_at FROM inventory_versions WHERE version > 0`)
	if err != nil {
		return nil, fmt.Errorf("inventory versions: %w", err)
	}
	out := map[string]InventoryState{}
	var store string
	var st InventoryState
	var v, through int64
	if _, err := pgx.ForEachRow(rows, []any{&store, &v, &st.Epoch, &through, &st.Items, &st.UpdatedAt}, func() error {
		s := st
		s.Version, s.AppliedThrough, s.UpdatedAt = uint64(v), uint64(through), st.UpdatedAt.UTC()
		out[store] = s
		return nil
	}); err != nil {
		return nil, fmt.Errorf("inventory versions: %w", err)
	}
	return out, nil
}
