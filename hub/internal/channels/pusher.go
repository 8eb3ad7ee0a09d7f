package channels

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// ChannelOptions tune one channel's pushes; zero values take the connector's Limits and the
// defaults below.
type ChannelOptions struct {
	Coalesce time.Duration // wait this long after a first change before pushing (default 500ms)
	Rate     float64       // calls per second (default: the connector's Limits().Rate)
	Burst    int           // (default: the connector's Limits().Burst)
	Timeout  time.Duration // of one SetStock call (default 30s)
}

// Options configure a Pusher.
type Options struct {
	Source   Source
	State    State
	Log      *slog.Logger
	Registry prometheus.Registerer // nil: no metrics registered
	// Poll is how often each channel reads changes without a signal (default 5s).
	Poll time.Duration
	// MaxBackoff caps the back-off after failures (default 30s; it starts at 250ms).
	MaxBackoff time.Duration
	// Now is the clock (default time.Now).
	Now func() time.Time
}

// pageSize is how many figures one ChannelChanges call asks for.
const pageSize = 1000

// Pusher pushes each channel's changed figures to its connector. Build it with NewPusher, add
// every channel with Add, then Run it; Add after Run starts is an error.
type Pusher struct {
	o       Options
	m       *metrics
	chans   []*channel
	running atomic.Bool
}

