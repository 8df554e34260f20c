package e2e

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// targetYAML is a hoster with one Autodiscover host for all customer
// domains (dns.autodiscover_target), and a second provider whose own target
// (providers[].dns.autodiscover_target) lies inside a served zone, so the
// built-in server also answers for the target's address.
const targetYAML = `tls:
  certificates:
    - {cert: %s, key: %s}
    - {cert: %s, key: %s}
dns:
  nameservers: [ns1.example.com]
  service_addresses: [127.0.0.1]
  autodiscover_target: Autodiscover.Hoster.Example.
  hosts:
    ns1.example.com: [127.0.0.1]
    imap.example.com: [192.0.2.11]
    smtp.example.com: [192.0.2.13]
    imap.other.test: [192.0.2.21]
    smtp.other.test: [192.0.2.23]
providers:
  - id: mail.example.com
    domains: [example.com, example.net]
    aliases: {example.org: example.com}
    servers:
      - {type: imap, host: imap.example.com}
      - {type: smtp, host: smtp.example.com}
  - id: mail.other.test
    domains: [other.test]
    dns:
      autodiscover_target: autodiscover.example.net
    servers:
      - {type: imap, host: imap.other.test}
      - {type: smtp, host: smtp.other.test}
`

const poxRequest = `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>%s</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`

