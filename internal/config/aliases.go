package config

import (
	"fmt"
	"maps"
	"slices"
	"strings"

	"mailautoconf/internal/address"
)

// aliases validates and normalises a provider's domain aliases.
//
// An alias domain is another name for one of the provider's own domains:
// mail to alice@alias lands in alice@canonical's mailbox. Autodiscover
// answers such addresses with a redirect to the canonical address (Outlook
// then asks again and configures the canonical account), and the other
// protocols serve the provider's settings for them.
//
// Both sides are normalised like every other domain (lower case, A-labels).
// The target must be a plain domain of the provider, not a wildcard and not
// another alias: a redirect chain would make Outlook ask several times, and
// a wildcard names no single mailbox domain to redirect to.
func (v *validator) aliases(path string, p *Provider) {
	if len(p.Aliases) == 0 {
		return
	}
	own := make(map[string]bool, len(p.Domains))
	for _, d := range p.Domains {
		own[d] = true
	}
	norm := make(map[string]string, len(p.Aliases))
	from := make(map[string]string, len(p.Aliases)) // normalised alias -> key as written
	// Sorted, so that errors come out in a stable order.
	for _, key := range slices.Sorted(maps.Keys(p.Aliases)) {
		target := p.Aliases[key]
		kp := path + ".aliases." + key
		if strings.HasPrefix(key, "*.") {
			v.errorf(kp, "an alias must be a single domain, not a wildcard")
			continue
		}
		alias, err := address.ParseDomain(key)
		if err != nil {
			v.errorf(kp, "%q is not a domain name", key)
			continue
		}
		if len(alias) > MaxServedDomain {
			v.errorf(kp, "%s is longer than %d characters: its service names would exceed DNS's 253", alias, MaxServedDomain)
			continue
		}
		canon, err := address.ParseDomain(strings.TrimPrefix(target, "*."))
		if err != nil || strings.HasPrefix(target, "*.") {
			v.errorf(kp, "%q is not a domain name of this provider", target)
			continue
		}
		switch {
		case own[alias]:
			v.errorf(kp, "%s is one of the provider's own domains and cannot also be an alias", alias)
			continue
		case !own[canon]:
			v.errorf(kp, "%s is not one of the provider's domains (%s)", canon, strings.Join(p.Domains, ", "))
			continue
		}
		if prev, dup := from[alias]; dup {
			v.errorf(kp, "alias %s is already listed as %q", alias, prev)
			continue
		}
		from[alias] = key
		norm[alias] = canon
	}
	p.Aliases = norm
}

// aliasOwners checks the aliases of all providers against the served
// domains: an alias is a served domain too, so it may be neither a domain
// of another provider nor an alias of one. owner maps every plain domain to
// the path of its first mention, as built by config.
func (v *validator) aliasOwners(c *Config, owner map[string]string) {
	seen := map[string]string{} // alias -> path of its first mention
	for i := range c.Providers {
		p := &c.Providers[i]
		for _, alias := range slices.Sorted(maps.Keys(p.Aliases)) {
			ap := fmt.Sprintf("providers[%d].aliases.%s", i, alias)
			if prev, dup := owner[alias]; dup {
				v.errorf(ap, "alias %s is already served by %s (line %d)", alias, prev, v.line(prev))
				continue
			}
			if prev, dup := seen[alias]; dup {
				v.errorf(ap, "alias %s is already an alias in %s (line %d)", alias, prev, v.line(prev))
				continue
			}
			seen[alias] = ap
		}
	}
}
