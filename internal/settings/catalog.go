package settings

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"mailautoconf/internal/config"
)

// Domain is a served domain from a source other than the configuration
// file, such as a database table or a directory: one row naming a domain,
// the provider that serves it and, for an alias domain, the provider domain
// it stands for.
type Domain struct {
	// Name is the domain as the source has it: "example.com", a Unicode
	// name, or "*.example.org" for every name below example.org.
	Name string
	// Provider is the id of a configured provider; empty for the
	// configuration's first provider (a table without a provider column:
	// the common case of a hoster with one mail platform). It is resolved
	// when the catalog is built, so a reload that reorders the providers
	// moves such domains with the first one.
	Provider string
	// AliasOf makes Name an alias domain of that provider domain (see
	// config.ParseAlias); empty for an ordinary domain.
	AliasOf string
}

// Skipped is a domain that New left out, with the reason.
type Skipped struct {
	Domain Domain
	Reason string
}

// New builds the catalog of a validated configuration and of extra domains
// from other sources.
//
// Extra domains are held to the rules of the configuration's own
// (config.ParseServedDomain, config.ParseAlias): normalised the same way,
// never served by two providers, aliases only of a plain domain of their
// own provider. A configured domain wins over an extra one, and among extra
// domains the first wins. An extra domain that breaks a rule is left out
// and listed by Skipped with the reason, for the caller to log; the rest are
// served. Ordinary domains are added before alias domains, so an alias may
// stand for an extra domain.
func New(c *config.Config, extra ...Domain) *Catalog {
	cat := &Catalog{
		Config:    c,
		exact:     make(map[string]*Provider),
		wildcard:  make(map[string]*Provider),
		canonical: make(map[string]string),
		targets:   make(map[string]bool),
	}
	byID := make(map[string]*Provider, len(c.Providers))
	type alias struct {
		p *Provider
		d Domain
	}
	var aliases []alias
	for i := range c.Providers {
		cp := &c.Providers[i]
		p := newProvider(i, cp)
		if p.AutodiscoverTarget = c.AutodiscoverTarget(cp); p.AutodiscoverTarget != "" {
			cat.targets[p.AutodiscoverTarget] = true
		}
		cat.Providers = append(cat.Providers, p)
		if _, dup := byID[p.ID]; !dup {
			byID[p.ID] = p
		}
		for _, d := range cp.Domains {
			cat.add(p, Domain{Name: d, Provider: p.ID})
		}
	}
	// The configuration's aliases before any extra domain: they stand for
	// configured domains, and the configuration wins. Sorted, so that the
	// catalog does not depend on map order.
	for i := range c.Providers {
		cp := &c.Providers[i]
		for _, a := range slices.Sorted(maps.Keys(cp.Aliases)) {
			cat.add(cat.Providers[i], Domain{Name: a, Provider: cat.Providers[i].ID, AliasOf: cp.Aliases[a]})
		}
	}
	for _, d := range extra {
		p, ok := byID[config.NormalizeHost(d.Provider)]
		if d.Provider == "" && len(cat.Providers) > 0 {
			p, ok = cat.Providers[0], true
		}
		switch {
		case !ok:
			cat.skip(d, fmt.Sprintf("no provider has the id %q", d.Provider))
		case d.AliasOf != "":
			aliases = append(aliases, alias{p, d})
		default:
			cat.add(p, d)
		}
	}
	for _, a := range aliases {
		cat.add(a.p, a.d)
	}
	return cat
}

// Skipped lists the domains New left out, with the reason.
func (c *Catalog) Skipped() []Skipped { return c.skipped }

func (c *Catalog) skip(d Domain, reason string) {
	c.skipped = append(c.skipped, Skipped{Domain: d, Reason: reason})
}