// TestAutodiscoverTarget follows Outlook's last Autodiscover step
// ([MS-OXDISCO] 3.1.5.3) for a hoster that runs one Autodiscover host for
// all its customers' domains: the _autodiscover._tcp SRV record of every
// served domain, asked over UDP and TCP from the built-in DNS server, names
// the configured target; srv.sh finds the records well-formed; and a POX
// request POSTed to https://<target>/autodiscover/autodiscover.xml, over
// TLS with the target's name (the only certificate the hoster needs), gets
// the settings of the address's own domain, checked by autodiscover.py. A
// plain-HTTP request on the target is redirected to HTTPS on the target,
// and the v2 JSON answer points Outlook there too.
func TestAutodiscoverTarget(t *testing.T) {
	testutil.Tool(t, "dig", "bind9-dnsutils") // srv.sh
	dir := t.TempDir()
	ca := testutil.NewCA(t)
	c1, k1 := ca.IssueFiles(t, dir, "hoster", time.Time{}, "autodiscover.hoster.example")
	c2, k2 := ca.IssueFiles(t, dir, "other", time.Time{}, "autodiscover.example.net")
	path := filepath.Join(dir, "config.yaml")
	cfg, err := config.Parse(path, fmt.Appendf(nil, targetYAML, c1, k1, c2, k2))
	if err != nil {
		t.Fatal(err)
	}
	srv := testutil.Start(t, cfg, server.Options{HTTPSAddr: "127.0.0.1:0", DNSAddr: "127.0.0.1:0"})
	dnsAddr := srv.DNSAddr().String()
	httpsAddr := srv.HTTPSAddr().String()

	// Every served domain, alias included, and the target its SRV record
	// must name.
	domains := []struct{ domain, target, provider string }{
		{"example.com", "autodiscover.hoster.example", "imap.example.com"},
		{"example.net", "autodiscover.hoster.example", "imap.example.com"},
		{"example.org", "autodiscover.hoster.example", "imap.example.com"},
		{"other.test", "autodiscover.example.net", "imap.other.test"},
	}

	// 1. DNS, as Outlook asks it, over UDP and TCP.
	srvTarget := func(t *testing.T, netw, domain string) string {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion("_autodiscover._tcp."+domain+".", dns.TypeSRV)
		m.RecursionDesired = false
		c := &dns.Client{Net: netw, Timeout: 3 * time.Second}
		r, _, err := c.Exchange(m, dnsAddr)
		if err != nil {
			t.Fatalf("%s query for %s: %v", netw, domain, err)
		}
		if r.Rcode != dns.RcodeSuccess || !r.Authoritative || len(r.Answer) != 1 {
			t.Fatalf("%s answer for %s: %v", netw, domain, r)
		}
		rr, ok := r.Answer[0].(*dns.SRV)
		if !ok || rr.Port != 443 || rr.Priority != 0 || rr.Weight != 0 {
			t.Fatalf("%s answer for %s: %v", netw, domain, r.Answer[0])
		}
		return strings.TrimSuffix(rr.Target, ".")
	}
	for _, d := range domains {
		for _, netw := range []string{"udp", "tcp"} {
			if got := srvTarget(t, netw, d.domain); got != d.target {
				t.Errorf("%s: _autodiscover._tcp.%s names %s, want %s", netw, d.domain, got, d.target)
			}
		}
	}
	// Outlook tries https://autodiscover.<domain>/ before the SRV record:
	// with a target that name is not published (a certificate that does
	// not name it would stop Outlook at a warning), autoconfig.<domain>
	// is; the target inside a served zone has the service's address.
	for _, q := range []struct {
		name  string
		rcode int
		addr  string
	}{
		{"autodiscover.example.com.", dns.RcodeNameError, ""},
		{"autodiscover.other.test.", dns.RcodeNameError, ""},
		{"autoconfig.example.com.", dns.RcodeSuccess, "127.0.0.1"},
		{"autodiscover.example.net.", dns.RcodeSuccess, "127.0.0.1"},
	} {
		m := new(dns.Msg)
		m.SetQuestion(q.name, dns.TypeA)
		r, _, err := (&dns.Client{Timeout: 3 * time.Second}).Exchange(m, dnsAddr)
		if err != nil {
			t.Fatalf("A %s: %v", q.name, err)
		}
		got := ""
		if len(r.Answer) == 1 {
			if a, ok := r.Answer[0].(*dns.A); ok {
				got = a.A.String()
			}
		}
		if r.Rcode != q.rcode || got != q.addr || (q.addr == "" && len(r.Answer) != 0) {
			t.Errorf("A %s: %s %v, want %s %q", q.name, dns.RcodeToString[r.Rcode], r.Answer, dns.RcodeToString[q.rcode], q.addr)
		}
	}

	// The independent checker, on a domain of each provider. The target
	// inside a served zone has its address here too.
	_, port, _ := net.SplitHostPort(dnsAddr)
	for _, d := range []struct{ domain, want string }{
		{"example.com", "SRV '0 0 443 autodiscover.hoster.example.' well-formed"},
		{"other.test", "target autodiscover.example.net. has an address record"},
	} {
		out, err := exec.Command("bash", filepath.Join(testutil.ConformanceDir(t), "srv.sh"), d.domain, "127.0.0.1", port).CombinedOutput()
		if err != nil || !strings.Contains(string(out), d.want) {
			t.Errorf("srv.sh %s: %v, want %q in:\n%s", d.domain, err, d.want, out)
		}
	}

	// 2. POX on the target, for an address of every domain. The client
	// connects to whatever the SRV record named, as Outlook does; the
	// dialer sends that name's port 443 to the HTTPS listener.
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: ca.Pool()},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, httpsAddr)
		},
	}}
	for _, d := range domains {
		t.Run(d.domain, func(t *testing.T) {
			addr := "user@" + d.domain
			target := srvTarget(t, "udp", d.domain)
			req, err := http.NewRequest(http.MethodPost, "https://"+target+"/autodiscover/autodiscover.xml", strings.NewReader(fmt.Sprintf(poxRequest, addr)))
			if err != nil {
				t.Fatal(err)
			}
			req.Header.Set("Content-Type", "text/xml")
			resp, err := client.Do(req)
			if err != nil {
				t.Fatalf("POX to %s: %v", target, err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "text/xml; charset=utf-8" {
				t.Fatalf("POX to %s: %d %s\n%s", target, resp.StatusCode, resp.Header.Get("Content-Type"), body)
			}
			if got := resp.TLS.PeerCertificates[0].DNSNames; len(got) != 1 || got[0] != target {
				t.Errorf("certificate for %v, want %s", got, target)
			}
			want := "<Server>" + d.provider + "</Server>"
			if d.domain == "example.org" {
				// An alias domain: Outlook is sent to the canonical
				// address, and asks the same host again.
				want = "<RedirectAddr>user@example.com</RedirectAddr>"
			}
			if !strings.Contains(string(body), want) || (d.domain != "example.org" && !strings.Contains(string(body), "<AutoDiscoverSMTPAddress>"+addr+"<")) {
				t.Errorf("POX answer for %s on %s lacks %s:\n%s", addr, target, want, body)
			}
			testutil.Validate(t, "autodiscover.py", body, "pox-"+d.domain+".xml")

			// v2 JSON sends Outlook to the same host.
			r := testutil.Get(t, srv.URL+"/autodiscover/autodiscover.json/v1.0/"+addr+"?Protocol=Autodiscoverv1", "autodiscover."+d.domain)
			var v2 struct{ Protocol, Url string }
			if err := json.Unmarshal(r.Body, &v2); err != nil || r.StatusCode != http.StatusOK {
				t.Fatalf("v2 JSON: %d %s (%v)", r.StatusCode, r.Body, err)
			}
			if want := "https://" + d.target + "/autodiscover/autodiscover.xml"; v2.Url != want {
				t.Errorf("v2 JSON Url %s, want %s", v2.Url, want)
			}
		})
	}

	// 3. Plain HTTP on the target: redirected to HTTPS on the target, as on
	// autodiscover.<domain>.
	_, httpsPort, _ := net.SplitHostPort(httpsAddr)
	for _, target := range []string{"autodiscover.hoster.example", "AUTODISCOVER.hoster.example"} {
		r := testutil.Get(t, srv.URL+"/autodiscover/autodiscover.xml", target)
		want := "https://autodiscover.hoster.example:" + httpsPort + "/autodiscover/autodiscover.xml"
		if r.StatusCode != http.StatusFound || r.Header.Get("Location") != want {
			t.Errorf("plain HTTP on %s: %d, Location %q, want 302 to %s", target, r.StatusCode, r.Header.Get("Location"), want)
		}
	}
	// A host that is neither served nor a target is not redirected.
	if r := testutil.Get(t, srv.URL+"/autodiscover/autodiscover.xml", "autodiscover.hoster.invalid"); r.StatusCode == http.StatusFound {
		t.Errorf("redirected an unknown host to %s", r.Header.Get("Location"))
	}
}
