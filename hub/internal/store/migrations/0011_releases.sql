-- Signed self-update: published releases of the agent (the signed manifest as given, the binary
-- kept as a file named by its sha256 under the data dir's releases/), rollouts of a version in
-- waves, and each targeted store's state in its rollout. A store's maintenance window
-- ('' = the hub's rollouts.maintenance_window) is in its time_zone.
ALTER TABLE stores ADD COLUMN maintenance text NOT NULL DEFAULT '';
CREATE TABLE releases (
	id                 {{id}},
	version            text NOT NULL,
	os                 text NOT NULL,
	arch               text NOT NULL,
	channel            text NOT NULL,
	sha256             text NOT NULL,
	size               bigint NOT NULL,
	min_from           text NOT NULL DEFAULT '',
	manifest_body      text NOT NULL,
	manifest_signature text NOT NULL,
	file               text NOT NULL,
	expires            {{time}} NOT NULL,
	published_at       {{time}} NOT NULL,
	published_by       text NOT NULL DEFAULT '',
	UNIQUE (version, os, arch, channel)
);
CREATE TABLE rollouts (
	id           {{id}},
	version      text NOT NULL,
	os           text NOT NULL DEFAULT '',
	arch         text NOT NULL DEFAULT '',
	channel      text NOT NULL DEFAULT '',
	max_failures text NOT NULL,
	state        text NOT NULL,
	reason       text NOT NULL DEFAULT '',
	wave         integer NOT NULL DEFAULT 0,
	created_by   text NOT NULL DEFAULT '',
	created_at   {{time}} NOT NULL,
	updated_at   {{time}} NOT NULL
);
CREATE INDEX rollouts_state ON rollouts (state, id);
CREATE TABLE rollout_waves (
	rollout     bigint NOT NULL REFERENCES rollouts(id),
	wave        integer NOT NULL,
	target      text NOT NULL,
	stores      integer NOT NULL,
	started_at  {{time}} NOT NULL DEFAULT {{epoch}},
	finished_at {{time}} NOT NULL DEFAULT {{epoch}},
	PRIMARY KEY (rollout, wave)
);
CREATE TABLE rollout_stores (
	rollout    bigint NOT NULL REFERENCES rollouts(id),
	store      text NOT NULL,
	wave       integer NOT NULL,
	release    bigint NOT NULL REFERENCES releases(id),
	state      text NOT NULL,
	from_version text NOT NULL DEFAULT '',
	command_id text NOT NULL DEFAULT '',
	attempts   integer NOT NULL DEFAULT 0,
	tries      integer NOT NULL DEFAULT 0,
	sent_at    {{time}} NOT NULL DEFAULT {{epoch}},
	updated_at {{time}} NOT NULL,
	detail     text NOT NULL DEFAULT '',
	PRIMARY KEY (rollout, store)
);
-- One hub replica at a time steps the rollouts: it holds this lease and renews it each tick.
CREATE TABLE rollout_lease (
	name  text PRIMARY KEY,
	owner text NOT NULL,
	until {{time}} NOT NULL
);
