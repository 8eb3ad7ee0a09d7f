package app

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
)

// part is one of the hub's long-running pieces (broker, ingest, posting, ...). Its run serves
// until ctx ends and then returns nil once it has stopped; an error, or nil before ctx ended, is
// a failure that stops the whole hub.
type part struct {
	name string
	run  func(ctx context.Context) error
}

// runParts runs every part until ctx ends or one of them fails; the first failure cancels the
// others. It returns once every part has returned, with the first failure prefixed by its
// part's name ("posting: ..."), or nil when ctx ended and every part stopped cleanly. A part
// that returns context.Canceled after the stop is a clean stop too.
func runParts(ctx context.Context, log *slog.Logger, parts []part) error {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	type result struct {
		name string
		err  error
	}
	results := make(chan result, len(parts))
	for _, p := range parts {
		go func() { results <- result{p.name, p.run(ctx)} }()
	}
	var first error
	for range parts {
		r := <-results
		err := r.err
		switch {
		case err == nil && ctx.Err() == nil:
			err = errors.New("stopped unexpectedly")
		case errors.Is(err, context.Canceled) && ctx.Err() != nil:
			err = nil
		}
		if err == nil {
			continue
		}
		log.Error("hub part failed", "part", r.name, "err", err)
		if first == nil {
			first = fmt.Errorf("%s: %w", r.name, err)
			cancel()
		}
	}
	return first
}
