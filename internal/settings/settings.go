// Package settings turns the configuration into the one value every protocol
// renders from: the mail settings that apply to an address.
//
// A Catalog is built once per configuration load. It maps every served domain
// to its provider, so that a request costs one map lookup whatever the number
// of domains.
package settings

import (
	"errors"
	"fmt"
	"strings"

	"mailautoconf/internal/address"
	"mailautoconf/internal/config"
)

// Provider is a validated, defaulted provider from the configuration with its
// position in the catalog. Renderers key their per-provider output by Index.
type Provider struct {
	config.Provider
	Index int
}

// Incoming returns the incoming servers in configured (preference) order.
func (p *Provider) Incoming() []config.Server { return p.filter(false) }

// Outgoing returns the outgoing servers in configured (preference) order.
func (p *Provider) Outgoing() []config.Server { return p.filter(true) }

func (p *Provider) filter(smtp bool) []config.Server {
	var out []config.Server
	for _, s := range p.Servers {
		if (s.Type == config.TypeSMTP) == smtp {
			out = append(out, s)
		}
	}
	return out
}

// Catalog is the immutable lookup structure of one configuration.
type Catalog struct {
	Config    *config.Config
	Providers []*Provider
	exact     map[string]*Provider
	wildcard  map[string]*Provider // "example.org" for "*.example.org"
	canonical map[string]string    // alias domain -> the provider's domain
	targets   map[string]bool      // the providers' Autodiscover targets
}

// New builds a catalog from a validated configuration.
func New(c *config.Config) *Catalog {
	cat := &Catalog{
		Config:    c,
		exact:     make(map[string]*Provider),
		wildcard:  make(map[string]*Provider),
		canonical: make(map[string]string),
		targets:   make(map[string]bool),
	}
	for i := range c.Providers {
		p := &Provider{Provider: c.Providers[i], Index: i}
		cat.Providers = append(cat.Providers, p)
		if p.AutodiscoverTarget != "" {
			cat.targets[p.AutodiscoverTarget] = true
		}
		for _, d := range p.Domains {
			if base, ok := strings.CutPrefix(d, "*."); ok {
				cat.wildcard[base] = p
			} else {
				cat.exact[d] = p
			}
		}
		// An alias domain is served by its provider like any other of
		// its domains; Canonical tells what it stands for.
		for alias, canon := range p.Aliases {
			cat.exact[alias] = p
			cat.canonical[alias] = canon
		}
	}
	return cat
}

// IsAutodiscoverTarget reports whether host (lower case, no trailing dot)
// is a provider's dns.autodiscover_target: one Autodiscover host for many
// domains, where the address in the request, not the host, picks the
// domain.
func (c *Catalog) IsAutodiscoverTarget(host string) bool { return c.targets[host] }

// Canonical returns the provider domain that an alias domain stands for, and
// false when domain is not an alias.
func (c *Catalog) Canonical(domain string) (string, bool) {
	d, ok := c.canonical[domain]
	return d, ok
}

// Lookup finds the provider serving a normalised domain: an exact entry
// first, then the closest "*.parent" wildcard. A wildcard does not match its
// parent itself.
func (c *Catalog) Lookup(domain string) (*Provider, bool) {
	if p, ok := c.exact[domain]; ok {
		return p, true
	}
	for d := domain; ; {
		i := strings.IndexByte(d, '.')
		if i < 0 {
			return nil, false
		}
		d = d[i+1:]
		if p, ok := c.wildcard[d]; ok {
			return p, true
		}
	}
}

// Settings is what one request is about: a provider, the domain asked for
// and, when the client sent one, the address.
type Settings struct {
	Provider *Provider
	Domain   string
	// Address is nil when the client did not say which mailbox it sets up;
	// renderers then keep the %EMAIL…% placeholders for the client to fill.
	Address *address.Address
	// CanonicalDomain is set when Domain is an alias domain of the
	// provider: the provider's own domain that it stands for.
	CanonicalDomain string
}

// Canonical returns the mailbox address that Address stands for: the same
// local part at the canonical domain when Domain is an alias, Address itself
// otherwise (nil without an address).
func (s Settings) Canonical() *address.Address {
	if s.Address == nil || s.CanonicalDomain == "" {
		return s.Address
	}
	return &address.Address{Local: s.Address.Local, Domain: s.CanonicalDomain}
}

// ErrUnknownDomain is returned for a domain no provider serves.
var ErrUnknownDomain = errors.New("no mail settings are published for this domain")

// ErrNoDomain is returned when neither an address nor the Host header names a
// domain.
var ErrNoDomain = errors.New("missing emailaddress parameter")

// ForAddress resolves an address typed by a user.
func (c *Catalog) ForAddress(raw string) (Settings, error) {
	a, err := address.Parse(raw)
	if err != nil {
		return Settings{}, err
	}
	p, ok := c.Lookup(a.Domain)
	if !ok {
		return Settings{}, ErrUnknownDomain
	}
	canon, _ := c.Canonical(a.Domain)
	return Settings{Provider: p, Domain: a.Domain, Address: &a, CanonicalDomain: canon}, nil
}

// ForHost resolves the domain from an HTTP Host header such as
// "autoconfig.example.com:8080", for clients that send no address. One of
// the prefixes is removed first; a host name without a known prefix (or
// whose remainder is not served) is tried as it is, for .well-known requests
// sent to the domain itself.
func (c *Catalog) ForHost(host string, prefixes ...string) (Settings, error) {
	d, err := address.HostDomain(host)
	if err != nil {
		return Settings{}, fmt.Errorf("%w (and the Host header names no domain)", ErrNoDomain)
	}
	for _, pre := range prefixes {
		if rest, ok := strings.CutPrefix(d, pre); ok && rest != "" {
			if p, ok := c.Lookup(rest); ok {
				canon, _ := c.Canonical(rest)
				return Settings{Provider: p, Domain: rest, CanonicalDomain: canon}, nil
			}
		}
	}
	if p, ok := c.Lookup(d); ok {
		canon, _ := c.Canonical(d)
		return Settings{Provider: p, Domain: d, CanonicalDomain: canon}, nil
	}
	return Settings{}, ErrUnknownDomain
}

// Placeholder names of Thunderbird's autoconfig format, used in login-name
// templates and understood by every renderer.
const (
	PlaceholderAddress = "%EMAILADDRESS%"
	PlaceholderLocal   = "%EMAILLOCALPART%"
	PlaceholderDomain  = "%EMAILDOMAIN%"
)

// Expand fills the placeholders of a template with the address. Without an
// address it returns the template unchanged.
//
// For an address at an alias domain the login name is built from the
// canonical mailbox address: the mail servers know the mailbox, not the
// alias.
func (s Settings) Expand(template string) string {
	a := s.Canonical()
	if a == nil || !strings.Contains(template, "%") {
		return template
	}
	return strings.NewReplacer(
		PlaceholderAddress, a.String(),
		PlaceholderLocal, a.Local,
		PlaceholderDomain, a.Domain,
	).Replace(template)
}
