-- ERP outbox, agent commands, daily closes, exception lifecycle.
-- postings.posted_at and commands.result/result_at are nullable here; SQLite files created
-- before the single store (schema 3 and older) keep them NOT NULL DEFAULT 0 or '', so code
-- never writes NULL to them and reads NULL, 0, the epoch and '' alike as "not set".
CREATE TABLE postings (
	id            {{id}},
	key           text NOT NULL UNIQUE,
	store         text NOT NULL,
	terminal      text NOT NULL,
	business_date text NOT NULL,
	receipt       text NOT NULL,
	kind          text NOT NULL,
	epoch         text NOT NULL,
	seq           bigint NOT NULL,
	content_hash  text NOT NULL,
	total         bigint NOT NULL,
	state         text NOT NULL,
	attempts      integer NOT NULL DEFAULT 0,
	next_at       {{time}} NOT NULL,
	lease_owner   text NOT NULL DEFAULT '',
	lease_until   {{time}} NOT NULL DEFAULT {{epoch}},
	ref           text NOT NULL DEFAULT '',
	last_error    text NOT NULL DEFAULT '',
	created_at    {{time}} NOT NULL,
	updated_at    {{time}} NOT NULL,
	posted_at     {{time}}
);
CREATE INDEX postings_due ON postings (state, next_at);
CREATE INDEX postings_day ON postings (store, business_date);
CREATE TABLE commands (
	id         text PRIMARY KEY,
	store      text NOT NULL,
	body       {{json}} NOT NULL,
	created_at {{time}} NOT NULL,
	result     {{json}},
	result_at  {{time}}
);
CREATE TABLE closes (
	store         text NOT NULL,
	business_date text NOT NULL,
	state         text NOT NULL,
	body          {{json}} NOT NULL,
	closed_at     {{time}} NOT NULL,
	PRIMARY KEY (store, business_date)
);
ALTER TABLE exceptions ADD COLUMN updated_by text NOT NULL DEFAULT '';
ALTER TABLE exceptions ADD COLUMN comment text NOT NULL DEFAULT '';
