-- One-time enrolment tokens (`stores add --enroll-token`): only the token's SHA-256 is kept;
-- used_at is the epoch until the token is redeemed, once.
CREATE TABLE enroll_tokens (
	hash       text PRIMARY KEY,
	store      text NOT NULL REFERENCES stores(id),
	created_at {{time}} NOT NULL,
	expires_at {{time}} NOT NULL,
	used_at    {{time}} NOT NULL DEFAULT {{epoch}},
	used_from  text NOT NULL DEFAULT ''
) {{rowid}};
CREATE INDEX enroll_tokens_store ON enroll_tokens (store);
-- Signed configuration pushes (`config push`), one version per store and push; manifest is the
-- protocol.SignedManifest JSON the hub relays unchanged. state: pending until the agent
-- reports applied, refused or rolled_back; superseded when a newer push was made before.
CREATE TABLE config_pushes (
	store       text NOT NULL REFERENCES stores(id),
	version     bigint NOT NULL,
	command_id  text NOT NULL UNIQUE,
	overrides   text NOT NULL,
	manifest    text NOT NULL,
	state       text NOT NULL,
	detail      text NOT NULL DEFAULT '',
	created_at  {{time}} NOT NULL,
	expires_at  {{time}} NOT NULL,
	reported_at {{time}} NOT NULL DEFAULT {{epoch}},
	PRIMARY KEY (store, version)
) {{rowid}};
