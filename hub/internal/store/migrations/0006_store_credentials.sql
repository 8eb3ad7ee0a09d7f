-- Store credential lifecycle: a rotated-out password stays valid until previous_until; a store
-- is active, disabled or removed (records kept, credentials cleared); mosquitto_hash is the
-- current password as an external Mosquitto's password_file takes it ('' for stores enrolled
-- before it existed); credentials_at tells the running hub which stores to recheck.
ALTER TABLE stores ADD COLUMN state text NOT NULL DEFAULT 'active';
ALTER TABLE stores ADD COLUMN previous_hash text NOT NULL DEFAULT '';
ALTER TABLE stores ADD COLUMN previous_until {{time}} NOT NULL DEFAULT {{epoch}};
ALTER TABLE stores ADD COLUMN mosquitto_hash text NOT NULL DEFAULT '';
ALTER TABLE stores ADD COLUMN credentials_at {{time}} NOT NULL DEFAULT {{epoch}};
-- Secrets the hub mints for itself (the external broker probe account's password).
CREATE TABLE hub_secrets (
	name  text PRIMARY KEY,
	value text NOT NULL
);
