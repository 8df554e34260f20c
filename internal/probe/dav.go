package probe

import (
	"context"
	"fmt"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"

	"github.com/miekg/dns"

	"mailautoconf/internal/address"
)

// DAVView is where one source sends a client for calendars (CalDAV),
// contacts (CardDAV) and JMAP. Empty fields: the source says nothing.
type DAVView struct {
	Source  string `json:"source"`
	CalDAV  string `json:"caldav,omitempty"`
	CardDAV string `json:"carddav,omitempty"`
	JMAP    string `json:"jmap,omitempty"`
}

func (v DAVView) empty() bool { return v.CalDAV == "" && v.CardDAV == "" && v.JMAP == "" }

// DAV sources as reported.
const (
	davSourceDNS        = "DNS (RFC 6764)"
	davSourceAutoconfig = "autoconfig"
	davSourceApple      = "Apple profile"
	davSourcePACC       = "PACC"
)

// CodeDAVDisagree: sources send clients to different calendar, contacts or
// JMAP servers.
const CodeDAVDisagree = "dav-disagreement"

// CodePACC: a PACC document and its TXT record do not go together.
const CodePACC = "pacc"

type davDNSResult struct {
	checks []*Check
	view   DAVView
}

// queryDAV reads the RFC 6764 records: the SRV record of _caldavs._tcp and
// _carddavs._tcp (the lowest priority, then the highest weight, as
// Thunderbird's CardDAV discovery picks) and the TXT record at the same
// name, whose path= string is the context path (RFC 6764 section 4).
// Without a TXT record a client asks /.well-known/caldav or carddav on the
// target.
func (p *prober) queryDAV(ctx context.Context) davDNSResult {
	res := davDNSResult{view: DAVView{Source: davSourceDNS}}
	services := []struct {
		label string
		dst   *string
	}{{"_caldavs._tcp.", &res.view.CalDAV}, {"_carddavs._tcp.", &res.view.CardDAV}}
	res.checks = make([]*Check, 2*len(services))
	answers := make([][]dns.RR, len(res.checks))
	var wg sync.WaitGroup
	for i, s := range services {
		for j, qtype := range []uint16{dns.TypeSRV, dns.TypeTXT} {
			k := 2*i + j
			name := s.label + p.addr.Domain
			wg.Go(func() {
				res.checks[k], answers[k] = p.dnsCheck(ctx, name, qtype)
			})
		}
	}
	wg.Wait()
	for i, s := range services {
		var srvs []*dns.SRV
		for _, rr := range answers[2*i] {
			if srv := rr.(*dns.SRV); srv.Target != "." {
				srvs = append(srvs, srv)
			}
		}
		if len(srvs) == 0 {
			continue
		}
		slices.SortStableFunc(srvs, func(a, b *dns.SRV) int {
			if a.Priority != b.Priority {
				return int(a.Priority) - int(b.Priority)
			}
			return int(b.Weight) - int(a.Weight)
		})
		host := strings.ToLower(strings.TrimSuffix(srvs[0].Target, "."))
		if srvs[0].Port != 443 {
			host += ":" + strconv.Itoa(int(srvs[0].Port))
		}
		path := "/"
	txt:
		for _, rr := range answers[2*i+1] {
			// Each character-string is one key=value pair (RFC 6763
			// section 6.3, which RFC 6764 section 4 refers to).
			for _, str := range rr.(*dns.TXT).Txt {
				if v, ok := strings.CutPrefix(str, "path="); ok {
					path = v
					break txt
				}
			}
		}
		*s.dst = "https://" + host + path
	}
	return res
}

// compareDAV reports sources that send clients to different servers. The
// URLs of DNS and PACC are context URLs shared by every mailbox; those of
// autoconfig and the Apple profile may name the mailbox's own collection.
// They agree when they have the same origin and every per-mailbox URL lies
// under every context URL.
func (p *prober) compareDAV(views []DAVView) {
	kinds := []struct {
		name string
		get  func(DAVView) string
	}{
		{"CalDAV", func(v DAVView) string { return v.CalDAV }},
		{"CardDAV", func(v DAVView) string { return v.CardDAV }},
		{"JMAP", func(v DAVView) string { return v.JMAP }},
	}
	for _, k := range kinds {
		type entry struct {
			source, raw, origin, path string
			context                   bool
		}
		var es []entry
		for _, v := range views {
			raw := k.get(v)
			if raw == "" {
				continue
			}
			u, err := url.Parse(raw)
			if err != nil || u.Host == "" {
				p.add(SevWarning, CodeMalformed, "", "%s gives %s URL %q, which is not a URL", v.Source, k.name, raw)
				continue
			}
			origin := strings.ToLower(u.Scheme + "://" + u.Hostname())
			if port := u.Port(); port != "" && port != "443" {
				origin += ":" + port
			}
			es = append(es, entry{v.Source, raw, origin, u.EscapedPath(), v.Source == davSourceDNS || v.Source == davSourcePACC})
		}
		var bad []string
		for i, a := range es {
			for _, b := range es[i+1:] {
				switch {
				case a.origin != b.origin:
				case a.context && !b.context && !strings.HasPrefix(b.path, a.path):
				case b.context && !a.context && !strings.HasPrefix(a.path, b.path):
				case a.context && b.context && a.path != b.path:
				default:
					continue
				}
				bad = append(bad, fmt.Sprintf("%s: %s; %s: %s", a.source, a.raw, b.source, b.raw))
			}
		}
		if len(bad) > 0 {
			p.add(SevWarning, CodeDAVDisagree, "", "sources send clients to different %s servers: %s", k.name, strings.Join(bad, " | "))
		}
	}
}

// davSubst fills the address placeholders of a URL, each value
// percent-encoded as a path segment.
func davSubst(u string, a address.Address) string {
	return strings.NewReplacer(
		"%EMAILADDRESS%", url.PathEscape(a.String()),
		"%EMAILLOCALPART%", url.PathEscape(a.Local),
		"%EMAILDOMAIN%", a.Domain,
	).Replace(u)
}
