package channels

import (
	"context"
	"sync"
	"time"
)

// bucket is a token bucket: rate tokens a second up to burst; rate 0 is unlimited.
type bucket struct {
	mu     sync.Mutex
	rate   float64
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBucket(rate float64, burst int) *bucket {
	if burst < 1 {
		burst = 1
	}
	return &bucket{rate: rate, burst: float64(burst), tokens: float64(burst), now: time.Now}
}

// refill adds the tokens earned since the last call; the caller holds mu.
func (b *bucket) refill() {
	now := b.now()
	if !b.last.IsZero() {
		b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	}
	b.last = now
}

// wait takes n tokens (at most burst), sleeping until they are there or ctx is done.
func (b *bucket) wait(ctx context.Context, n int) error {
	if b.rate <= 0 || n <= 0 {
		return ctx.Err()
	}
	for {
		b.mu.Lock()
		b.refill()
		need := min(float64(n), b.burst)
		if b.tokens >= need {
			b.tokens -= need
			b.mu.Unlock()
			return nil
		}
		d := time.Duration((need - b.tokens) / b.rate * float64(time.Second))
		b.mu.Unlock()
		t := time.NewTimer(max(d, time.Millisecond))
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}

// drain empties the bucket: the channel said it is over its limit.
func (b *bucket) drain() {
	b.mu.Lock()
	b.refill()
	b.tokens = 0
	b.mu.Unlock()
}
