package channels

import (
	"context"
	"testing"
	"time"
)

func TestBucket(t *testing.T) {
	now := time.Unix(1000, 0)
	b := newBucket(2, 4) // 2/s, burst 4
	b.now = func() time.Time { return now }
	ctx := context.Background()
	for i := range 4 {
		if err := b.wait(ctx, 1); err != nil {
			t.Fatalf("token %d of the burst: %v", i, err)
		}
	}
	short, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
	defer cancel()
	if err := b.wait(short, 1); err == nil {
		t.Fatal("a fifth token with the clock stopped was granted; want a wait until the deadline")
	}
	now = now.Add(time.Second) // earns 2
	if err := b.wait(ctx, 2); err != nil {
		t.Fatal(err)
	}
	now = now.Add(10 * time.Second) // capped at burst
	if b.refill(); b.tokens != 4 {
		t.Fatalf("tokens after a long pause: %v, want the burst (4)", b.tokens)
	}
	b.drain()
	if b.tokens != 0 {
		t.Fatalf("tokens after drain: %v", b.tokens)
	}
}
