package probe

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// srvService is one RFC 6186 / RFC 8314 service name and what a client
// makes of it.
type srvService struct {
	label    string
	protocol string
	security string
	incoming bool
}

// srvServices in the order a client prefers them at equal priority:
// implicit TLS first (RFC 8314 section 5.1), IMAP before POP3.
var srvServices = []srvService{
	{"_imaps", IMAP, SecurityTLS, true},
	{"_imap", IMAP, SecurityStartTLS, true},
	{"_pop3s", POP3, SecurityTLS, true},
	{"_pop3", POP3, SecurityStartTLS, true},
	{"_submissions", SMTP, SecurityTLS, false},
	{"_submission", SMTP, SecurityStartTLS, false},
}

type dnsResult struct {
	checks []*Check
	view   View
	// autodiscoverSRV is the target of _autodiscover._tcp, for Outlook's
	// last resort.
	autodiscoverSRV *dns.SRV
}

// srvCandidate is a usable SRV record of one service.
type srvCandidate struct {
	svc srvService
	rr  *dns.SRV
}

// queryDNS asks for the SRV records and the addresses of the autoconfig and
// autodiscover hosts, and derives what an SRV-aware client configures.
func (p *prober) queryDNS(ctx context.Context) dnsResult {
	d := p.addr.Domain
	type q struct {
		name  string
		qtype uint16
	}
	var qs []q
	for _, s := range srvServices {
		qs = append(qs, q{s.label + "._tcp." + d, dns.TypeSRV})
	}
	qs = append(qs, q{"_autodiscover._tcp." + d, dns.TypeSRV})
	for _, h := range []string{"autoconfig.", "autodiscover."} {
		qs = append(qs, q{h + d, dns.TypeA}, q{h + d, dns.TypeAAAA})
	}
	checks := make([]*Check, len(qs))
	answers := make([][]dns.RR, len(qs))
	var wg sync.WaitGroup
	for i, x := range qs {
		wg.Go(func() {
			checks[i], answers[i] = p.dnsCheck(ctx, x.name, x.qtype)
		})
	}
	wg.Wait()

	res := dnsResult{checks: checks, view: View{Client: SRVClients}}
	var in, out []srvCandidate
	for i, s := range srvServices {
		for _, rr := range answers[i] {
			srv := rr.(*dns.SRV)
			if srv.Target == "." {
				// "Decidedly not available" (RFC 2782, RFC 6186 section 4).
				continue
			}
			e := Endpoint{Protocol: s.protocol, Host: strings.ToLower(strings.TrimSuffix(srv.Target, ".")), Port: int(srv.Port), Security: s.security}
			res.view.Offered = append(res.view.Offered, e)
			if s.incoming {
				in = append(in, srvCandidate{s, srv})
			} else {
				out = append(out, srvCandidate{s, srv})
			}
		}
	}
	pick := func(cs []srvCandidate) *Endpoint {
		if len(cs) == 0 {
			return nil
		}
		// Lowest priority value wins across the services (RFC 6186
		// section 3.4); the stable sort keeps the preference order of
		// srvServices among equals.
		slices.SortStableFunc(cs, func(a, b srvCandidate) int { return int(a.rr.Priority) - int(b.rr.Priority) })
		c := cs[0]
		return &Endpoint{Protocol: c.svc.protocol, Host: strings.ToLower(strings.TrimSuffix(c.rr.Target, ".")), Port: int(c.rr.Port), Security: c.svc.security}
	}
	res.view.Incoming, res.view.Outgoing = pick(in), pick(out)
	if res.view.Incoming != nil || res.view.Outgoing != nil {
		res.view.Source = "SRV records of " + d
	}
	for _, rr := range answers[len(srvServices)] {
		if srv := rr.(*dns.SRV); srv.Target != "." {
			res.autodiscoverSRV = srv
			break
		}
	}
	// A/AAAA of autoconfig. and autodiscover.
	base := len(srvServices) + 1
	for i, h := range []string{"autoconfig.", "autodiscover."} {
		a, aaaa := checks[base+2*i], checks[base+2*i+1]
		if a.Status != StatusOK && aaaa.Status != StatusOK {
			who := Thunderbird
			if h == "autodiscover." {
				who = Outlook
			}
			p.add(SevWarning, CodeNoAddress, who, "%s%s has no A or AAAA record (%s; %s)", h, d, a.Detail, aaaa.Detail)
		}
	}
	return res
}

// rdata is a record's data as in a zone file.
func rdata(rr dns.RR) string {
	s := rr.String()
	h := rr.Header().String()
	return strings.TrimSpace(strings.TrimPrefix(s, h))
}

// srvURL is the Autodiscover URL an SRV record points Outlook to.
func srvURL(srv *dns.SRV) string {
	host := strings.TrimSuffix(srv.Target, ".")
	if srv.Port != 443 {
		host = fmt.Sprintf("%s:%d", host, srv.Port)
	}
	return "https://" + host + "/autodiscover/autodiscover.xml"
}

// dnsCheck asks for one name and type and turns the answer into a check:
// missing when the name has no such record, an error when the lookup
// failed, else OK with the records' data.
func (p *prober) dnsCheck(ctx context.Context, name string, qtype uint16) (*Check, []dns.RR) {
	c := &Check{Kind: "dns", Target: name + " " + dns.TypeToString[qtype]}
	rrs, err := p.res.query(ctx, name, qtype)
	switch {
	case errors.Is(err, errNoRecord):
		c.Status, c.Detail = StatusMissing, "no record"
	case err != nil:
		c.Status, c.Detail = StatusError, err.Error()
	default:
		c.Status = StatusOK
		var parts []string
		for _, rr := range rrs {
			parts = append(parts, rdata(rr))
		}
		c.Detail = strings.Join(parts, ", ")
	}
	return c, rrs
}
