package directory

import (
	"fmt"
	"net"
	"strings"
	"unicode/utf8"

	"mailautoconf/internal/address"
	"mailautoconf/internal/config"
)

// checkRow normalises a row with the functions that normalise the
// configuration file's domains and aliases (config.ParseServedDomain,
// config.ParseAlias), or says why it cannot be served. Whether an alias's
// target is a domain of the row's provider is decided where the rows meet
// the file's domains, in the catalog (settings.New).
func checkRow(r Row) (Row, error) {
	d := strings.TrimSpace(r.Domain)
	norm, err := config.ParseServedDomain(d)
	if err != nil {
		return r, err
	}
	out := Row{Domain: norm}
	if p := strings.ToLower(strings.TrimSuffix(strings.TrimSpace(r.Provider), ".")); p != "" {
		if !address.IsHostname(p) {
			return r, fmt.Errorf("%s: provider %q is not a provider id (a host name)", norm, r.Provider)
		}
		out.Provider = p
	}
	if t := strings.TrimSpace(r.AliasOf); t != "" {
		if strings.EqualFold(strings.TrimSuffix(t, "."), d) {
			return r, fmt.Errorf("%s is an alias of itself", norm)
		}
		// Any domain but the alias itself stands for "one of the
		// provider's": the catalog checks the real list.
		_, canon, err := config.ParseAlias(d, t, func(n string) bool { return n != norm })
		if err != nil {
			return r, fmt.Errorf("%s: %w", norm, err)
		}
		out.AliasOf = canon
	}
	return out, nil
}

// checkRows keeps the rows that can be served, each domain once, and
// returns the problems with the others.
func checkRows(rows []Row, extra func(Row) error) ([]Row, []string) {
	out := make([]Row, 0, len(rows))
	seen := make(map[string]struct{}, len(rows))
	var problems []string
	for _, r := range rows {
		n, err := checkRow(r)
		if err == nil && extra != nil {
			err = extra(n)
		}
		if err != nil {
			problems = append(problems, err.Error())
			continue
		}
		if _, dup := seen[n.Domain]; dup {
			problems = append(problems, fmt.Sprintf("%s is listed twice; the first row is served", n.Domain))
			continue
		}
		seen[n.Domain] = struct{}{}
		out = append(out, n)
	}
	// An alias must point at a plain domain: a chain would make
	// Autodiscover redirect more than once. Targets the configuration
	// file serves are checked where the two are joined.
	aliases := make(map[string]bool)
	for _, r := range out {
		if r.AliasOf != "" {
			aliases[r.Domain] = true
		}
	}
	if len(aliases) > 0 {
		kept := out[:0]
		for _, r := range out {
			if aliases[r.AliasOf] {
				problems = append(problems, fmt.Sprintf("%s: alias of %s, which is an alias itself", r.Domain, r.AliasOf))
				continue
			}
			kept = append(kept, r)
		}
		out = kept
	}
	return out, problems
}

// MaxLogin is the longest login name served; real ones are addresses or
// short user names.
const MaxLogin = 320

// checkMailbox checks what the source says about a mailbox like a value
// in the configuration file: a login name without control characters
// (it goes into XML, JSON and property lists) and host names or IP
// addresses for the servers.
func checkMailbox(mb Mailbox) (Mailbox, error) {
	mb.Login = strings.TrimSpace(mb.Login)
	switch {
	case mb.Login == "":
		return mb, fmt.Errorf("empty login name")
	case len(mb.Login) > MaxLogin:
		return mb, fmt.Errorf("login name longer than %d bytes", MaxLogin)
	case !utf8.ValidString(mb.Login):
		return mb, fmt.Errorf("login name is not UTF-8")
	}
	for _, r := range mb.Login {
		// The same characters the configuration refuses in text: no
		// client shows them sensibly, and the renderers reserve the
		// private-use ones for their own markers.
		if r < 0x20 || r == 0x7f || (r >= 0x80 && r < 0xa0) || (r >= 0xe000 && r <= 0xf8ff) || r == 0xfffd {
			return mb, fmt.Errorf("login name contains a control or private-use character")
		}
	}
	if strings.Contains(mb.Login, "%") {
		// A '%' could form a placeholder the renderers would expand.
		return mb, fmt.Errorf("login name contains '%%'")
	}
	for _, h := range []*string{&mb.Incoming, &mb.Outgoing} {
		*h = strings.ToLower(strings.TrimSuffix(strings.TrimSpace(*h), "."))
		if *h != "" && net.ParseIP(*h) == nil && !address.IsHostname(*h) {
			return mb, fmt.Errorf("server %q is not a host name or IP address", *h)
		}
	}
	return mb, nil
}
