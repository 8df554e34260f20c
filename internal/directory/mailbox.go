package directory

import (
	"context"
	"errors"
	"log/slog"
	"strings"
	"sync/atomic"
	"time"

	lru "github.com/hashicorp/golang-lru/v2"
	"golang.org/x/sync/singleflight"
)

// ErrorPause is how long lookups of new addresses are not sent to a source
// that just failed or timed out: while it is down, clients get the domain's
// answer at once instead of each waiting for the timeout, and a struggling
// database is not pressed harder.
const ErrorPause = 2 * time.Second

// Resolver answers "what does the directory say about this address" while a
// client waits, without letting the client wait long:
//
//   - answers (found or not) are cached for the TTL or the negative TTL;
//     an expired entry is still answered from while a background query
//     refreshes it, so a known address never waits on the database again;
//   - one query is in flight per address: a burst of requests for one
//     address (a client retrying, several devices) is one query;
//   - at most MaxConcurrent queries run at once; a query that cannot start
//     or finish within the timeout gives up;
//   - after a failure, new addresses are not looked up for ErrorPause.
//
// Whenever it gives up, the address is treated as unknown: the client gets
// the domain's ordinary answer, which is what an address the directory
// does not know gets too, so nothing tells the two apart.
type Resolver struct {
	src   Source
	s     CacheSettings
	m     *Metrics
	log   *slog.Logger
	cache *lru.Cache[string, entry]
	group singleflight.Group
	sem   chan struct{}
	pause atomic.Int64 // unix nanoseconds until which new lookups are skipped
}

type entry struct {
	mb      Mailbox
	found   bool
	expires int64 // unix nanoseconds
}

// NewResolver creates a resolver for src's mailbox lookups.
func NewResolver(src Source, s CacheSettings, m *Metrics, log *slog.Logger) *Resolver {
	if m == nil {
		m = NewMetrics()
	}
	if log == nil {
		log = slog.Default()
	}
	if s.Size <= 0 {
		s.Size = 1
	}
	if s.MaxConcurrent <= 0 {
		s.MaxConcurrent = 1
	}
	if s.Timeout <= 0 {
		s.Timeout = time.Second
	}
	c, _ := lru.New[string, entry](s.Size) // only fails for a size < 1
	return &Resolver{src: src, s: s, m: m, log: log, cache: c, sem: make(chan struct{}, s.MaxConcurrent)}
}

// Key is the form in which an address is looked up and cached: lower case.
// Postfixadmin, mailcow and iRedMail all store addresses in lower case, and
// one cache entry per mailbox makes "Alice@" and "alice@" one query.
func Key(address string) string { return strings.ToLower(address) }

// Lookup returns what the directory says about address (a normalised
// address) and whether it knows the mailbox. It returns within the lookup
// timeout whatever the source does.
func (r *Resolver) Lookup(ctx context.Context, address string) (Mailbox, bool) {
	key := Key(address)
	now := time.Now().UnixNano()
	if e, ok := r.cache.Get(key); ok {
		r.m.Lookups.WithLabelValues(LookupCached).Inc()
		if now >= e.expires && now >= r.pause.Load() {
			// Refresh in the background; the stale answer serves
			// meanwhile.
			r.group.DoChan(key, func() (any, error) { return r.query(key) })
		}
		return e.mb, e.found
	}
	if now < r.pause.Load() {
		r.m.Lookups.WithLabelValues(LookupSkipped).Inc()
		return Mailbox{}, false
	}
	ch := r.group.DoChan(key, func() (any, error) { return r.query(key) })
	timer := time.NewTimer(r.s.Timeout)
	defer timer.Stop()
	select {
	case res := <-ch:
		if res.Err != nil {
			return Mailbox{}, false
		}
		e := res.Val.(entry)
		return e.mb, e.found
	case <-timer.C:
	case <-ctx.Done():
	}
	return Mailbox{}, false
}

// errTimeout marks a query that gave up.
var errTimeout = errors.New("mailbox lookup timed out")

// query asks the source about one address and caches the answer. It runs
// once per address at a time (singleflight), detached from the request
// that started it, so that a client hanging up does not cancel the query
// other clients wait for.
func (r *Resolver) query(key string) (entry, error) {
	ctx, cancel := context.WithTimeout(context.Background(), r.s.Timeout)
	defer cancel()
	select {
	case r.sem <- struct{}{}:
		defer func() { <-r.sem }()
	case <-ctx.Done():
		r.m.Lookups.WithLabelValues(LookupTimeout).Inc()
		return entry{}, errTimeout
	}
	mb, found, err := r.src.Mailbox(ctx, key)
	if err != nil {
		r.pause.Store(time.Now().Add(ErrorPause).UnixNano())
		result := LookupError
		if ctx.Err() != nil {
			result, err = LookupTimeout, errTimeout
		}
		r.m.Lookups.WithLabelValues(result).Inc()
		// The domain only: addresses stay out of the logs.
		r.log.Warn("directory: mailbox lookup failed; answering with the domain's settings", "domain", domainOf(key), "err", err, "pause", ErrorPause)
		return entry{}, err
	}
	result := LookupUnknown
	ttl := r.s.NegativeTTL
	if found {
		result, ttl = LookupFound, r.s.TTL
		if mb, err = checkMailbox(mb); err != nil {
			// Never served; cached like an unknown mailbox so that a
			// bad row is not queried on every request.
			r.log.Warn("directory: mailbox row skipped", "domain", domainOf(key), "err", err)
			result, found, ttl, mb = LookupInvalid, false, r.s.NegativeTTL, Mailbox{}
		}
	}
	r.m.Lookups.WithLabelValues(result).Inc()
	e := entry{mb: mb, found: found, expires: time.Now().Add(ttl).UnixNano()}
	r.cache.Add(key, e)
	r.m.CacheSize.Set(float64(r.cache.Len()))
	return e, nil
}

func domainOf(addr string) string {
	if i := strings.LastIndexByte(addr, '@'); i >= 0 {
		return addr[i+1:]
	}
	return ""
}

// Purge empties the cache, e.g. after a reload changed the source.
func (r *Resolver) Purge() {
	r.cache.Purge()
	r.m.CacheSize.Set(0)
}
