package config

import (
	"errors"
	"fmt"
	"strings"

	"mailautoconf/internal/address"
)

// What a provider's keys mean once the defaults apply. The configuration
// keeps what the file says; these functions say what it means, for the
// validator (which checks the meaning) and for the catalog
// (internal/settings), which builds the service's state from it. Neither
// writes the result back.

// NormalizeHost lower-cases a host name and removes surrounding blanks and
// a trailing dot.
func NormalizeHost(s string) string {
	return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), "."))
}

// NormalizedID is the provider's id as clients see it.
func (p *Provider) NormalizedID() string { return NormalizeHost(p.ID) }

// Names returns the display name (default: the id) and the short name
// (default: the display name).
func (p *Provider) Names() (display, short string) {
	display, short = p.DisplayName, p.ShortName
	if display == "" {
		display = p.NormalizedID()
	}
	if short == "" {
		short = display
	}
	return display, short
}

// LoginTemplate is the provider's login-name template, DefaultUsername when
// none is configured.
func (p *Provider) LoginTemplate() string {
	if p.Username == "" {
		return DefaultUsername
	}
	return p.Username
}

// AuthMethods are the provider's authentication methods,
// password-cleartext when none are configured.
func (p *Provider) AuthMethods() []string {
	if len(p.Authentication) == 0 {
		return []string{AuthCleartext}
	}
	return p.Authentication
}

// Publishes reports whether clients are told about a server (as returned
// by Server): servers with security plain only with publish_plain. This is
// the rule for every protocol; the catalog applies it once per load.
func (p *Provider) Publishes(s Server) bool {
	return s.Security != SecurityPlain || p.PublishPlain
}

// Server returns the i-th server with every default applied: type and
// security in lower case ("ssl" read as tls), the host normalised, the
// security taken from the port when only a port is given, the port from
// type and security when none is given, and the provider's login name and
// authentication when the server has none of its own. An unknown type or
// security stays as written (lower-cased), for the validator to report.
func (p *Provider) Server(i int) Server {
	s := p.Servers[i]
	s.Type = strings.ToLower(s.Type)
	s.Host = NormalizeHost(s.Host)
	s.Security = strings.ToLower(s.Security)
	switch s.Security {
	case "":
		// A port given without security: the implicit-TLS ports say
		// TLS, anything else is taken for STARTTLS, never for plain.
		s.Security = SecurityTLS
		if s.Port != 0 && s.Port != 993 && s.Port != 995 && s.Port != 465 {
			s.Security = SecurityStartTLS
		}
	case "ssl":
		s.Security = SecurityTLS
	}
	if s.Port == 0 {
		s.Port = DefaultPort(s.Type, s.Security)
	}
	if s.Username == "" {
		s.Username = p.LoginTemplate()
	}
	if len(s.Authentication) == 0 {
		s.Authentication = append(StringList(nil), p.AuthMethods()...)
	}
	return s
}

// ParseServedDomain normalises an entry of a provider's domains: an exact
// domain or "*.parent" (every name below parent), lower case, in A-labels.
// Domains from other sources (a database, a directory) go through the same
// function, so they are held to the same rules.
func ParseServedDomain(raw string) (string, error) {
	wild := strings.HasPrefix(raw, "*.")
	norm, err := address.ParseDomain(strings.TrimPrefix(raw, "*."))
	if err != nil {
		return "", fmt.Errorf("%q is not a domain name", raw)
	}
	if len(norm) > MaxServedDomain {
		return "", fmt.Errorf("%s is longer than %d characters: its service names (_autodiscover._tcp.%s) would exceed DNS's 253", norm, MaxServedDomain, norm)
	}
	if wild {
		norm = "*." + norm
	}
	return norm, nil
}

// ParseAlias normalises an alias domain and the provider domain it stands
// for. isOwn reports whether a normalised domain is one of the provider's
// domains (wildcards included, as "*.parent").
//
// An alias domain is another name for one of the provider's own domains:
// mail to alice@alias lands in alice@canonical's mailbox. Autodiscover
// answers such addresses with a redirect to the canonical address (Outlook
// then asks again and configures the canonical account), and the other
// protocols serve the provider's settings for them. The target must be a
// plain domain of the provider, not a wildcard and not another alias: a
// redirect chain would make Outlook ask several times, and a wildcard names
// no single mailbox domain to redirect to.
func ParseAlias(alias, target string, isOwn func(string) bool) (string, string, error) {
	if strings.HasPrefix(alias, "*.") {
		return "", "", errors.New("an alias must be a single domain, not a wildcard")
	}
	a, err := address.ParseDomain(alias)
	if err != nil {
		return "", "", fmt.Errorf("%q is not a domain name", alias)
	}
	if len(a) > MaxServedDomain {
		return "", "", fmt.Errorf("%s is longer than %d characters: its service names would exceed DNS's 253", a, MaxServedDomain)
	}
	canon, err := address.ParseDomain(strings.TrimPrefix(target, "*."))
	if err != nil || strings.HasPrefix(target, "*.") {
		return "", "", fmt.Errorf("%q is not a domain name of this provider", target)
	}
	switch {
	case isOwn(a):
		return "", "", fmt.Errorf("%s is one of the provider's own domains and cannot also be an alias", a)
	case !isOwn(canon):
		return "", "", errNotOwn{canon}
	}
	return a, canon, nil
}

// errNotOwn is ParseAlias's error for a target that is not one of the
// provider's domains; the validator adds the list of domains.
type errNotOwn struct{ domain string }

func (e errNotOwn) Error() string { return e.domain + " is not one of the provider's domains" }
