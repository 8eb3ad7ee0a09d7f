-- Availability to sell (issue 14), kept incrementally in the transactions that apply records,
-- finish postings, store ERP pulls and change reservations (availability.go). Quantities are
-- exact decimals in millionths (protocol.Qty) as bigint, so that SQL adds them atomically.
-- avail_stock: per store and SKU, what the ERP's on-hand says, what it does not reflect yet
-- (sales less returns whose posting is pending, rejected, or done after the last pull) and
-- what open channel reservations hold.
CREATE TABLE avail_stock (
	store    text NOT NULL,
	sku      text NOT NULL,
	on_hand  bigint NOT NULL DEFAULT 0,
	unposted bigint NOT NULL DEFAULT 0,
	reserved bigint NOT NULL DEFAULT 0,
	PRIMARY KEY (sku, store)
) {{rowid}};
-- avail_pending: the lines behind avail_stock.unposted, per posting (store, epoch, seq);
-- posted_at is set when the ERP took the posting; a later pull removes them.
CREATE TABLE avail_pending (
	store     text NOT NULL,
	epoch     text NOT NULL,
	seq       bigint NOT NULL,
	sku       text NOT NULL,
	quantity  bigint NOT NULL,
	posted_at {{time}} NOT NULL DEFAULT {{epoch}},
	PRIMARY KEY (store, epoch, seq, sku)
) {{rowid}};
CREATE INDEX avail_pending_posted ON avail_pending (store, posted_at);
-- avail_skus: the version of each SKU's figures (the change feed reads it by version).
CREATE TABLE avail_skus (
	sku     text PRIMARY KEY,
	version bigint NOT NULL
) {{rowid}};
CREATE INDEX avail_skus_version ON avail_skus (version);
-- avail_counter: the one row holding the last version handed out; its row lock orders commits.
CREATE TABLE avail_counter (
	id      integer PRIMARY KEY,
	version bigint NOT NULL
);
INSERT INTO avail_counter (id, version) VALUES (1, 0);
-- avail_reservations: channel orders holding stock until released, fulfilled or expired.
CREATE TABLE avail_reservations (
	id         {{id}},
	channel    text NOT NULL,
	order_id   text NOT NULL,
	body_hash  text NOT NULL,
	state      text NOT NULL,
	lines      {{json}} NOT NULL,
	created_at {{time}} NOT NULL,
	updated_at {{time}} NOT NULL,
	UNIQUE (channel, order_id)
);
CREATE INDEX avail_reservations_state ON avail_reservations (state, created_at);
-- avail_safety: safety stock set through the API (scope default, sku or category), over hub.yaml.
CREATE TABLE avail_safety (
	channel  text NOT NULL,
	scope    text NOT NULL,
	key      text NOT NULL,
	quantity bigint NOT NULL,
	PRIMARY KEY (channel, scope, key)
) {{rowid}};
-- avail_shown: what each channel displays per SKU, and since when it differs from the truth.
CREATE TABLE avail_shown (
	channel     text NOT NULL,
	sku         text NOT NULL,
	shown       bigint NOT NULL,
	at          {{time}} NOT NULL,
	PRIMARY KEY (channel, sku)
) {{rowid}};
-- avail_feed: how far each webhook subscriber has been sent.
CREATE TABLE avail_feed (
	subscriber text PRIMARY KEY,
	version    bigint NOT NULL
);
-- postings.body: the record of a posting that has no row in records (a fulfilled channel order).
ALTER TABLE postings ADD COLUMN body {{json}};
