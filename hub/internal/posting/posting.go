// Package posting drives the ERP outbox: a Poster claims due postings from the hub's store,
// asks the ERP whether it already holds each one (Find), posts the rest, and records the
// outcome. Ingest only enqueues (in the transaction that stores a record), so a slow or down
// ERP never blocks ingest: postings wait in the outbox.
//
// # Exactly once
//
//   - The outbox holds one posting per business key (unique constraint).
//   - A claim is a lease: while it runs no other poster (hub replica) gets the posting. Each
//     ERP call is bounded by half the lease, so a lease never expires under a live call.
//   - Find before Post: a posting the ERP completed just before a crash (ERP success, our
//     commit lost) is found and marked done instead of being posted again.
//
// Failures are retried with exponential backoff (Options.MinBackoff doubling up to MaxBackoff,
// ±20 % jitter); a permanent rejection (erp.ErrRejected) marks the posting rejected and raises
// an erp_rejected exception carrying the ERP's message, until someone re-posts it.
package posting

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"github.com/lanebridge/lanebridge/hub/internal/clock"
	"log/slog"
	"math"
	mrand "math/rand/v2"
	"os"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lanebridge/lanebridge/hub/internal/erp"
	"github.com/lanebridge/lanebridge/hub/internal/store"
)

// Outbox is the part of the hub's store a Poster works on.
type Outbox interface {
	// ClaimPostings leases up to limit due pending postings to owner, oldest first, with their
	// records.
	ClaimPostings(ctx context.Context, owner string, lease time.Duration, limit int) ([]store.Posting, error)
	// FinishPosting records the outcome of a claimed posting and ends the lease
	// (store.ErrLeaseLost when owner no longer holds it).
	FinishPosting(ctx context.Context, id int64, owner string, o store.PostingOutcome) error
}

// Options configure a Poster.
type Options struct {
	Owner      string        // lease owner id; default host-pid-random
	Lease      time.Duration // default 2 min
	Batch      int           // postings claimed at once; default 20
	Rate       float64       // postings per second at most; 0 = unlimited
	Poll       time.Duration // idle wait between claims; default 1 s
	MinBackoff time.Duration // default 2 s
	MaxBackoff time.Duration // default 10 min
	Logger     *slog.Logger  // nil discards
	Registry   prometheus.Registerer
}

// Poster posts the outbox to one ERP connector. Run one per hub process.
type Poster struct {
	ob   Outbox
	conn erp.Connector
	o    Options
	log  *slog.Logger
	lim  limiter
	m    struct {
		outcomes *prometheus.CounterVec
		seconds  prometheus.Histogram
	}
}

// NewOwner returns a lease owner id unique to this process.
func NewOwner() string {
	host, _ := os.Hostname()
	b := make([]byte, 4)
	rand.Read(b)
	return fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b))
}

