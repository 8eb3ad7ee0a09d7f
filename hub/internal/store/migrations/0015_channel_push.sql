-- Channel pushes (hub/internal/channels): per channel the availability version up to which
-- every figure was pushed (or found already shown), and per (channel, SKU) the whole-unit figure
-- the channel was last told and the engine version it came from. A restarted hub resumes from
-- the cursor and skips SKUs whose figure the channel already shows.
CREATE TABLE channel_push (
	channel    text PRIMARY KEY,
	cursor     bigint NOT NULL DEFAULT 0,
	updated_at {{time}} NOT NULL DEFAULT {{epoch}}
);
CREATE TABLE channel_shown (
	channel   text NOT NULL,
	sku       text NOT NULL,
	shown     text NOT NULL,
	version   bigint NOT NULL,
	pushed_at {{time}} NOT NULL DEFAULT {{epoch}},
	PRIMARY KEY (channel, sku)
);
