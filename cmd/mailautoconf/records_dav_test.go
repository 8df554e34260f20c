package main

import (
	"crypto/sha256"
	"encoding/base64"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// rrsets parses zone-file text into RRsets by owner name (lower case) and
// type, each as sorted record strings.
func rrsets(t *testing.T, text string) map[rrKey][]string {
	t.Helper()
	out := map[rrKey][]string{}
	zp := dns.NewZoneParser(strings.NewReader(text), "", "")
	for rr, ok := zp.Next(); ok; rr, ok = zp.Next() {
		k := rrKey{strings.ToLower(rr.Header().Name), rr.Header().Rrtype}
		out[k] = append(out[k], rr.String())
	}
	if err := zp.Err(); err != nil {
		t.Fatalf("not zone-file syntax: %v\n%s", err, text)
	}
	for k := range out {
		slices.Sort(out[k])
	}
	return out
}

type rrKey struct {
	name  string
	qtype uint16
}

func (k rrKey) String() string { return k.name + " " + dns.TypeToString[k.qtype] }

// askBoth asks the built-in server over UDP and TCP and returns the sorted
// answer records (the same over both) and the rcode.
func askBoth(t *testing.T, addr string, k rrKey) ([]string, int) {
	t.Helper()
	var got [2][]string
	var rcode [2]int
	for i, netw := range []string{"udp", "tcp"} {
		m := new(dns.Msg)
		m.SetQuestion(k.name, k.qtype)
		m.RecursionDesired = false
		r, _, err := (&dns.Client{Net: netw, Timeout: 3 * time.Second}).Exchange(m, addr)
		if err != nil {
			t.Fatalf("%s %s: %v", netw, k, err)
		}
		got[i], rcode[i] = sorted(r.Answer), r.Rcode
	}
	if !slices.Equal(got[0], got[1]) || rcode[0] != rcode[1] {
		t.Errorf("%s: UDP and TCP differ: %q %q", k, got[0], got[1])
	}
	return got[0], rcode[0]
}

func startConfig(t *testing.T, path string) *testutil.Running {
	t.Helper()
	cfg, err := config.Load(path)
	if err != nil {
		t.Fatal(err)
	}
	return testutil.Start(t, cfg, server.Options{DNSAddr: "127.0.0.1:0"})
}

// isPACCName reports whether an owner name is one of the PACC names, the
// only records a configuration without DAV services gains.
func isPACCName(name string) bool {
	return strings.HasPrefix(name, "ua-auto-config.") || strings.HasPrefix(name, "_ua-auto-config.")
}

// TestRecordsWithoutDAVUnchanged: a configuration without caldav, carddav
// or jmap gets exactly the records it had before RFC 6764 and PACC were
// published (testdata/nodav.records, the output of `records` from then),
// from `records` and from the built-in server over UDP and TCP, plus only
// the PACC names: ua-auto-config.<domain> like autoconfig.<domain>, and
// the _ua-auto-config TXT record for a provider that has a document.
func TestRecordsWithoutDAVUnchanged(t *testing.T) {
	path := filepath.Join("testdata", "nodav.yaml")
	golden, err := os.ReadFile(filepath.Join("testdata", "nodav.records"))
	if err != nil {
		t.Fatal(err)
	}
	out, errs, code := runCLI(t, "records", "--config", path)
	if code != 0 {
		t.Fatalf("records: exit %d: %s", code, errs)
	}
	before, now := rrsets(t, string(golden)), rrsets(t, out)
	added := map[rrKey][]string{}
	for k, v := range now {
		if isPACCName(k.name) {
			added[k] = v
			continue
		}
		if !slices.Equal(v, before[k]) {
			t.Errorf("%s: %q, before %q", k, v, before[k])
		}
	}
	for k, v := range before {
		if now[k] == nil {
			t.Errorf("%s is gone (was %q)", k, v)
		}
	}
	var addedNames []string
	for k := range added {
		addedNames = append(addedNames, k.String())
	}
	slices.Sort(addedNames)
	var want []string
	for _, d := range []string{"example.org", "sub.example.org", "alias.example", "starttls.example"} {
		want = append(want, "ua-auto-config."+d+". A", "ua-auto-config."+d+". AAAA")
		if d != "starttls.example" { // STARTTLS only: no document
			want = append(want, "_ua-auto-config."+d+". TXT")
		}
	}
	slices.Sort(want)
	if !slices.Equal(addedNames, want) {
		t.Errorf("new records:\n got %q\nwant %q", addedNames, want)
	}

	srv := startConfig(t, path)
	addr := srv.DNSAddr().String()
	for k, v := range now {
		if got, rcode := askBoth(t, addr, k); rcode != dns.RcodeSuccess || !slices.Equal(got, v) {
			t.Errorf("%s: the server answers %s %q, records prints %q", k, dns.RcodeToString[rcode], got, v)
		}
	}
	// The RFC 6764 names stay what they were: names that do not exist.
	for _, d := range []string{"example.org", "alias.example", "starttls.example"} {
		for _, l := range []string{"_caldavs", "_carddavs", "_caldav", "_carddav"} {
			k := rrKey{l + "._tcp." + d + ".", dns.TypeSRV}
			if got, rcode := askBoth(t, addr, k); rcode != dns.RcodeNameError || len(got) != 0 {
				t.Errorf("%s: %s %q, want NXDOMAIN", k, dns.RcodeToString[rcode], got)
			}
		}
	}
	if got, rcode := askBoth(t, addr, rrKey{"_ua-auto-config.starttls.example.", dns.TypeTXT}); rcode != dns.RcodeNameError || len(got) != 0 {
		t.Errorf("_ua-auto-config of a provider without a document: %s %q", dns.RcodeToString[rcode], got)
	}
}

// TestRecordsDAV: for a provider with calendars, contacts and JMAP, every
// record `records` prints is what the built-in server answers, the zones
// pass nsd-checkzone, dig reads the RFC 6764 SRV and TXT records, srv.sh
// passes the mail records, and the
// _ua-auto-config TXT record carries the digest of the document served on
// ua-auto-config.<domain>.
func TestRecordsDAV(t *testing.T) {
	dig := testutil.Tool(t, "dig", "bind9-dnsutils")
	checkzone := testutil.Tool(t, "nsd-checkzone", "nsd")
	path := filepath.Join("testdata", "dav.yaml")
	out, errs, code := runCLI(t, "records", "--config", path)
	if code != 0 {
		t.Fatalf("records: exit %d: %s", code, errs)
	}
	printed := rrsets(t, out)
	srv := startConfig(t, path)
	addr := srv.DNSAddr().String()
	for k, v := range printed {
		if got, rcode := askBoth(t, addr, k); rcode != dns.RcodeSuccess || !slices.Equal(got, v) {
			t.Errorf("%s: the server answers %s %q, records prints %q", k, dns.RcodeToString[rcode], got, v)
		}
	}
	for _, want := range []string{
		"_caldavs._tcp.example.com.\t3600\tIN\tSRV\t0 0 443 dav.example.com.",
		"_caldavs._tcp.example.com.\t3600\tIN\tTXT\t\"path=/calendars/\"",
		"_carddavs._tcp.example.org.\t3600\tIN\tSRV\t0 0 8443 dav.example.com.",
		"_carddavs._tcp.example.org.\t3600\tIN\tTXT\t\"path=/addressbooks/\"",
		"_caldav._tcp.example.net.\t3600\tIN\tSRV\t0 0 0 .",
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("records lacks %q", want)
		}
	}
	if strings.Contains(out, "_caldavs._tcp.other.example") || strings.Contains(out, "_caldav._tcp.other.example") {
		t.Errorf("a provider without calendars has RFC 6764 records:\n%s", out)
	}
	host, port, _ := strings.Cut(addr, ":")
	digShort := func(name, typ string) string {
		b, err := exec.Command(dig, "@"+host, "-p", port, "+short", "+norecurse", name, typ).CombinedOutput()
		if err != nil {
			t.Fatalf("dig %s %s: %v\n%s", name, typ, err, b)
		}
		return strings.TrimSpace(string(b))
	}
	for _, c := range []struct{ name, typ, want string }{
		{"_caldavs._tcp.example.net", "SRV", "0 0 443 dav.example.com."},
		{"_caldavs._tcp.example.net", "TXT", `"path=/calendars/"`},
		{"_carddavs._tcp.example.com", "SRV", "0 0 8443 dav.example.com."},
		{"_carddavs._tcp.example.com", "TXT", `"path=/addressbooks/"`},
		{"ua-auto-config.example.org", "A", "127.0.0.1"},
	} {
		if got := digShort(c.name, c.typ); got != c.want {
			t.Errorf("dig %s %s: %q, want %q", c.name, c.typ, got, c.want)
		}
	}
	for _, d := range []string{"example.com", "example.org", "other.example"} {
		r := testutil.Get(t, srv.URL+"/.well-known/user-agent-configuration.json", "ua-auto-config."+d)
		sum := sha256.Sum256(r.Body)
		want := `"v=UAAC1; a=sha256; d=` + base64.StdEncoding.EncodeToString(sum[:]) + `"`
		if got := digShort("_ua-auto-config."+d, "TXT"); r.StatusCode != 200 || got != want {
			t.Errorf("%s: dig prints %s, the served document (%d) has %s", d, got, r.StatusCode, want)
		}
	}
	// The independent RFC 6186 checker finds the mail records next to
	// the RFC 6764 ones as well-formed as without them (it does not know
	// the DAV names).
	conf := testutil.ConformanceDir(t)
	for _, d := range []string{"example.com", "example.org"} {
		b, err := exec.Command("bash", filepath.Join(conf, "srv.sh"), d, host, port).CombinedOutput()
		if err != nil || strings.Contains(string(b), "WARN") {
			t.Errorf("srv.sh %s: %v\n%s", d, err, b)
		}
	}
	dir := t.TempDir()
	for _, d := range []string{"example.com", "example.net", "example.org", "other.example"} {
		zone, errs, code := runCLI(t, "records", "--config", path, "--zone", d)
		if code != 0 {
			t.Fatalf("records --zone %s: %s", d, errs)
		}
		f := filepath.Join(dir, d+".zone")
		if err := os.WriteFile(f, []byte(zone), 0o644); err != nil {
			t.Fatal(err)
		}
		if msg, err := exec.Command(checkzone, d, f).CombinedOutput(); err != nil {
			t.Errorf("nsd-checkzone rejects the %s zone: %v\n%s\n%s", d, err, msg, zone)
		}
	}
}
