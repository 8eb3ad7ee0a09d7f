-- Operators of the web console and API, API tokens, login sessions and the audit log.
-- stores is a JSON array of store ids the principal is limited to; '' is every store.
-- disabled_at and expires_at are the epoch for "not set". Only hashes of secrets are kept:
-- argon2id for passwords, SHA-256 for tokens and session ids.
CREATE TABLE operators (
	name          text PRIMARY KEY,
	role          text NOT NULL,
	stores        text NOT NULL DEFAULT '',
	password_hash text NOT NULL,
	created_at    {{time}} NOT NULL,
	disabled_at   {{time}} NOT NULL DEFAULT {{epoch}}
) {{rowid}};
CREATE TABLE api_tokens (
	name       text PRIMARY KEY,
	hash       text NOT NULL UNIQUE,
	role       text NOT NULL,
	stores     text NOT NULL DEFAULT '',
	created_at {{time}} NOT NULL,
	expires_at {{time}} NOT NULL DEFAULT {{epoch}}
) {{rowid}};
CREATE TABLE sessions (
	id_hash    text PRIMARY KEY,
	username   text NOT NULL REFERENCES operators (name) ON DELETE CASCADE,
	csrf_token text NOT NULL,
	created_at {{time}} NOT NULL,
	seen_at    {{time}} NOT NULL
) {{rowid}};
CREATE INDEX sessions_user ON sessions (username);
CREATE TABLE audit (
	id      {{id}},
	at      {{time}} NOT NULL,
	actor   text NOT NULL,
	action  text NOT NULL,
	target  text NOT NULL,
	detail  text NOT NULL,
	remote  text NOT NULL,
	outcome text NOT NULL
);
