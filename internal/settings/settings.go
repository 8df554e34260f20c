// Package settings is the service's domain model: the mail settings that
// apply to an address, the one value every protocol renders from.
//
// A Catalog is built once per load, from the validated configuration and
// the served domains of other sources. It holds every provider as clients
// are told about it (Provider: defaults filled in, the servers each client
// is told about already chosen and ordered) and maps every served domain to
// its provider, so that a request costs one map lookup whatever the number
// of domains. The renderers (autoconfig, autodiscover, mobileconfig, the
// settings page, the DNS zones) read only this model, never the
// configuration's servers: rules such as publish_plain are applied here,
// once, and every client is told the same thing by construction.
package settings

import (
	"errors"
	"fmt"
	"strings"

	"mailautoconf/internal/address"
	"mailautoconf/internal/config"
)

// Catalog is the immutable lookup structure of one load.
type Catalog struct {
	// Config is the validated configuration the catalog was built from,
	// for the sections that are not about providers (DNS, signing).
	Config    *config.Config
	Providers []*Provider
	exact     map[string]*Provider
	wildcard  map[string]*Provider // "example.org" for "*.example.org"
	canonical map[string]string    // alias domain -> the provider's domain
	targets   map[string]bool      // the providers' AutodiscoverTargets
	skipped   []Skipped
}

// IsAutodiscoverTarget reports whether host (lower case, no trailing dot)
// is a provider's AutodiscoverTarget: one Autodiscover host for many
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
	for off, d := range Suffixes(domain) {
		if off == 0 {
			continue // the name itself is no subdomain of a wildcard
		}
		if p, ok := c.wildcard[d]; ok {
			return p, true
		}
	}
	return nil, false
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
