package dnsserver

import (
	"net/netip"
	"sync"
	"time"

	"mailautoconf/internal/config"
)

// verdict is what the rate limit says about one UDP response.
type verdict int

const (
	allow verdict = iota
	slip          // send an empty answer with TC=1
	drop          // send nothing
)

// sweepAge is how often idle networks are forgotten.
const sweepAge = 10 * time.Second

// limiter is a token bucket per source network (a /24 or /56 by default,
// since an attacker spoofing a victim's address can vary the low bits).
// Responses over the limit are dropped, except every slip-th, which goes out
// truncated: a legitimate resolver behind the same network then retries over
// TCP, which the limit does not cover, while the reflected traffic stays no
// larger than the query.
type limiter struct {
	rate, burst float64
	slip        int
	v4, v6      int

	mu        sync.Mutex
	buckets   map[netip.Prefix]*bucket
	lastSweep time.Time
	now       func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
	over   int // responses over the limit so far, for slipping
}

func newLimiter(rl config.RateLimit) *limiter {
	return &limiter{
		rate:    float64(rl.Rate()),
		burst:   float64(max(rl.Burst, 1)),
		slip:    rl.SlipEvery(),
		v4:      rl.IPv4Prefix,
		v6:      rl.IPv6Prefix,
		buckets: map[netip.Prefix]*bucket{},
		now:     time.Now,
	}
}

// check takes one token for the source address.
func (l *limiter) check(src netip.Addr) verdict {
	src = src.Unmap()
	bits := l.v6
	if src.Is4() {
		bits = l.v4
	}
	key, err := src.Prefix(bits)
	if err != nil {
		return allow
	}
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.lastSweep) > sweepAge {
		l.sweep(now)
	}
	b, ok := l.buckets[key]
	if !ok {
		b = &bucket{tokens: l.burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		b.over = 0
		return allow
	}
	b.over++
	if l.slip > 0 && b.over%l.slip == 0 {
		return slip
	}
	return drop
}

// sweep forgets networks whose bucket has refilled: they are
// indistinguishable from new ones, and the map must not grow without bound
// under a spoofed flood.
func (l *limiter) sweep(now time.Time) {
	l.lastSweep = now
	full := time.Duration(l.burst / l.rate * float64(time.Second))
	for k, b := range l.buckets {
		if now.Sub(b.last) > full {
			delete(l.buckets, k)
		}
	}
}
