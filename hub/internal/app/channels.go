package app

import (
	"context"
	"time"

	"github.com/lanebridge/lanebridge/hub/internal/availability"
	"github.com/lanebridge/lanebridge/hub/internal/channels"
)

// availSource is the availability engine as the channel pusher reads it.
type availSource struct{ e *availability.Engine }

func (a availSource) ChannelChanges(ctx context.Context, channel string, since int64, limit int) ([]channels.ChannelFigure, int64, error) {
	figs, latest, err := a.e.ChannelChanges(ctx, channel, since, limit)
	out := make([]channels.ChannelFigure, len(figs))
	for i, f := range figs {
		out[i] = channels.ChannelFigure{Channel: f.Channel, SKU: f.SKU, Available: f.Available, Version: f.Version}
	}
	return out, latest, err
}

func (a availSource) Changed() <-chan struct{} { return a.e.Changed() }

func (a availSource) RecordShown(ctx context.Context, channel, sku, shown string, at time.Time) error {
	return a.e.RecordShown(ctx, channel, sku, shown, at)
}
