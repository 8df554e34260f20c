package directory

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"mailautoconf/internal/testutil/dbtest"
)

// BenchmarkLoad100k reads 100,000 domains from a real PostgreSQL and checks
// them, as every refresh does; it reports the heap the snapshot keeps.
func BenchmarkLoad100k(b *testing.B) {
	pg := dbtest.StartPostgres(b)
	dsn := pg.NewDatabase(b)
	dbtest.ExecPostgres(b, dsn, `CREATE TABLE domain (domain varchar(255) PRIMARY KEY, active boolean NOT NULL DEFAULT true);
INSERT INTO domain (domain) SELECT 'customer' || i || '.example' FROM generate_series(1, 100000) i`)
	src, s := openWith(b, "directory:\n  sql: {driver: postgres, dsn_file: /etc/mailautoconf/dsn, domains: \"SELECT domain FROM domain WHERE active\"}\n", dsn)
	l := NewLoader(src, LoaderOptions{Settings: s, Logger: (&logs{}).logger()})
	var before runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	snap := l.Start(context.Background())
	if snap == nil || len(snap.Rows) != 100000 {
		b.Fatalf("start: %v", snap)
	}
	runtime.GC()
	var after runtime.MemStats
	runtime.ReadMemStats(&after)
	kept := float64(after.HeapAlloc-before.HeapAlloc) / (1 << 20)
	for b.Loop() {
		if err := l.refresh(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(kept, "MB-kept")
}

// BenchmarkResolverCached is the cost a warm per-mailbox cache adds to a
// request: one LRU look-up.
func BenchmarkResolverCached(b *testing.B) {
	r := NewResolver(nil, CacheSettings{Size: 100000, TTL: time.Hour, NegativeTTL: time.Hour, Timeout: time.Second, MaxConcurrent: 1}, nil, nil)
	for i := range 1000 {
		r.cache.Add(fmt.Sprintf("user%d@example.com", i), entry{mb: Mailbox{Login: "x"}, found: true, expires: time.Now().Add(time.Hour).UnixNano()})
	}
	ctx := context.Background()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			if _, ok := r.Lookup(ctx, fmt.Sprintf("user%d@example.com", i%1000)); !ok {
				b.Fatal("not cached")
			}
			i++
		}
	})
}

// BenchmarkMailboxCold: per-mailbox lookups with a cold cache (every
// address new) against a real PostgreSQL holding 100,000 mailboxes, through
// the Resolver and as bare queries of the source, in parallel. The ratio of
// the two shows what the cache, singleflight and the concurrency cap add
// on top of the database, which sets the pace.
func BenchmarkMailboxCold(b *testing.B) {
	pg := dbtest.StartPostgres(b)
	dsn := pg.NewDatabase(b)
	dbtest.ExecPostgres(b, dsn, `CREATE TABLE mailbox (username varchar(255) PRIMARY KEY, active boolean NOT NULL DEFAULT true);
INSERT INTO mailbox (username) SELECT 'user' || i || '@example.com' FROM generate_series(1, 100000) i`)
	src, s := openWith(b, "directory:\n  sql: {driver: postgres, dsn_file: /etc/mailautoconf/dsn, domains: \"SELECT 'example.com'\", mailbox: \"SELECT username FROM mailbox WHERE username = $1 AND active\"}\n", dsn)
	ctx := context.Background()
	// Connections opened before either side is measured.
	for range 8 {
		src.Mailbox(ctx, "user1@example.com")
	}
	var next atomic.Int64
	addr := func() string { return fmt.Sprintf("user%d@example.com", next.Add(1)%100000+1) }
	b.Run("query", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				// With a deadline, as any lookup on a request's behalf
				// has (pgx then watches the context).
				qctx, cancel := context.WithTimeout(ctx, s.Cache.Timeout)
				_, ok, err := src.Mailbox(qctx, addr())
				cancel()
				if !ok || err != nil {
					b.Error("not found", err)
				}
			}
		})
	})
	b.Run("resolver", func(b *testing.B) {
		s.Cache.Size = b.N + 1 // every address stays new
		r := NewResolver(src, s.Cache, nil, nil)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				if _, ok := r.Lookup(ctx, addr()); !ok {
					b.Error("not found")
				}
			}
		})
	})
}
