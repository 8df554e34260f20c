package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"mailautoconf/internal/testutil/dbtest"
)

// BenchmarkServeDirectory100k runs the real binary on 100,000 domains from
// a real PostgreSQL: start-s is the time until it listens (the first read
// and the catalog built from it), each iteration a domain INSERTed and
// served (NOTIFY, a read of all 100,000, the state rebuilt and swapped),
// RSS-MB the process's resident memory once the last refresh settled and
// peak-RSS-MB the most it ever had (start-peak-RSS-MB: before the first
// refresh). The targets are 2 s
// for the first load and each refresh and 96 MB.
func BenchmarkServeDirectory100k(b *testing.B) {
	pg := dbtest.StartPostgres(b)
	dsn := pg.NewDatabase(b)
	dbtest.ExecPostgres(b, dsn, dirSchema(b, "postfixadmin.pgsql"))
	dbtest.ExecPostgres(b, dsn, dirSchema(b, "examples/postfixadmin-notify.pgsql"))
	dbtest.ExecPostgres(b, dsn, "INSERT INTO domain (domain) SELECT 'customer' || i || '.example' FROM generate_series(1, 100000) i")
	dir := b.TempDir()
	block := strings.ReplaceAll(`
directory:
  sql:
    driver: postgres
    dsn_file: DIR/dsn
    domains: "SELECT domain FROM domain WHERE active AND domain <> 'ALL'"
    refresh: 30s
    notify: mailautoconf
`, "DIR", dir)
	file := writeConfig(b, dir, block, dsn)
	bin := buildBinary(b)
	t0 := time.Now()
	s := serveConfig(b, bin, file)
	start := time.Since(t0)
	time.Sleep(2 * time.Second)
	startPeak := procMB(b, s.cmd.Process.Pid, "VmHWM:")
	i := 0
	for b.Loop() {
		i++
		name := fmt.Sprintf("new%d.example", i)
		dbtest.ExecPostgres(b, dsn, "INSERT INTO domain (domain) VALUES ($1)", name)
		for {
			if c, _ := s.autoconfig(b, "a@"+name); c == 200 {
				break
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	b.StopTimer()
	// The new state is served before the collector returns the old one's
	// memory (server.Options.Reloaded, after the swap): give it a moment.
	time.Sleep(2 * time.Second)
	b.ReportMetric(start.Seconds(), "start-s")
	b.ReportMetric(procMB(b, s.cmd.Process.Pid, "VmRSS:"), "RSS-MB")
	b.ReportMetric(procMB(b, s.cmd.Process.Pid, "VmHWM:"), "peak-RSS-MB")
	b.ReportMetric(startPeak, "start-peak-RSS-MB")
}

// procMB reads a size of a process's memory from /proc: VmRSS (resident
// now) or VmHWM (the peak).
func procMB(b *testing.B, pid int, field string) float64 {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		b.Fatal(err)
	}
	for _, l := range strings.Split(string(data), "\n") {
		if f := strings.Fields(l); len(f) >= 2 && f[0] == field {
			kb, _ := strconv.Atoi(f[1])
			return float64(kb) / 1024
		}
	}
	b.Fatal("no " + field)
	return 0
}
