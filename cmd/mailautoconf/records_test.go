package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

func runCLI(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	var out, errb bytes.Buffer
	code := run(args, &out, &errb)
	return out.String(), errb.String(), code
}

func TestRecordsCommand(t *testing.T) {
	out, errs, code := runCLI(t, "records")
	if code != 0 {
		t.Fatalf("records: exit %d: %s", code, errs)
	}
	zoneOut, errs, code := runCLI(t, "records", "--zone", "example.com")
	if code != 0 {
		t.Fatalf("records --zone: exit %d: %s", code, errs)
	}
	// Every non-comment line of the paste output is one valid record;
	// the zone output holds the same records of example.com plus SOA/NS.
	parseLines := func(text string) (rrs []string, comments int) {
		zp := dns.NewZoneParser(strings.NewReader(text), "", "")
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			rrs = append(rrs, rr.String())
		}
		if err := zp.Err(); err != nil {
			t.Fatalf("not zone-file syntax: %v\n%s", err, text)
		}
		for l := range strings.SplitSeq(text, "\n") {
			if strings.HasPrefix(l, ";") {
				comments++
			}
		}
		return rrs, comments
	}
	paste, comments := parseLines(out)
	if comments < 6 {
		t.Errorf("%d comment lines, want one per group", comments)
	}
	for _, rr := range paste {
		if strings.Contains(rr, "\tSOA\t") || strings.Contains(rr, "\tNS\t") {
			t.Errorf("paste output has %q: it would clash with the hoster's zone", rr)
		}
	}
	zone, _ := parseLines(zoneOut)
	var fromZone, fromPaste []string
	for _, rr := range zone {
		if !strings.Contains(rr, "\tSOA\t") && !strings.Contains(rr, "\tNS\t") {
			fromZone = append(fromZone, rr)
		}
	}
	for _, rr := range paste {
		if strings.Contains(rr, "example.com.\t") && !strings.Contains(strings.SplitN(rr, "\t", 2)[0], "example.net") {
			fromPaste = append(fromPaste, rr)
		}
	}
	slices.Sort(fromZone)
	slices.Sort(fromPaste)
	if !slices.Equal(fromZone, fromPaste) {
		t.Errorf("zone and paste output differ:\n%s\n--\n%s", strings.Join(fromZone, "\n"), strings.Join(fromPaste, "\n"))
	}
	for _, want := range []string{
		"_imaps._tcp.example.com.\t3600\tIN\tSRV\t0 0 993 imap.example.com.",
		"_submission._tcp.example.net.\t3600\tIN\tSRV\t10 0 587 smtp.example.com.",
		"_autodiscover._tcp.example.net.\t3600\tIN\tSRV\t0 0 443 autodiscover.example.net.",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("records output lacks %q", want)
		}
	}
	if _, errs, code := runCLI(t, "records", "example.org"); code != 2 || !strings.Contains(errs, "example.org") {
		t.Errorf("unknown domain: exit %d, %q", code, errs)
	}
}

// The exported zones load into NSD, a real authoritative server, and NSD
// answers exactly what this server answers: for the demo, and for a
// configuration with calendars, contacts and JMAP (the RFC 6764 SRV and TXT
// records, and the PACC names).
func TestRecordsLoadIntoNSD(t *testing.T) {
	t.Run("demo", func(t *testing.T) {
		compareWithNSD(t, nil, testutil.Demo(t), []string{"example.com", "example.net"})
	})
	t.Run("dav", func(t *testing.T) {
		path := filepath.Join("testdata", "dav.yaml")
		cfg, err := config.Load(path)
		if err != nil {
			t.Fatal(err)
		}
		compareWithNSD(t, []string{"--config", path}, cfg, []string{"example.com", "example.org", "other.example"})
	})
}