// New returns a Poster.
func New(ob Outbox, conn erp.Connector, o Options) *Poster {
	if o.Owner == "" {
		o.Owner = NewOwner()
	}
	if o.Lease <= 0 {
		o.Lease = 2 * time.Minute
	}
	if o.Batch <= 0 {
		o.Batch = 20
	}
	if o.Poll <= 0 {
		o.Poll = time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 2 * time.Second
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(10*time.Minute, o.MinBackoff)
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	p := &Poster{ob: ob, conn: conn, o: o, log: o.Logger.With("component", "posting"), lim: limiter{rate: o.Rate}}
	p.m.outcomes = prometheus.NewCounterVec(prometheus.CounterOpts{Name: "lanebridge_hub_erp_postings_total",
		Help: "ERP posting outcomes: posted, found (already in the ERP), retry, rejected."}, []string{"outcome"})
	p.m.seconds = prometheus.NewHistogram(prometheus.HistogramOpts{Name: "lanebridge_hub_erp_post_seconds",
		Help: "Time of one ERP post call.", Buckets: prometheus.ExponentialBuckets(0.01, 2, 14)})
	if o.Registry != nil {
		o.Registry.MustRegister(p.m.outcomes, p.m.seconds)
	}
	return p
}

// Owner returns the lease owner id.
func (p *Poster) Owner() string { return p.o.Owner }

// Run posts until ctx ends. Store errors are logged and retried after Poll.
func (p *Poster) Run(ctx context.Context) error {
	for {
		n, err := p.Once(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if err != nil {
			p.log.Warn("posting round failed", "err", err)
		}
		if n == 0 || err != nil {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(p.o.Poll):
			}
		}
	}
}

// Once claims one batch and settles it; it returns how many postings it claimed.
func (p *Poster) Once(ctx context.Context) (int, error) {
	claimed, err := p.ob.ClaimPostings(ctx, p.o.Owner, p.o.Lease, p.o.Batch)
	if err != nil {
		return 0, err
	}
	if len(claimed) == 0 {
		return 0, nil
	}
	var todo []store.Posting
	for _, ps := range claimed {
		if ps.Record == nil {
			p.finish(ctx, ps, p.retry(ps, errors.New("record not stored at the hub (awaiting replay)")))
			continue
		}
		cctx, cancel := context.WithTimeout(ctx, p.callTimeout())
		ref, found, err := p.conn.Find(cctx, ps.Key)
		cancel()
		switch {
		case err != nil && ctx.Err() != nil:
			return len(claimed), p.release([]store.Posting{ps})
		case err != nil:
			p.finish(ctx, ps, p.failure(ps, fmt.Errorf("find: %w", err)))
		case found:
			p.m.outcomes.WithLabelValues("found").Inc()
			p.finish(ctx, ps, store.PostingOutcome{Done: true, Ref: ref})
		default:
			todo = append(todo, ps)
		}
	}
	if len(todo) == 0 {
		return len(claimed), nil
	}
	if bp, ok := p.conn.(erp.BatchPoster); ok {
		if err := p.lim.wait(ctx, len(todo)); err != nil {
			return len(claimed), p.release(todo)
		}
		batch := make([]erp.Posting, len(todo))
		for i, t := range todo {
			batch[i] = erp.Posting{Key: t.Key, Record: *t.Record}
		}
		cctx, cancel := context.WithTimeout(ctx, p.callTimeout())
		start := time.Now()
		refs, err := bp.PostBatch(cctx, batch)
		cancel()
		p.m.seconds.Observe(time.Since(start).Seconds())
		for i, t := range todo {
			if err != nil {
				p.finish(ctx, t, p.failure(t, err))
				continue
			}
			p.m.outcomes.WithLabelValues("posted").Inc()
			p.finish(ctx, t, store.PostingOutcome{Done: true, Ref: refs[i]})
		}
		return len(claimed), nil
	}
	for i, t := range todo {
		if err := p.lim.wait(ctx, 1); err != nil {
			return len(claimed), p.release(todo[i:])
		}
		cctx, cancel := context.WithTimeout(ctx, p.callTimeout())
		start := time.Now()
		ref, err := p.conn.Post(cctx, erp.Posting{Key: t.Key, Record: *t.Record})
		cancel()
		p.m.seconds.Observe(time.Since(start).Seconds())
		if err != nil {
			if ctx.Err() != nil {
				// Stopping: the ERP may or may not have it; the next claim's Find decides.
				return len(claimed), p.release(todo[i:])
			}
			p.finish(ctx, t, p.failure(t, err))
			continue
		}
		p.m.outcomes.WithLabelValues("posted").Inc()
		p.log.Debug("posted", "key", t.Key, "ref", ref)
		p.finish(ctx, t, store.PostingOutcome{Done: true, Ref: ref})
	}
	return len(claimed), nil
}

func (p *Poster) callTimeout() time.Duration { return min(p.o.Lease/2, 2*time.Minute) }

func (p *Poster) failure(ps store.Posting, err error) store.PostingOutcome {
	if erp.Permanent(err) {
		p.m.outcomes.WithLabelValues("rejected").Inc()
		p.log.Warn("erp rejected posting", "key", ps.Key, "err", err)
		return store.PostingOutcome{Rejected: true, Error: err.Error()}
	}
	return p.retry(ps, err)
}

func (p *Poster) retry(ps store.Posting, err error) store.PostingOutcome {
	p.m.outcomes.WithLabelValues("retry").Inc()
	d := Backoff(ps.Attempts, p.o.MinBackoff, p.o.MaxBackoff)
	p.log.Info("posting failed; will retry", "key", ps.Key, "attempt", ps.Attempts+1, "in", d.Round(time.Millisecond), "err", err)
	return store.PostingOutcome{Error: err.Error(), RetryAt: clock.Now().Add(d)}
}

// Backoff is the wait before retry number attempts+1: min·2^attempts capped at max, ±20 %.
func Backoff(attempts int, lo, hi time.Duration) time.Duration {
	d := float64(lo) * math.Pow(2, float64(min(attempts, 40)))
	d = min(d, float64(hi))
	d *= 0.8 + 0.4*mrand.Float64()
	return time.Duration(d)
}

func (p *Poster) finish(ctx context.Context, ps store.Posting, o store.PostingOutcome) {
	// Record the outcome even while stopping: it is what the ERP now holds.
	fctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if err := p.ob.FinishPosting(fctx, ps.ID, p.o.Owner, o); err != nil {
		p.log.Warn("record posting outcome failed; next claim settles it", "key", ps.Key, "err", err)
	}
}

// release gives back postings not attempted, so another poster need not wait for the lease.
func (p *Poster) release(ps []store.Posting) error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	for _, x := range ps {
		err := p.ob.FinishPosting(ctx, x.ID, p.o.Owner, store.PostingOutcome{Error: "hub stopping", RetryAt: clock.Now()})
		if err != nil && !errors.Is(err, store.ErrLeaseLost) {
			return err
		}
	}
	return nil
}

// limiter spaces calls to rate per second (0: unlimited).
type limiter struct {
	rate float64
	mu   sync.Mutex
	next time.Time
}

func (l *limiter) wait(ctx context.Context, n int) error {
	if l.rate <= 0 {
		return ctx.Err()
	}
	l.mu.Lock()
	now := clock.Now()
	if l.next.Before(now) {
		l.next = now
	}
	at := l.next
	l.next = l.next.Add(time.Duration(float64(n) / l.rate * float64(time.Second)))
	l.mu.Unlock()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(time.Until(at)):
		return nil
	}
}
