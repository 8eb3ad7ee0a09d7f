-- Alerts: a store's trading hours and IANA time zone ('' = the hub's alerts.trading_hours and
-- alerts.time_zone); raised and cleared conditions of the fleet. At most one alert of a
-- (kind, store, terminal) is open; a cleared one stays as history.
ALTER TABLE stores ADD COLUMN trading_hours text NOT NULL DEFAULT '';
ALTER TABLE stores ADD COLUMN time_zone text NOT NULL DEFAULT '';
CREATE TABLE alerts (
	id             {{id}},
	kind           text NOT NULL,
	store          text NOT NULL,
	terminal       text NOT NULL DEFAULT '',
	state          text NOT NULL,
	since          {{time}} NOT NULL,
	cleared_at     {{time}} NOT NULL DEFAULT {{epoch}},
	detail         text NOT NULL DEFAULT '',
	threshold      text NOT NULL DEFAULT '',
	last_evaluated {{time}} NOT NULL DEFAULT {{epoch}}
);
CREATE UNIQUE INDEX alerts_open ON alerts (kind, store, terminal) WHERE state = 'open';
CREATE INDEX alerts_store ON alerts (store, id);
