// Package dnsserver publishes the mail service records of the configuration
// in DNS: as an authoritative server (UDP and TCP) and as zone-file lines for
// a hoster's existing DNS (`mailautoconf records`).
//
// Which clients read what:
//   - FairEmail, K-9/Thunderbird for Android (as a fallback), Evolution and
//     KMail look up the RFC 6186 names _imaps._tcp, _imap._tcp, _pop3s._tcp,
//     _pop3._tcp, _submissions._tcp and _submission._tcp under the domain of
//     the address, and pick the lowest priority value across IMAP and POP3.
//     RFC 8314 section 5.1 asks that implicit TLS be preferred, so the
//     implicit-TLS services always get the lower value within a protocol.
//   - Outlook (and Thunderbird's Exchange support) look up
//     _autodiscover._tcp and then ask the target over HTTPS on port 443.
//   - Thunderbird itself does not read SRV records for mail; it needs the
//     autoconfig.<domain> host name to resolve, hence the A/AAAA records.
//     For address books it does read RFC 6764 records (CardDAVUtils:
//     _carddavs._tcp SRV, then TXT path=), as do DAVx⁵ and other CalDAV
//     and CardDAV clients.
//   - PACC clients (draft-ietf-mailmaint-pacc) fetch the document from
//     ua-auto-config.<domain> and trust it only when its SHA-256 is the d=
//     of the _ua-auto-config.<domain> TXT record, published here from the
//     same rendering the HTTP endpoint serves.
//
// All answers are encoded once per configuration load (New), per provider
// rather than per domain (see Zones); a query only looks up its answer and
// fills in the question and the apex pointers.
package dnsserver

import (
	"maps"
	"net/netip"
	"slices"
	"strings"

	"github.com/miekg/dns"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
)

// service maps a server type and security to its RFC 6186 / RFC 8314 name.
type service struct {
	typ, security, label string
}

// services lists the mail service names in the order they are printed.
// Plain servers share the STARTTLS name: RFC 6186 defines one name per
// protocol for "cleartext that may be upgraded", and a client reading it is
// expected to use STARTTLS when the server offers it.
var services = []service{
	{config.TypeIMAP, config.SecurityTLS, "_imaps"},
	{config.TypeIMAP, config.SecurityStartTLS, "_imap"},
	{config.TypeIMAP, config.SecurityPlain, "_imap"},
	{config.TypePOP3, config.SecurityTLS, "_pop3s"},
	{config.TypePOP3, config.SecurityStartTLS, "_pop3"},
	{config.TypePOP3, config.SecurityPlain, "_pop3"},
	{config.TypeSMTP, config.SecurityTLS, "_submissions"},
	{config.TypeSMTP, config.SecurityStartTLS, "_submission"},
	{config.TypeSMTP, config.SecurityPlain, "_submission"},
}

// serviceLabels are the six distinct mail service names.
var serviceLabels = []string{"_imaps", "_imap", "_pop3s", "_pop3", "_submissions", "_submission"}

func serviceLabel(typ, security string) string {
	for _, s := range services {
		if s.typ == typ && s.security == security {
			return s.label
		}
	}
	return ""
}

// PriorityStep separates the priorities of successive choices, leaving room
// for a hoster to slot their own records in between.
const PriorityStep = 10

// Group is a set of records printed under one comment.
type Group struct {
	Comment string
	RRs     []dns.RR
}

// srvRecord is one SRV record before it gets an owner name.
type srvRecord struct {
	label                  string
	priority, weight, port uint16
	target                 string
}

// srvRecords derives the SRV records of a provider. Priorities are
// comparable across IMAP and POP3 (RFC 6186 section 3.4): the protocol
// listed first in the configuration comes first, then the order of
// settings.Provider.Preferred (implicit TLS before STARTTLS, RFC 8314
// section 5.1, then the configured order). Servers of one service that both
// carry a weight share a priority (load balancing by weight, RFC 2782)
// instead of being tried one after the other.
func srvRecords(p *settings.Provider) []srvRecord {
	var out []srvRecord
	for _, group := range [][]settings.Server{p.Incoming(), p.Outgoing()} {
		// The protocols in the order of their first server with a
		// host name: an SRV target must be one (RFC 2782), so servers
		// given by IP address are left out.
		var types []string
		for _, s := range group {
			if !isIP(s.Host) && !slices.Contains(types, s.Type) {
				types = append(types, s.Type)
			}
		}
		var list []settings.Server
		for _, t := range types {
			for _, s := range p.Preferred(t) {
				if !isIP(s.Host) {
					list = append(list, s)
				}
			}
		}
		prio := 0
		seen := map[srvRecord]bool{}
		for i, s := range list {
			label := serviceLabel(s.Type, s.Security)
			if i > 0 {
				prev := list[i-1]
				shared := prev.Type == s.Type && prev.Security == s.Security && prev.Weight > 0 && s.Weight > 0
				if !shared {
					prio += PriorityStep
				}
			}
			r := srvRecord{label: label, priority: uint16(min(prio, 65535)), weight: uint16(s.Weight), port: uint16(s.Port), target: dns.Fqdn(s.Host)}
			key := r
			key.priority = 0
			if seen[key] {
				continue // the same endpoint listed twice
			}
			seen[key] = true
			out = append(out, r)
		}
	}
	return out
}

