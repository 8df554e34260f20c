package directory

import (
	"context"
	"fmt"
	"runtime"
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
