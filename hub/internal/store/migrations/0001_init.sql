-- Stores, their record streams, applied records, agent status and exceptions.
CREATE TABLE stores (
	id            text PRIMARY KEY,
	password_hash text NOT NULL,
	created_at    {{time}} NOT NULL
);
CREATE TABLE streams (
	id              {{id}},
	store           text NOT NULL REFERENCES stores(id),
	epoch           text NOT NULL,
	applied_through bigint NOT NULL DEFAULT 0,
	created_at      {{time}} NOT NULL,
	updated_at      {{time}} NOT NULL,
	UNIQUE (store, epoch)
);
CREATE TABLE records (
	store         text NOT NULL,
	epoch         text NOT NULL,
	seq           bigint NOT NULL,
	kind          text NOT NULL,
	terminal      text NOT NULL,
	receipt       text NOT NULL,
	business_date text NOT NULL,
	total         bigint NOT NULL,
	hash          text NOT NULL,
	body          {{json}} NOT NULL,
	applied_at    {{time}} NOT NULL,
	PRIMARY KEY (store, epoch, seq)
) {{rowid}};
CREATE INDEX records_day ON records (store, business_date);
CREATE TABLE status (
	store text PRIMARY KEY REFERENCES stores(id),
	body  {{json}} NOT NULL,
	at    {{time}} NOT NULL
);
CREATE TABLE exceptions (
	id         {{id}},
	store      text NOT NULL,
	reason     text NOT NULL,
	key        text NOT NULL,
	detail     text NOT NULL,
	state      text NOT NULL,
	created_at {{time}} NOT NULL,
	updated_at {{time}} NOT NULL,
	UNIQUE (store, reason, key)
);
CREATE INDEX exceptions_state ON exceptions (state, id);
