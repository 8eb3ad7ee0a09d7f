// Package channels pushes available-to-sell figures to sales channels (web shops and
// marketplaces): one small Connector interface with an adapter per platform (Vendure, and
// Shopify- and Amazon-shaped APIs), one contract test suite that every adapter passes, and a
// Pusher that reads the availability engine's per-channel changes, coalesces them per SKU,
// respects each channel's rate limit, retries with back-off and persists what it pushed so a
// restarted hub, or a channel that was down, gets the latest figure rather than a replay.
//
// Basics: the availability engine (the Source) owns the figures and their versions; a channel
// owns what it shows. The Pusher never blocks the engine: it is woken by Source.Changed and
// reads at its own pace, one goroutine per channel, so a hung channel delays only itself.
//
// Caveats: channels hold whole units, so a decimal figure is pushed rounded down (2.5 → 2) and
// never below zero; the figure recorded as shown is that integer.
package channels

import (
	"context"
	"errors"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// Level is one SKU's figure to set on a channel.
type Level struct {
	SKU       string
	Available string // decimal text, as the engine computed it
	Version   int64  // the engine's version of this figure
}

// Result is the outcome of one Level of a SetStock call, in the order of the call's levels.
// Err is nil when the channel now shows Shown; a *RateLimitError when the channel refused for
// its rate limit (retry after the hint); wrapping ErrRejected when the channel will never
// accept this item as it is (unknown SKU, blocked listing): retrying does not help; any other
// error is transient (retried with back-off).
type Result struct {
	SKU   string
	Shown string // the whole-unit figure the channel now shows (on success)
	Err   error
}

// Limits is what a connector tells the Pusher about its channel.
type Limits struct {
	// Rate is the sustained calls per second the channel allows, Burst how many at once.
	Rate  float64
	Burst int
	// MaxBatch is the most levels one SetStock call takes (>= 1).
	MaxBatch int
	// CallsPerLevel is how many API calls one level costs (1 for per-item APIs, 0 for a
	// batch API that costs one call per SetStock): the Pusher takes that many tokens.
	CallsPerLevel int
}

// Connector sets stock figures on one sales channel.
//
// SetStock sets each level and returns one Result per level, in order. A non-nil error means
// the whole call failed (channel down, authentication refused, a *RateLimitError for the
// call): nothing is known to be set. SetStock must return when ctx is done. It owns nothing
// of levels after it returns. Implementations are safe for concurrent use, though the Pusher
// calls each one from one goroutine.
type Connector interface {
	Name() string // the channel's name (availability.channels[].name)
	Limits() Limits
	SetStock(ctx context.Context, levels []Level) ([]Result, error)
}

// ErrRejected marks a per-item refusal that a retry does not cure.
var ErrRejected = errors.New("rejected by the channel")

// RateLimitError is a refusal for the channel's rate limit (HTTP 429). RetryAfter is the
// channel's hint (Retry-After, or one derived from its rate-limit header), 0 when it gave none.
type RateLimitError struct {
	RetryAfter time.Duration
	Detail     string
}

func (e *RateLimitError) Error() string {
	return fmt.Sprintf("rate limited by the channel (retry after %s): %s", e.RetryAfter, e.Detail)
}

// Units is the whole-unit figure a channel shows for a decimal available figure: rounded
// down, never below zero. An unparsable figure is an error naming it.
func Units(available string) (int64, error) {
	r, ok := new(big.Rat).SetString(strings.TrimSpace(available))
	if !ok {
		return 0, fmt.Errorf("available %q is not a decimal number", available)
	}
	if r.Sign() <= 0 {
		return 0, nil
	}
	q := new(big.Int).Quo(r.Num(), r.Denom()) // truncation = floor for positive numbers
	if !q.IsInt64() {
		return 0, fmt.Errorf("available %q is too large", available)
	}
	return q.Int64(), nil
}

// rejected wraps ErrRejected with the channel's reason.
func rejected(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrRejected, fmt.Sprintf(format, a...))
}
