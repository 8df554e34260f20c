package acme

import (
	"context"
	"sync"
	"time"
)

// pacer spaces out orders: a token bucket that gains one token per interval
// and holds at most reserve+1.
//
// Background work (the pre-issue queue and renewals) takes a token only
// when the bucket is full, so reserve tokens are always kept for on-demand
// orders: a handshake waiting for its certificate finds one at once, and
// once the reserve is spent it gets the next token before the background
// does. Either way the long-run rate stays one order per interval (plus the
// reserve), which is what keeps an account inside the CA's limits.
type pacer struct {
	mu       sync.Mutex
	interval time.Duration
	reserve  float64
	tokens   float64
	last     time.Time
}

// Tokens kept for on-demand orders.
const onDemandReserve = 3

func newPacer(interval time.Duration, now time.Time) *pacer {
	return &pacer{interval: interval, reserve: onDemandReserve, tokens: onDemandReserve + 1, last: now}
}

// reserveAt takes a token at now if one is available to this kind of
// caller and returns 0; otherwise it returns how long to wait before asking
// again.
func (p *pacer) reserveAt(now time.Time, urgent bool) time.Duration {
	p.mu.Lock()
	defer p.mu.Unlock()
	if now.After(p.last) {
		p.tokens = min(p.reserve+1, p.tokens+float64(now.Sub(p.last))/float64(p.interval))
		p.last = now
	}
	need := 1.0
	if !urgent {
		need += p.reserve
	}
	if p.tokens >= need {
		p.tokens--
		return 0
	}
	return max(time.Duration((need-p.tokens)*float64(p.interval)), time.Millisecond)
}

// wait blocks until the caller may start an order, or ctx ends.
func (p *pacer) wait(ctx context.Context, urgent bool) error {
	for {
		d := p.reserveAt(time.Now(), urgent)
		if d == 0 {
			return nil
		}
		t := time.NewTimer(d)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
}
