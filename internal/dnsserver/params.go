package dnsserver

import (
	"maps"
	"net/netip"

	"mailautoconf/internal/config"
	"mailautoconf/internal/settings"
	"mailautoconf/pacc"
)

// params is the DNS section of one load with its defaults applied and its
// addresses parsed (config.DNS says what each key means). It is built once
// with the zones and read while they are derived and exported.
type params struct {
	tcp         bool // zones are _tcp.<domain> (config.ZoneTCP)
	ttl         uint32
	negativeTTL uint32
	serial      uint32
	// nameservers are the NS of every zone; never empty.
	nameservers []string
	// hostmaster is the SOA contact address; "" for hostmaster@<zone>.
	hostmaster   string
	serviceAddrs []netip.Addr
	serviceCNAME string
	hosts        map[string][]netip.Addr
	// targets holds the addresses of the Autodiscover targets that lie
	// in a served zone and are published nowhere else (Zones.targetHosts);
	// set by New once the zones are known.
	targets            map[string][]netip.Addr
	publishUnavailable bool
	// pacc holds the providers' PACC documents, whose TXT values the
	// _ua-auto-config records carry; nil publishes none.
	pacc *pacc.Renderer
	// dav holds, by provider index, the RFC 6764 services of each
	// provider, derived once from its caldav and carddav sections.
	dav [][]davService
}

// newParams reads the DNS section of a catalog's configuration, and takes
// the PACC documents rendered for the same catalog.
func newParams(cat *settings.Catalog, pc *pacc.Renderer) *params {
	d := &cat.Config.DNS
	p := &params{
		tcp:                d.ZoneMode() == config.ZoneTCP,
		ttl:                uint32(d.RecordTTL()),
		negativeTTL:        uint32(d.NegativeCacheTTL()),
		serial:             d.SOASerial(),
		nameservers:        d.NameserverNames(),
		hostmaster:         d.HostmasterAddress(),
		serviceAddrs:       d.ServiceIPs(),
		serviceCNAME:       d.ServiceTarget(),
		hosts:              d.HostIPs(),
		publishUnavailable: d.PublishUnavailable,
		pacc:               pc,
		dav:                make([][]davService, len(cat.Providers)),
	}
	for _, pv := range cat.Providers {
		p.dav[pv.Index] = davServices(pv.DAV)
	}
	if len(p.nameservers) == 0 && len(cat.Providers) > 0 {
		// The demo and small set-ups: the first provider's host.
		p.nameservers = []string{"ns." + cat.Providers[0].ID}
	}
	return p
}

// hostAddrs is dns.hosts with the Autodiscover targets of targetHosts.
func (d *params) hostAddrs() map[string][]netip.Addr {
	if len(d.targets) == 0 {
		return d.hosts
	}
	out := maps.Clone(d.hosts)
	if out == nil {
		out = map[string][]netip.Addr{}
	}
	maps.Copy(out, d.targets)
	return out
}