// compareWithNSD loads the zones `records --zone` prints for the domains
// into NSD and asks NSD and the running server the same questions.
func compareWithNSD(t *testing.T, configArgs []string, cfg *config.Config, domains []string) {
	nsd := testutil.Tool(t, "nsd", "nsd")
	checkzone := testutil.Tool(t, "nsd-checkzone", "nsd")
	dir := t.TempDir()
	var zones strings.Builder
	for _, d := range domains {
		out, errs, code := runCLI(t, append(append([]string{"records"}, configArgs...), "--zone", d)...)
		if code != 0 {
			t.Fatalf("records --zone %s: %s", d, errs)
		}
		f := filepath.Join(dir, d+".zone")
		if err := os.WriteFile(f, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		if msg, err := exec.Command(checkzone, d, f).CombinedOutput(); err != nil {
			t.Fatalf("nsd-checkzone rejects the %s zone: %v\n%s\n%s", d, err, msg, out)
		}
		fmt.Fprintf(&zones, "zone:\n    name: %q\n    zonefile: %q\n", d, f)
	}
	port := freePort(t)
	conf := filepath.Join(dir, "nsd.conf")
	os.WriteFile(conf, []byte(fmt.Sprintf(`server:
    ip-address: 127.0.0.1@%d
    do-ip6: no
    username: ""
    chroot: ""
    database: ""
    zonesdir: %q
    zonelistfile: %q
    xfrdfile: %q
    xfrdir: %q
    pidfile: %q
    logfile: %q
    server-count: 1
    verbosity: 1
remote-control:
    control-enable: no
%s`, port, dir, dir+"/zone.list", dir+"/xfrd.state", dir, dir+"/nsd.pid", dir+"/nsd.log", zones.String())), 0o644)
	cmd := exec.Command(nsd, "-c", conf, "-d")
	var log bytes.Buffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	nsdAddr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	waitDNS(t, nsdAddr, &log, dir)

	srv := testutil.Start(t, cfg, server.Options{DNSAddr: "127.0.0.1:0"})
	ours := srv.DNSAddr().String()
	type q struct {
		name  string
		qtype uint16
	}
	var qs []q
	for _, d := range domains {
		for _, s := range []string{"_imaps", "_imap", "_pop3s", "_pop3", "_submissions", "_submission", "_autodiscover"} {
			qs = append(qs, q{s + "._tcp." + d + ".", dns.TypeSRV})
		}
		qs = append(qs,
			q{"autoconfig." + d + ".", dns.TypeA}, q{"autodiscover." + d + ".", dns.TypeAAAA},
			q{"_imaps._tcp." + d + ".", dns.TypeTXT}, q{"nothing." + d + ".", dns.TypeSRV},
			q{d + ".", dns.TypeSOA}, q{d + ".", dns.TypeNS},
			q{"ua-auto-config." + d + ".", dns.TypeA}, q{"ua-auto-config." + d + ".", dns.TypeAAAA},
			q{"_ua-auto-config." + d + ".", dns.TypeTXT}, q{"_ua-auto-config." + d + ".", dns.TypeANY})
		// Not ANY there: _caldavs._tcp has an SRV and a TXT RRset, and
		// RFC 8482 lets each server pick the one it answers (NSD the
		// TXT, this server the SRV record clients look for).
		for _, s := range []string{"_caldavs", "_carddavs", "_caldav", "_carddav"} {
			qs = append(qs, q{s + "._tcp." + d + ".", dns.TypeSRV}, q{s + "._tcp." + d + ".", dns.TypeTXT})
		}
	}
	for _, netw := range []string{"udp", "tcp"} {
		c := &dns.Client{Net: netw, Timeout: 3 * time.Second}
		for _, x := range qs {
			m := new(dns.Msg)
			m.SetQuestion(x.name, x.qtype)
			m.RecursionDesired = false
			a, _, err := c.Exchange(m, ours)
			if err != nil {
				t.Fatalf("ours %s: %v", x.name, err)
			}
			b, _, err := c.Exchange(m, nsdAddr)
			if err != nil {
				t.Fatalf("nsd %s: %v", x.name, err)
			}
			if a.Rcode != b.Rcode || a.Authoritative != b.Authoritative {
				t.Errorf("%s %s %s: rcode %s aa %v, NSD %s aa %v", netw, x.name, dns.TypeToString[x.qtype],
					dns.RcodeToString[a.Rcode], a.Authoritative, dns.RcodeToString[b.Rcode], b.Authoritative)
			}
			if ga, gb := sorted(a.Answer), sorted(b.Answer); !slices.Equal(ga, gb) {
				t.Errorf("%s %s %s: answers differ\nours: %q\nNSD:  %q", netw, x.name, dns.TypeToString[x.qtype], ga, gb)
			}
			if len(a.Answer) == 0 {
				if ga, gb := sorted(a.Ns), sorted(b.Ns); !slices.Equal(ga, gb) {
					t.Errorf("%s %s: authority differs\nours: %q\nNSD:  %q", netw, x.name, ga, gb)
				}
			}
		}
	}
}

func sorted(rrs []dns.RR) []string {
	var out []string
	for _, rr := range rrs {
		out = append(out, rr.String())
	}
	slices.Sort(out)
	return out
}

// freePort finds a loopback port free for both UDP and TCP.
func freePort(t *testing.T) int {
	t.Helper()
	for range 20 {
		pc, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := pc.LocalAddr().(*net.UDPAddr).Port
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		pc.Close()
		if err == nil {
			ln.Close()
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

func waitDNS(t *testing.T, addr string, log *bytes.Buffer, dir string) {
	t.Helper()
	c := &dns.Client{Timeout: 200 * time.Millisecond}
	m := new(dns.Msg)
	m.SetQuestion("example.com.", dns.TypeSOA)
	for range 50 {
		if r, _, err := c.Exchange(m, addr); err == nil && len(r.Answer) == 1 {
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
	nlog, _ := os.ReadFile(filepath.Join(dir, "nsd.log"))
	t.Fatalf("nsd does not answer on %s:\n%s\n%s", addr, log.String(), nlog)
}

// TestRecordsAutodiscoverTarget: with dns.autodiscover_target (and a
// provider's own), `records` prints every domain's _autodiscover._tcp SRV
// record with that target, alias domains included, and the zone output the
// same; without one the target stays autodiscover.<domain>.
func TestRecordsAutodiscoverTarget(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "config.yaml")
	yaml := `dns:
  service_addresses: [192.0.2.10]
  autodiscover_target: autodiscover.hoster.example
providers:
  - id: mail.example.com
    domains: [example.com]
    aliases: {example.org: example.com}
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
  - id: mail.other.test
    domains: [other.test, bücher.test]
    dns: {autodiscover_target: AUTODISCOVER.Other-Hoster.example.}
    servers:
      - {type: imap, host: imap.other.test}
      - {type: smtp, host: smtp.other.test}
`
	if err := os.WriteFile(path, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	srvOf := func(text string) map[string]string {
		out := map[string]string{}
		zp := dns.NewZoneParser(strings.NewReader(text), "", "")
		for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
			if s, ok := rr.(*dns.SRV); ok && strings.HasPrefix(s.Hdr.Name, "_autodiscover._tcp.") {
				out[strings.TrimPrefix(s.Hdr.Name, "_autodiscover._tcp.")] = fmt.Sprintf("%d %d %d %s", s.Priority, s.Weight, s.Port, s.Target)
			}
		}
		if err := zp.Err(); err != nil {
			t.Fatalf("not zone-file syntax: %v\n%s", err, text)
		}
		return out
	}
	out, errs, code := runCLI(t, "records", "--config", path)
	if code != 0 {
		t.Fatalf("records: exit %d: %s", code, errs)
	}
	want := map[string]string{
		"example.com.":        "0 0 443 autodiscover.hoster.example.",
		"example.org.":        "0 0 443 autodiscover.hoster.example.",
		"other.test.":         "0 0 443 autodiscover.other-hoster.example.",
		"xn--bcher-kva.test.": "0 0 443 autodiscover.other-hoster.example.",
	}
	if got := srvOf(out); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("records:\n got %v\nwant %v\n%s", got, want, out)
	}
	// Outlook tries autodiscover.<domain> before the SRV record: with a
	// target it is not published, autoconfig.<domain> still is.
	for _, d := range []string{"example.com.", "other.test."} {
		if strings.Contains(out, "\nautodiscover."+d+"\t") || !strings.Contains(out, "\nautoconfig."+d+"\t3600\tIN\tA\t192.0.2.10\n") {
			t.Errorf("%s: autodiscover. published or autoconfig. missing:\n%s", d, out)
		}
	}
	zone, errs, code := runCLI(t, "records", "--config", path, "--zone", "other.test")
	if code != 0 {
		t.Fatalf("records --zone: exit %d: %s", code, errs)
	}
	if got := srvOf(zone); fmt.Sprint(got) != fmt.Sprint(map[string]string{"other.test.": want["other.test."]}) {
		t.Errorf("records --zone other.test: %v\n%s", got, zone)
	}
	// The default is unchanged: the demo's own autodiscover.<domain>.
	demo, _, _ := runCLI(t, "records")
	if got := srvOf(demo); got["example.com."] != "0 0 443 autodiscover.example.com." {
		t.Errorf("demo: %v", got)
	}
}
