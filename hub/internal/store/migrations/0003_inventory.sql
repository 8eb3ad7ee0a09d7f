-- Inventory push: the ERP's stock as pulled, per-store published items and versions.
CREATE TABLE erp_items (
	sku         text PRIMARY KEY,
	description text NOT NULL,
	price       bigint NOT NULL,
	tax_code    text NOT NULL,
	status      text NOT NULL
) {{rowid}};
CREATE TABLE erp_onhand (
	store     text NOT NULL,
	sku       text NOT NULL,
	on_hand   text NOT NULL,
	pulled_at {{time}} NOT NULL,
	PRIMARY KEY (store, sku)
) {{rowid}};
CREATE TABLE inventory_versions (
	store           text PRIMARY KEY REFERENCES stores(id),
	version         bigint NOT NULL,
	epoch           text NOT NULL,
	applied_through bigint NOT NULL,
	items           integer NOT NULL,
	updated_at      {{time}} NOT NULL
);
CREATE TABLE inventory_items (
	store       text NOT NULL,
	sku         text NOT NULL,
	description text NOT NULL,
	price       bigint NOT NULL,
	tax_code    text NOT NULL,
	status      text NOT NULL,
	on_hand     text NOT NULL,
	available   text NOT NULL,
	version     bigint NOT NULL,
	PRIMARY KEY (store, sku)
) {{rowid}};
CREATE INDEX postings_open ON postings (store, state);
