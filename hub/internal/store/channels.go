package store

import (
	"context"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
)

// ChannelShown is a SKU's whole-unit figure as last pushed to a sales channel, and the
// availability version it came from.
type ChannelShown struct {
	SKU     string
	Shown   string
	Version int64
}

// ChannelPushState returns a channel's push cursor (the availability version up to which every
// figure was pushed; 0 for a channel never pushed) and what it was last told per SKU.
func (s *DB) ChannelPushState(ctx context.Context, channel string) (cursor int64, shown map[string]ChannelShown, err error) {
	shown = map[string]ChannelShown{}
	err = s.read(ctx, func(t tx) error {
		if err := t.queryRow(ctx, `SELECT COALESCE(MAX(cursor), 0) FROM channel_push WHERE channel = ?`, channel).Scan(&cursor); err != nil {
			return err
		}
		rs, err := t.query(ctx, `SELECT sku, shown, version FROM channel_shown WHERE channel = ?`, channel)
		list, err := scanAll(rs, err, func(r rows, c *ChannelShown) error { return r.Scan(&c.SKU, &c.Shown, &c.Version) })
		for _, c := range list {
			shown[c.SKU] = c
		}
		return err
	})
	if err != nil {
		return 0, nil, fmt.Errorf("read push state of channel %s: %w", channel, err)
	}
	return cursor, shown, nil
}

// SaveChannelPush records, in one transaction, the figures a channel now shows and its push
// cursor. The cursor never goes back: a smaller one than stored leaves the stored one; a shown
// figure older (by version) than the stored one for its SKU is ignored.
func (s *DB) SaveChannelPush(ctx context.Context, channel string, cursor int64, shown []ChannelShown) error {
	now := s.ts(clock.Now())
	err := s.write(ctx, func(t tx) error {
		for _, c := range shown {
			if _, err := t.exec(ctx, `INSERT INTO channel_shown (channel, sku, shown, version, pushed_at) VALUES (?, ?, ?, ?, ?)
				ON CONFLICT (channel, sku) DO UPDATE SET shown = excluded.shown, version = excluded.version, pushed_at = excluded.pushed_at
				WHERE channel_shown.version <= excluded.version`, channel, c.SKU, c.Shown, c.Version, now); err != nil {
				return err
			}
		}
		_, err := t.exec(ctx, `INSERT INTO channel_push (channel, cursor, updated_at) VALUES (?, ?, ?)
			ON CONFLICT (channel) DO UPDATE SET cursor = excluded.cursor, updated_at = excluded.updated_at
			WHERE channel_push.cursor <= excluded.cursor`, channel, cursor, now)
		return err
	})
	return wrapf(err, "save push state of channel %s", channel)
}
