package channels

import (
	"context"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/store"
)

// ChannelFigure is one SKU's available figure for one channel, as the availability engine
// versions it.
type ChannelFigure struct {
	Channel, SKU string
	Available    string // decimal text
	Version      int64
}

// Source is the availability engine as the Pusher consumes it.
//
// ChannelChanges returns the figures of the channel whose version is > sinceVersion, in
// version order, at most limit; latest is the version the answer covers (pass it as the next
// sinceVersion when fewer than limit came back). The Pusher keeps only the newest figure per
// SKU, so a source may return one figure per SKU or every change.
//
// Changed returns a channel signalled (a non-blocking send, buffered) after figures changed;
// the Pusher calls it once and also polls, so a missed signal only delays.
//
// RecordShown records what a channel now shows for a SKU (for drift alerts).
type Source interface {
	ChannelChanges(ctx context.Context, channel string, sinceVersion int64, limit int) (figs []ChannelFigure, latest int64, err error)
	Changed() <-chan struct{}
	RecordShown(ctx context.Context, channel, sku, shown string, at time.Time) error
}

// Shown is a SKU's figure as last pushed to a channel.
type Shown = store.ChannelShown

// State persists, per channel, the last engine version fully pushed and per SKU what the
// channel was last told (store.DB implements it, migration 0015). SaveChannelPush writes the
// cursor and the shown figures in one transaction.
type State interface {
	ChannelPushState(ctx context.Context, channel string) (cursor int64, shown map[string]Shown, err error)
	SaveChannelPush(ctx context.Context, channel string, cursor int64, shown []Shown) error
}