// add serves d by p, or records why not.
func (c *Catalog) add(p *Provider, d Domain) {
	if d.AliasOf != "" {
		a, canon, err := config.ParseAlias(d.Name, d.AliasOf, func(n string) bool {
			_, isAlias := c.canonical[n]
			return c.exact[n] == p && !isAlias
		})
		if err != nil {
			c.skip(d, err.Error())
			return
		}
		if prev, ok := c.exact[a]; ok {
			c.skip(d, fmt.Sprintf("alias %s is already served by provider %s", a, prev.ID))
			return
		}
		c.exact[a] = p
		c.canonical[a] = canon
		p.Aliases[a] = canon
		return
	}
	norm, err := config.ParseServedDomain(d.Name)
	if err != nil {
		c.skip(d, err.Error())
		return
	}
	m, key := c.exact, norm
	if base, ok := strings.CutPrefix(norm, "*."); ok {
		m, key = c.wildcard, base
	}
	if prev, ok := m[key]; ok {
		c.skip(d, fmt.Sprintf("domain %s is already served by provider %s", norm, prev.ID))
		return
	}
	m[key] = p
	p.Domains = append(p.Domains, norm)
}

// NamedDomains returns the served domains of p that are single names: its
// domains without the "*.parent" wildcards, in order, then its alias
// domains, sorted. These are the domains that have DNS records and
// certificate names of their own; a wildcard stands for names nobody can
// list.
func (p *Provider) NamedDomains() []string {
	out := make([]string, 0, len(p.Domains)+len(p.Aliases))
	for _, d := range p.Domains {
		if !strings.HasPrefix(d, "*.") {
			out = append(out, d)
		}
	}
	return append(out, slices.Sorted(maps.Keys(p.Aliases))...)
}

// ServicePrefixes are the labels clients put before a mail domain to find
// this service: Thunderbird and its kin ask autoconfig.<domain>, Outlook
// autodiscover.<domain>, PACC clients (draft-ietf-mailmaint-pacc)
// ua-auto-config.<domain>. The DNS zones publish these names, the HTTP
// handlers strip them from the Host header, and certificates must cover
// them.
var ServicePrefixes = [...]string{"autoconfig.", "autodiscover.", "ua-auto-config."}

// ServedNames lists every host name a certificate of this service must
// cover: autoconfig.<domain>, autodiscover.<domain> and
// ua-auto-config.<domain> for each of the providers' NamedDomains (alias
// domains included), providers in order. A
// provider with an AutodiscoverTarget has that one host instead of its
// autodiscover.<domain> names (the zones do not publish them). Names below
// a "*.parent" wildcard domain cannot be listed; ServesHost answers for
// them one at a time.
func (c *Catalog) ServedNames() []string {
	var out []string
	seen := map[string]bool{}
	for _, p := range c.Providers {
		if t := p.AutodiscoverTarget; t != "" && !seen[t] {
			seen[t] = true
			out = append(out, t)
		}
		for _, d := range p.NamedDomains() {
			for _, pre := range ServicePrefixes {
				if pre == "autodiscover." && p.AutodiscoverTarget != "" {
					continue
				}
				out = append(out, pre+d)
			}
		}
	}
	return out
}

// ServesHost reports whether host names this service for a served domain:
// autoconfig.<domain>, autodiscover.<domain> or ua-auto-config.<domain>
// (a ServicePrefixes name), where the domain is served
// exactly, as an alias, or below a "*.parent" wildcard, or a provider's
// AutodiscoverTarget. host is a host name
// as a TLS client sends it (SNI): A-labels, any case, with or without a
// trailing dot, no port. It is the question to ask before getting a
// certificate for a name on demand.
func (c *Catalog) ServesHost(host string) bool {
	host = strings.ToLower(strings.TrimSuffix(host, "."))
	if c.targets[host] {
		return true
	}
	for _, pre := range ServicePrefixes {
		if d, ok := strings.CutPrefix(host, pre); ok && d != "" {
			if _, ok := c.Lookup(d); ok {
				return true
			}
		}
	}
	return false
}