// NewPusher checks o and makes a Pusher.
func NewPusher(o Options) (*Pusher, error) {
	if o.Source == nil || o.State == nil {
		return nil, errors.New("channels: pusher needs a Source and a State")
	}
	if o.Log == nil {
		o.Log = slog.Default()
	}
	if o.Poll <= 0 {
		o.Poll = 5 * time.Second
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = 30 * time.Second
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	p := &Pusher{o: o}
	p.m = newMetrics(p)
	if o.Registry != nil {
		if err := o.Registry.Register(p.m); err != nil {
			return nil, fmt.Errorf("channels: register metrics: %w", err)
		}
	}
	return p, nil
}

// Add adds a channel pushed through c.
func (p *Pusher) Add(c Connector, opt ChannelOptions) error {
	if p.running.Load() {
		return errors.New("channels: Add after Run")
	}
	for _, ch := range p.chans {
		if ch.name == c.Name() {
			return fmt.Errorf("channels: channel %q added twice", c.Name())
		}
	}
	lim := c.Limits()
	if opt.Coalesce <= 0 {
		opt.Coalesce = 500 * time.Millisecond
	}
	if opt.Rate <= 0 {
		opt.Rate = lim.Rate
	}
	if opt.Burst <= 0 {
		opt.Burst = max(lim.Burst, 1)
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 30 * time.Second
	}
	batch := max(lim.MaxBatch, 1)
	if lim.CallsPerLevel > 0 { // a batch must fit in one burst
		batch = max(1, min(batch, opt.Burst/lim.CallsPerLevel))
	}
	p.chans = append(p.chans, &channel{p: p, name: c.Name(), conn: c, opt: opt, lim: lim, batch: batch,
		bucket: newBucket(opt.Rate, opt.Burst), wake: make(chan struct{}, 1),
		log: p.o.Log.With("channel", c.Name())})
	return nil
}

// Run pushes until ctx is done; it returns nil on a normal stop. Each channel runs on its own
// goroutine, so a slow or hung channel delays only itself, and nothing here ever blocks the
// Source: its Changed signal is drained by one goroutine and passed on without waiting.
func (p *Pusher) Run(ctx context.Context) error {
	if !p.running.CompareAndSwap(false, true) {
		return errors.New("channels: Run called twice")
	}
	var wg sync.WaitGroup
	for _, ch := range p.chans {
		wg.Add(1)
		go func() { defer wg.Done(); ch.run(ctx) }()
	}
	wg.Add(1)
	go func() { defer wg.Done(); p.dispatch(ctx) }()
	wg.Wait()
	return nil
}

// dispatch passes every Changed signal to each channel without blocking. Changed is called
// once (the engine makes one subscription per call). Should the source close it, the channels
// go on by polling.
func (p *Pusher) dispatch(ctx context.Context) {
	c := p.o.Source.Changed()
	for {
		select {
		case <-ctx.Done():
			return
		case _, open := <-c:
			if !open {
				p.o.Log.Warn("The availability source closed its change signal; channels poll from now on.")
				return
			}
		}
		for _, ch := range p.chans {
			ch.poke()
		}
	}
}

// pendingFigure is a figure waiting to be pushed and when the Pusher first saw a change of it.
type pendingFigure struct {
	ChannelFigure
	seen time.Time
}

// channel is one channel's push loop state; only its goroutine touches the fields below mu.
type channel struct {
	p      *Pusher
	name   string
	conn   Connector
	opt    ChannelOptions
	lim    Limits
	batch  int
	bucket *bucket
	wake   chan struct{}
	log    *slog.Logger

	read      int64 // version read up to
	saved     int64 // cursor persisted
	shown     map[string]Shown
	pending   map[string]pendingFigure
	unsaved   []Shown   // pushed but not yet persisted
	windowEnd time.Time // when the current coalescing window closes
	notBefore time.Time // back-off or the channel's retry hint
	backoff   time.Duration
	loaded    bool

	oldest atomic.Int64 // unix nanoseconds of the oldest pending change (0: none), for the lag gauge
	npend  atomic.Int64
}

func (ch *channel) poke() {
	select {
	case ch.wake <- struct{}{}:
	default:
	}
}

func (ch *channel) run(ctx context.Context) {
	ch.pending = map[string]pendingFigure{}
	dirty := true
	poll := time.NewTicker(ch.p.o.Poll)
	defer poll.Stop()
	for ctx.Err() == nil {
		if !ch.loaded {
			if err := ch.load(ctx); err != nil {
				ch.log.Warn("Cannot read the channel's push state; retrying.", "err", err)
				ch.sleep(ctx, ch.fail())
				continue
			}
		}
		// With figures pending, changes are read only when the push is due (the newest figure
		// is all that is pushed), so a busy engine is not asked once per signal.
		if dirty && len(ch.pending) == 0 {
			dirty = !ch.read1(ctx)
		}
		ch.persist(ctx)
		ch.gauge()
		var due <-chan time.Time
		var timer *time.Timer
		if len(ch.pending) > 0 {
			at := ch.windowEnd
			if ch.notBefore.After(at) {
				at = ch.notBefore
			}
			timer = time.NewTimer(max(at.Sub(ch.p.o.Now()), 0))
			due = timer.C
		}
		select {
		case <-ctx.Done():
		case <-ch.wake:
			dirty = true
		case <-poll.C:
			dirty = true
		case <-due:
			if dirty {
				dirty = !ch.read1(ctx)
			}
			ch.push(ctx)
		}
		if timer != nil {
			timer.Stop()
		}
	}
}

// read1 reads the changes and reports whether it could.
func (ch *channel) read1(ctx context.Context) bool {
	if err := ch.readChanges(ctx); err != nil {
		if ctx.Err() == nil {
			ch.log.Warn("Cannot read availability changes; retrying at the next poll.", "err", err)
		}
		return false
	}
	return true
}

// sleep waits d or until ctx is done.
func (ch *channel) sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// fail grows the back-off and returns it.
func (ch *channel) fail() time.Duration {
	ch.backoff = min(max(ch.backoff*2, 250*time.Millisecond), ch.p.o.MaxBackoff)
	return ch.backoff
}

func (ch *channel) load(ctx context.Context) error {
	cursor, shown, err := ch.p.o.State.ChannelPushState(ctx, ch.name)
	if err != nil {
		return err
	}
	if shown == nil {
		shown = map[string]Shown{}
	}
	ch.read, ch.saved, ch.shown, ch.loaded = cursor, cursor, shown, true
	ch.log.Debug("Channel push state loaded.", "cursor", cursor, "skus", len(shown))
	return nil
}

// readChanges reads every figure changed since ch.read into pending, newest per SKU.
func (ch *channel) readChanges(ctx context.Context) error {
	now := ch.p.o.Now()
	for {
		figs, latest, err := ch.p.o.Source.ChannelChanges(ctx, ch.name, ch.read, pageSize)
		if err != nil {
			return fmt.Errorf("read changes of channel %s since %d: %w", ch.name, ch.read, err)
		}
		top := ch.read
		for _, f := range figs {
			top = max(top, f.Version)
			if f.Version <= ch.read {
				continue
			}
			old, had := ch.pending[f.SKU]
			if had && old.Version >= f.Version {
				continue
			}
			if !had {
				old.seen = now
			}
			if len(ch.pending) == 0 {
				ch.windowEnd = now.Add(ch.opt.Coalesce)
			}
			ch.pending[f.SKU] = pendingFigure{f, old.seen}
		}
		if len(figs) < pageSize || top <= ch.read {
			ch.read = max(top, latest)
			return nil
		}
		ch.read = top
	}
}

// cursor is the version up to which everything is pushed: just below the oldest pending figure.
func (ch *channel) cursor() int64 {
	c := ch.read
	for _, f := range ch.pending {
		c = min(c, f.Version-1)
	}
	return max(c, ch.saved)
}

// persist saves the cursor and the figures pushed since the last save.
func (ch *channel) persist(ctx context.Context) {
	c := ch.cursor()
	if c == ch.saved && len(ch.unsaved) == 0 {
		return
	}
	if err := ch.p.o.State.SaveChannelPush(ctx, ch.name, c, ch.unsaved); err != nil {
		if ctx.Err() == nil {
			ch.log.Warn("Cannot save the channel's push state; retrying.", "err", err)
		}
		return
	}
	ch.saved, ch.unsaved = c, nil
}

func (ch *channel) gauge() {
	var oldest time.Time
	for _, f := range ch.pending {
		if oldest.IsZero() || f.seen.Before(oldest) {
			oldest = f.seen
		}
	}
	if oldest.IsZero() {
		ch.oldest.Store(0)
	} else {
		ch.oldest.Store(oldest.UnixNano())
	}
	ch.npend.Store(int64(len(ch.pending)))
}

// push sends one batch of the oldest pending figures.
func (ch *channel) push(ctx context.Context) {
	list := make([]pendingFigure, 0, len(ch.pending))
	for sku, f := range ch.pending {
		units, err := Units(f.Available)
		if err != nil {
			ch.log.Warn("Figure is not a decimal number; not pushed.", "sku", sku, "available", f.Available, "err", err)
			ch.p.m.levels.WithLabelValues(ch.name, "rejected").Inc()
			delete(ch.pending, sku)
			continue
		}
		if s, ok := ch.shown[sku]; ok && s.Shown == strconv.FormatInt(units, 10) {
			delete(ch.pending, sku) // the channel already shows it
			ch.p.m.levels.WithLabelValues(ch.name, "unchanged").Inc()
			continue
		}
		list = append(list, f)
	}
	if len(list) == 0 {
		return
	}
	// Longest waiting first (pending since), not newest version: a SKU that changes all the time
	// keeps a fresh version and would otherwise wait behind calmer ones indefinitely.
	slices.SortFunc(list, func(a, b pendingFigure) int {
		if c := a.seen.Compare(b.seen); c != 0 {
			return c
		}
		return int(a.Version - b.Version)
	})
	list = list[:min(len(list), ch.batch)]
	levels := make([]Level, len(list))
	for i, f := range list {
		levels[i] = Level{SKU: f.SKU, Available: f.Available, Version: f.Version}
	}
	tokens := 1
	if ch.lim.CallsPerLevel > 0 {
		tokens = ch.lim.CallsPerLevel * len(levels)
	}
	if err := ch.bucket.wait(ctx, tokens); err != nil {
		return
	}
	cctx, cancel := context.WithTimeout(ctx, ch.opt.Timeout)
	start := time.Now()
	res, err := ch.conn.SetStock(cctx, levels)
	cancel()
	ch.p.m.seconds.WithLabelValues(ch.name).Observe(time.Since(start).Seconds())
	if err == nil && len(res) != len(levels) {
		err = fmt.Errorf("connector %s returned %d results for %d levels", ch.name, len(res), len(levels))
	}
	if err != nil {
		if ctx.Err() != nil {
			return
		}
		ch.callFailed(err, len(levels))
		return
	}
	now := ch.p.o.Now()
	var retry time.Duration
	transient := false
	for i, r := range res {
		f := list[i]
		var rl *RateLimitError
		switch {
		case r.Err == nil:
			s := Shown{SKU: f.SKU, Shown: r.Shown, Version: f.Version}
			ch.shown[f.SKU] = s
			ch.unsaved = append(ch.unsaved, s)
			delete(ch.pending, f.SKU)
			ch.p.m.levels.WithLabelValues(ch.name, "ok").Inc()
			ch.p.m.update.WithLabelValues(ch.name).Observe(now.Sub(f.seen).Seconds())
			if err := ch.p.o.Source.RecordShown(ctx, ch.name, f.SKU, r.Shown, now); err != nil && ctx.Err() == nil {
				ch.log.Warn("Cannot record what the channel shows.", "sku", f.SKU, "err", err)
			}
		case errors.As(r.Err, &rl):
			retry = max(retry, rl.RetryAfter)
			transient = true
			ch.p.m.levels.WithLabelValues(ch.name, "rate_limited").Inc()
		case errors.Is(r.Err, ErrRejected):
			delete(ch.pending, f.SKU)
			ch.p.m.levels.WithLabelValues(ch.name, "rejected").Inc()
			ch.log.Warn("Channel rejected a figure; not retried until it changes.", "sku", f.SKU, "available", f.Available, "err", r.Err)
		default:
			transient = true
			ch.p.m.levels.WithLabelValues(ch.name, "failed").Inc()
			ch.log.Info("Channel failed to set a figure; retrying.", "sku", f.SKU, "err", r.Err)
		}
	}
	switch {
	case retry > 0:
		ch.bucket.drain()
		ch.notBefore = now.Add(retry)
		ch.p.m.calls.WithLabelValues(ch.name, "rate_limited").Inc()
	case transient:
		ch.notBefore = now.Add(ch.fail())
		ch.p.m.calls.WithLabelValues(ch.name, "partial").Inc()
	default:
		ch.backoff = 0
		ch.notBefore = time.Time{}
		ch.p.m.calls.WithLabelValues(ch.name, "ok").Inc()
	}
	ch.persist(ctx)
	if len(ch.pending) > 0 { // the rest goes out as soon as the bucket allows
		ch.poke()
	}
}

// callFailed handles a SetStock call that failed as a whole.
func (ch *channel) callFailed(err error, n int) {
	now := ch.p.o.Now()
	var rl *RateLimitError
	if errors.As(err, &rl) {
		ch.bucket.drain()
		wait := rl.RetryAfter
		if wait <= 0 {
			wait = ch.fail()
		}
		ch.notBefore = now.Add(wait)
		ch.p.m.calls.WithLabelValues(ch.name, "rate_limited").Inc()
		ch.p.m.levels.WithLabelValues(ch.name, "rate_limited").Add(float64(n))
		ch.log.Info("Channel is rate limiting; waiting.", "retry_after", wait)
		return
	}
	wait := ch.fail()
	ch.notBefore = now.Add(wait)
	ch.p.m.calls.WithLabelValues(ch.name, "failed").Inc()
	ch.p.m.levels.WithLabelValues(ch.name, "failed").Add(float64(n))
	ch.log.Warn("Channel push failed; retrying with back-off.", "err", err, "backoff", wait)
}
