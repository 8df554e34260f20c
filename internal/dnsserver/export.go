package dnsserver

import (
	"bufio"
	"fmt"
	"io"
	"strings"

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
		for _, z := range zones.List {
			domains = append(domains, z.Domain)
		}
	}
	bw := bufio.NewWriter(w)
	for i, d := range domains {
		zone, err := zones.Zone(d)
		if err != nil {
			return err
		}
		if i > 0 {
			fmt.Fprintln(bw)
		}
		if zoneFile {
			fmt.Fprintf(bw, "; zone %s: mail client auto-configuration for %s\n", strings.TrimSuffix(zone.Apex, "."), zone.Domain)
			fmt.Fprintf(bw, "$ORIGIN %s\n$TTL %d\n", zone.Apex, zone.SOA.Hdr.Ttl)
			fmt.Fprintln(bw, zone.SOA.String())
			for _, rr := range zone.NS {
				fmt.Fprintln(bw, rr.String())
			}
			writeGroups(bw, zone.Groups)
			continue
		}
		fmt.Fprintf(bw, "; %s: mail client auto-configuration records, to add to the zone of %s\n", zone.Domain, zone.Domain)
		writeGroups(bw, domainRecords(cat.Config, zone.provider, zone.Domain, zones.closestDomain))
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("writing records: %w", err)
	}
	return nil
}

func writeGroups(w io.Writer, groups []Group) {
	for _, g := range groups {
		fmt.Fprintf(w, "; %s\n", g.Comment)
		for _, rr := range g.RRs {
			fmt.Fprintln(w, rr.String())
		}
	}
}

// closestDomain is the served domain a host name belongs to.
func (z *Zones) closestDomain(name string) string {
	for n := name; ; {
		if _, ok := z.byDomain[n]; ok {
			return n
		}
		i := strings.IndexByte(n, '.')
		if i < 0 {
			return ""
		}
		n = n[i+1:]
	}
}
