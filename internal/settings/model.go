package settings

import (
	"cmp"
	"slices"

	"mailautoconf/internal/config"
)

// Server is one mail server as clients are told about it: every default of
// the configuration filled in (port, security, login name, authentication),
// and only published servers ever become one.
type Server struct {
	Type     string // config.TypeIMAP, TypePOP3 or TypeSMTP
	Host     string // host name or IP address, lower case
	Port     int
	Security string // config.SecurityTLS, SecurityStartTLS or SecurityPlain
	// Authentication lists the methods in preference order, with
	// Thunderbird's names (config.Auth*).
	Authentication []string
	// Username is the login-name template (%EMAILADDRESS% and friends).
	Username string
	// Weight is the SRV weight; 0 when none is configured.
	Weight int
}

// Encrypted reports whether the connection is encrypted at all, with
// implicit TLS or with STARTTLS: the "SSL" switch of clients that know no
// finer distinction (Autodiscover's SSL element, Apple's …UseSSL).
func (s Server) Encrypted() bool { return s.Security != config.SecurityPlain }

// Incoming reports whether the server is an incoming (IMAP or POP3) one.
func (s Server) Incoming() bool { return s.Type != config.TypeSMTP }

// Provider is a provider as every protocol renders it: names, URLs, the
// domains it serves and the servers clients are told about. It is built
// once per load from the validated configuration (and the domains of other
// sources) and only read afterwards.
type Provider struct {
	// Index is the provider's position in the catalog; renderers keep
	// their per-provider output in slices indexed by it.
	Index int
	// ID is the provider's host name, lower case (Thunderbird for
	// Android rejects anything else as emailProvider id).
	ID          string
	DisplayName string // never empty: defaults to ID
	ShortName   string // never empty: defaults to DisplayName
	// Documentation, LogoURL and ActiveSyncURL are absolute URLs, or
	// empty when not configured.
	Documentation string
	LogoURL       string
	ActiveSyncURL string
	// OAuth2 is the provider's oauth2 section (nil when it has none),
	// whether or not a server offers OAuth2 as its authentication.
	OAuth2 *config.OAuth2
	// Domains are the served domains, normalised (lower case, A-labels;
	// "*.parent" for a wildcard): the configured ones in configured
	// order, then those of other sources.
	Domains []string
	// Aliases maps each alias domain to the provider domain it stands
	// for.
	Aliases map[string]string
	// AutodiscoverTarget is the one host the _autodiscover._tcp records
	// of all the provider's domains name (dns.autodiscover_target, or the
	// provider's own); empty for autodiscover.<domain> of each domain.
	AutodiscoverTarget string
	// DAV holds the CalDAV, CardDAV and JMAP services (see dav.go).
	DAV

	// Servers are the servers clients are told about, in configured
	// order, which is the order of preference the operator states: the
	// publish_plain rule is applied here and nowhere else. autoconfig,
	// Autodiscover and the settings page list them in this order.
	Servers []Server
	// incoming and outgoing are Servers split by direction.
	incoming, outgoing []Server
	// preferred holds, per server type, the published servers in the
	// order a client that takes one server should try them.
	preferred map[string][]Server

	// Variant is nil for the providers of the catalog, and set on a
	// provider built for one mailbox (Catalog.WithMailbox), which has the
	// Index of the provider it was built from. Renderers render such a
	// provider on its own and keep the result in Variant.Memo.
	Variant *Variant
}

// AutodiscoverHost is the host Outlook reaches Autodiscover on for a
// domain of the provider: the AutodiscoverTarget, else
// autodiscover.<domain>. The _autodiscover._tcp record and the v2 JSON
// answer name it.
func (p *Provider) AutodiscoverHost(domain string) string {
	if p.AutodiscoverTarget != "" {
		return p.AutodiscoverTarget
	}
	return "autodiscover." + domain
}

// Incoming returns the published IMAP and POP3 servers in configured order.
func (p *Provider) Incoming() []Server { return p.incoming }

// Outgoing returns the published SMTP servers in configured order.
func (p *Provider) Outgoing() []Server { return p.outgoing }

// Preferred returns the published servers of one type (config.TypeIMAP,
// TypePOP3, TypeSMTP) from the most to the least preferred: implicit TLS,
// then STARTTLS, then plain (RFC 8314 section 5.1), the configured order
// among servers of equal security. A client that takes a single server
// (an Apple profile) takes the first; DNS SRV priorities follow this order.
func (p *Provider) Preferred(typ string) []Server { return p.preferred[typ] }

// securityRank orders the security modes from the most preferred.
var securityRank = map[string]int{config.SecurityTLS: 0, config.SecurityStartTLS: 1, config.SecurityPlain: 2}

// setServers sets the published servers and derives the per-direction and
// per-type lists from them.
func (p *Provider) setServers(published []Server) {
	p.Servers = published
	p.incoming, p.outgoing = nil, nil
	p.preferred = make(map[string][]Server, 3)
	for _, s := range published {
		if s.Incoming() {
			p.incoming = append(p.incoming, s)
		} else {
			p.outgoing = append(p.outgoing, s)
		}
		p.preferred[s.Type] = append(p.preferred[s.Type], s)
	}
	for _, list := range p.preferred {
		// Stable: the configured order breaks ties.
		slices.SortStableFunc(list, func(a, b Server) int {
			return cmp.Compare(securityRank[a.Security], securityRank[b.Security])
		})
	}
}

// newProvider builds the model of a validated provider: defaults filled
// in, unpublished servers left out. Domains are added by the catalog.
func newProvider(index int, cp *config.Provider) *Provider {
	p := &Provider{
		Index:         index,
		ID:            cp.NormalizedID(),
		Documentation: cp.Documentation,
		LogoURL:       cp.LogoURL,
		ActiveSyncURL: cp.ActiveSyncURL,
		OAuth2:        cp.OAuth2,
		Aliases:       map[string]string{},
	}
	p.DisplayName, p.ShortName = cp.Names()
	p.DAV = newDAV(cp)
	var published []Server
	for i := range cp.Servers {
		s := cp.Server(i)
		if !cp.Publishes(s) {
			continue
		}
		published = append(published, Server{
			Type:           s.Type,
			Host:           s.Host,
			Port:           s.Port,
			Security:       s.Security,
			Authentication: s.Authentication,
			Username:       s.Username,
			Weight:         s.Weight,
		})
	}
	p.setServers(published)
	return p
}