// isIP reports whether a server's host is an IP address.
func isIP(host string) bool {
	_, err := netip.ParseAddr(host)
	return err == nil
}

// domainRecords derives every record of one served domain, grouped for
// printing. hostZone tells which served domain a host name of dns.hosts
// belongs to, so that a host is listed once, under its closest domain.
func domainRecords(d *params, p *settings.Provider, domain string, hostDomain func(string) string) []Group {
	ttl := d.ttl
	fqdn := dns.Fqdn(domain)
	hdr := func(name string, t uint16) dns.RR_Header {
		return dns.RR_Header{Name: name, Rrtype: t, Class: dns.ClassINET, Ttl: ttl}
	}
	srv := func(name string, prio, weight, port uint16, target string) dns.RR {
		return &dns.SRV{Hdr: hdr(name, dns.TypeSRV), Priority: prio, Weight: weight, Port: port, Target: target}
	}

	var groups []Group
	mail := Group{Comment: "mail services (RFC 6186); implicit TLS preferred (RFC 8314 section 5.1)"}
	have := map[string]bool{}
	for _, r := range srvRecords(p) {
		mail.RRs = append(mail.RRs, srv(r.label+"._tcp."+fqdn, r.priority, r.weight, r.port, r.target))
		have[r.label] = true
	}
	if d.publishUnavailable {
		for _, l := range serviceLabels {
			if !have[l] {
				mail.RRs = append(mail.RRs, srv(l+"._tcp."+fqdn, 0, 0, 0, "."))
			}
		}
	}
	groups = append(groups, mail)

	// Outlook asks the SRV target over HTTPS; RFC 2782 forbids an alias
	// as target, so with service_cname the target is the alias's target.
	// A configured target (dns.autodiscover_target) is one host for all
	// of the provider's domains, so one certificate serves them all.
	adTarget := "autodiscover." + fqdn
	if d.serviceCNAME != "" {
		adTarget = dns.Fqdn(d.serviceCNAME)
	}
	if p.AutodiscoverTarget != "" {
		adTarget = dns.Fqdn(p.AutodiscoverTarget)
	}
	groups = append(groups, Group{
		Comment: "Outlook Autodiscover ([MS-OXDISCO]): HTTPS on the target",
		RRs:     []dns.RR{srv("_autodiscover._tcp."+fqdn, 0, 0, 443, adTarget)},
	})

	if dav := d.dav[p.Index]; len(dav) > 0 {
		g := Group{Comment: "calendars and contacts (RFC 6764): CalDAV and CardDAV over TLS, and the context path"}
		for _, s := range dav {
			name := s.label + "._tcp." + fqdn
			g.RRs = append(g.RRs, srv(name, 0, 0, s.port, s.target))
			if s.path != "" {
				g.RRs = append(g.RRs, &dns.TXT{Hdr: hdr(name, dns.TypeTXT), Txt: []string{txtEscape("path=" + s.path)}})
			}
		}
		if d.publishUnavailable {
			// Only https is published (config.ParseServiceURL), so the
			// plain-HTTP names are "decidedly not available" (RFC 2782).
			for _, s := range dav {
				g.RRs = append(g.RRs, srv(strings.TrimSuffix(s.label, "s")+"._tcp."+fqdn, 0, 0, 0, "."))
			}
		}
		groups = append(groups, g)
	}

	if doc := d.pacc.For(p); doc != nil {
		groups = append(groups, Group{
			Comment: "PACC (draft-ietf-mailmaint-pacc): the SHA-256 of https://ua-auto-config." + domain + "/.well-known/user-agent-configuration.json",
			RRs:     []dns.RR{&dns.TXT{Hdr: hdr("_ua-auto-config."+fqdn, dns.TypeTXT), Txt: []string{doc.TXT()}}},
		})
	}

	hosts := Group{Comment: "autoconfig (Thunderbird), autodiscover (Outlook) and ua-auto-config (PACC) host names of this service"}
	if p.AutodiscoverTarget != "" {
		hosts.Comment = "autoconfig (Thunderbird) and ua-auto-config (PACC) host names of this service; Outlook follows the SRV record to the Autodiscover target"
	}
	for _, pre := range settings.ServicePrefixes {
		if pre == "autodiscover." && p.AutodiscoverTarget != "" {
			// Outlook tries https://autodiscover.<domain>/ before the
			// SRV record; answered here with a certificate that does not
			// name it, it would stop at a certificate warning instead of
			// reaching the target. So that name is left unpublished.
			continue
		}
		h := pre + fqdn
		if d.serviceCNAME != "" {
			hosts.RRs = append(hosts.RRs, &dns.CNAME{Hdr: hdr(h, dns.TypeCNAME), Target: dns.Fqdn(d.serviceCNAME)})
			continue
		}
		hosts.RRs = append(hosts.RRs, addrRRs(h, d.serviceAddrs, ttl)...)
	}
	if len(hosts.RRs) > 0 {
		groups = append(groups, hosts)
	}

	other := Group{Comment: "other hosts in " + domain + " (dns.hosts)"}
	all := d.hostAddrs()
	for _, h := range slices.Sorted(maps.Keys(all)) {
		if hostDomain(h) == domain {
			other.RRs = append(other.RRs, addrRRs(dns.Fqdn(h), all[h], ttl)...)
			if d.targets[h] != nil {
				other.Comment = "other hosts in " + domain + " (dns.hosts; Autodiscover targets at dns.service_addresses)"
			}
		}
	}
	if len(other.RRs) > 0 {
		groups = append(groups, other)
	}
	return groups
}

