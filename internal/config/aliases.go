package config

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
)

// aliases checks a provider's domain aliases (see ParseAlias) against its
// normalised domains and returns them normalised: alias -> target.
func (v *validator) aliases(path string, p *Provider, domains []string) map[string]string {
	if len(p.Aliases) == 0 {
		return nil
	}
	own := make(map[string]bool, len(domains))
	var listed []string
	for _, d := range domains {
		if d != "" {
			own[d] = true
			listed = append(listed, d)
		}
	}
	isOwn := func(d string) bool { return own[d] }
	norm := make(map[string]string, len(p.Aliases))
	from := make(map[string]string, len(p.Aliases)) // normalised alias -> key as written
	// Sorted, so that errors come out in a stable order.
	for _, key := range slices.Sorted(maps.Keys(p.Aliases)) {
		kp := path + ".aliases." + key
		alias, canon, err := ParseAlias(key, p.Aliases[key], isOwn)
		var notOwn errNotOwn
		switch {
		case errors.As(err, &notOwn):
			v.errorf(kp, "%v (%s)", err, strings.Join(listed, ", "))
			continue
		case err != nil:
			v.errorf(kp, "%v", err)
			continue
		}
		if prev, dup := from[alias]; dup {
			v.errorf(kp, "alias %s is already listed as %q", alias, prev)
			continue
		}
		from[alias] = key
		norm[alias] = canon
	}
	return norm
}

// aliasOwners checks the aliases of all providers (normalised, by provider
// index) against the served domains: an alias is a served domain too, so it
// may be neither a domain of another provider nor an alias of one. owner
// maps every plain domain to the path of its first mention, as built by
// config.
func (v *validator) aliasOwners(aliases []map[string]string, owner map[string]string) {
	seen := map[string]string{} // alias -> path of its first mention
	for i, as := range aliases {
		for _, alias := range slices.Sorted(maps.Keys(as)) {
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
