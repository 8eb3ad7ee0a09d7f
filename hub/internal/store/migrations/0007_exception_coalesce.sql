-- A repeated exception coalesces into its open row: how often it was raised and when last.
-- UNIQUE (store, reason, key) of 0001 is what raisers coalesce on, on both engines.
ALTER TABLE exceptions ADD COLUMN count bigint NOT NULL DEFAULT 1;
ALTER TABLE exceptions ADD COLUMN last_seen {{time}} NOT NULL DEFAULT {{epoch}};
UPDATE exceptions SET last_seen = created_at;
