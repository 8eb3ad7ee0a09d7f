-- Per store-day figures a close reads instead of decoding every record (issue 11 target 4).
-- They are kept up to date in the transaction that applies the records (summary.go) and rebuilt
-- from the stored records right after this migration (migrate.go).
-- day_keys: the first applied record of each business key with a receipt (Z and X reports
-- excepted); number is the receipt's number, -1 when it is not numeric.
CREATE TABLE day_keys (
	key           text PRIMARY KEY,
	store         text NOT NULL,
	business_date text NOT NULL,
	terminal      text NOT NULL,
	kind          text NOT NULL,
	receipt       text NOT NULL,
	number        bigint NOT NULL,
	epoch         text NOT NULL,
	seq           bigint NOT NULL
) {{rowid}};
CREATE INDEX day_keys_day ON day_keys (store, business_date, terminal, number);
-- day_z: the Z reports of each store-day.
CREATE TABLE day_z (
	store         text NOT NULL,
	business_date text NOT NULL,
	epoch         text NOT NULL,
	seq           bigint NOT NULL,
	PRIMARY KEY (store, business_date, epoch, seq)
) {{rowid}};
-- day_sums: per store-day and terminal, sums and counts of the records a close counts (item:
-- t:TENDER, x:TAX, net, n, postable, pkeys, returns, slow, abs; see summary.go).
CREATE TABLE day_sums (
	store         text NOT NULL,
	business_date text NOT NULL,
	terminal      text NOT NULL,
	item          text NOT NULL,
	amount        bigint NOT NULL,
	PRIMARY KEY (store, business_date, terminal, item)
) {{rowid}};
CREATE INDEX postings_close ON postings (store, business_date, state, total);