// davService is a CalDAV or CardDAV service as RFC 6764 publishes it.
type davService struct {
	label  string // "_caldavs", "_carddavs"
	target string // the SRV target, absolute
	port   uint16
	path   string // the context path, for TXT path=
}

// davServices derives the RFC 6764 services of a provider from its CalDAV
// and CardDAV services (JMAP has no SRV name). RFC 6764 section 3 names
// _caldavs._tcp and _carddavs._tcp for HTTP over TLS, which is all a
// service URL may be; section 4 has the TXT record's path= key give the
// context path, from which the client finds the mailbox's principal and
// home collections (section 6), so a URL with placeholders publishes the
// part before the first one. Left out: a host name holding %EMAILDOMAIN%
// (it differs per domain, and alias domains share their provider's
// records, so the name would be that of the alias, which has no server)
// and an IP address (an SRV target must be a host name, RFC 2782).
func davServices(dav settings.DAV) []davService {
	var out []davService
	for _, s := range dav.Services() {
		label := map[string]string{config.ServiceCalDAV: "_caldavs", config.ServiceCardDAV: "_carddavs"}[s.Kind]
		u := s.URL
		if label == "" || u.ContextURL() == "" || isIP(u.Host) {
			continue
		}
		ds := davService{label: label, target: dns.Fqdn(u.Host), port: uint16(u.Port), path: u.Context}
		if len("path=")+len(ds.path) > 255 {
			// One character-string holds 255 octets, and clients
			// (Thunderbird's CardDAVUtils) read only the first one
			// that starts with "path=": such a path cannot be
			// published, and clients fall back to /.well-known.
			ds.path = ""
		}
		out = append(out, ds)
	}
	return out
}

// txtEscape writes s in the presentation form the library keeps TXT
// character-strings in (a backslash before '"' and '\\').
func txtEscape(s string) string {
	return strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s)
}

// addrRRs makes A and AAAA records for addresses.
func addrRRs(name string, addrs []netip.Addr, ttl uint32) []dns.RR {
	var out []dns.RR
	for _, a := range addrs {
		if a.Is4() {
			out = append(out, &dns.A{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeA, Class: dns.ClassINET, Ttl: ttl}, A: a.AsSlice()})
		} else {
			out = append(out, &dns.AAAA{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeAAAA, Class: dns.ClassINET, Ttl: ttl}, AAAA: a.AsSlice()})
		}
	}
	return out
}
