package dnsserver

import (
	"bufio"
	"fmt"
	"io"
	"strings"

	"github.com/miekg/dns"

	"mailautoconf/internal/settings"
)

// Export writes the records of the given domains (all served domains when
// none is given) as BIND zone-file lines, one comment per group.
//
// Without zoneFile the output is meant to be pasted into a zone the hoster
// already runs: absolute names, no SOA or NS, and also the records outside
// the server's own zone (with zone "_tcp" the autoconfig and autodiscover
// addresses belong in the hoster's zone). With zoneFile each domain's output
// is a complete zone ($ORIGIN, $TTL, SOA, NS) that an authoritative server
// such as NSD or Knot loads as it is; give one domain per file.
func Export(w io.Writer, cat *settings.Catalog, zones *Zones, domains []string, zoneFile bool) error {
	if len(domains) == 0 {
		// In configuration order; a domain listed twice is served by
		// its first provider.
		seen := map[string]bool{}
		for _, p := range cat.Providers {
			for _, d := range p.NamedDomains() {
				if !seen[d] {
					seen[d] = true
					domains = append(domains, d)
				}
			}
		}
	}
	pr := zones.params
	bw := bufio.NewWriter(w)
	for i, d := range domains {
		domain, p, err := zones.zone(d)
		if err != nil {
			return err
		}
		apex := zones.apexOf(domain)
		if i > 0 {
			fmt.Fprintln(bw)
		}
		// The records are derived again here rather than kept: the
		// server itself only needs them in wire form.
		groups := domainRecords(pr, p, domain, zones.closestDomain)
		if zoneFile {
			soa, ns := soaNS(pr, apex)
			fmt.Fprintf(bw, "; zone %s: mail client auto-configuration for %s\n", strings.TrimSuffix(apex, "."), domain)
			fmt.Fprintf(bw, "$ORIGIN %s\n$TTL %d\n", apex, pr.ttl)
			fmt.Fprintln(bw, soa.String())
			for _, rr := range ns {
				fmt.Fprintln(bw, rr.String())
			}
			writeGroups(bw, inZone(groups, apex))
			continue
		}
		fmt.Fprintf(bw, "; %s: mail client auto-configuration records, to add to the zone of %s\n", domain, domain)
		writeGroups(bw, groups)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing records: %w", err)
	}
	return nil
}

// inZone keeps the records of groups that are at or below apex.
func inZone(groups []Group, apex string) []Group {
	var out []Group
	for _, g := range groups {
		in := Group{Comment: g.Comment}
		for _, rr := range g.RRs {
			if dns.IsSubDomain(apex, rr.Header().Name) {
				in.RRs = append(in.RRs, rr)
			}
		}
		if len(in.RRs) > 0 {
			out = append(out, in)
		}
	}
	return out
}

func writeGroups(w io.Writer, groups []Group) {
	for _, g := range groups {
		fmt.Fprintf(w, "; %s\n", g.Comment)
		for _, rr := range g.RRs {
			fmt.Fprintln(w, rr.String())
		}
	}
}

// closestDomain is the served domain a host name belongs to, or "".
func (z *Zones) closestDomain(name string) string {
	d, _ := settings.Closest(name, func(n string) bool {
		_, ok := z.zones[n]
		return ok
	})
	return d
}
