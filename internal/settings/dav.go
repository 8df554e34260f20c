package settings

import (
	"mailautoconf/internal/config"
)

// Service is a provider's CalDAV, CardDAV or JMAP service as clients are
// told about it: the URL checked and split, the login name and the
// authentication methods with their defaults filled in.
type Service struct {
	// Kind is config.ServiceCalDAV, ServiceCardDAV or ServiceJMAP.
	Kind string
	// URL is the validated URL template (host, port, path, context path).
	URL config.ServiceURL
	// Username is the login-name template (%EMAILADDRESS% and friends):
	// the service's own, else the provider's, else the default.
	Username string
	// Authentication lists the HTTP methods in preference order
	// (config.AuthHTTPBasic, AuthHTTPDigest, AuthOAuth2); never empty.
	Authentication []string
}

// DAV holds a provider's services besides mail. It is embedded in
// Provider, so p.CalDAV, p.CardDAV and p.JMAP read as the provider's own.
// A nil field means the provider has no such service, and every renderer
// then writes exactly what it wrote before services existed.
type DAV struct {
	CalDAV, CardDAV, JMAP *Service
}

// Services returns the configured services in the order CalDAV, CardDAV,
// JMAP; kinds not configured are left out.
func (d DAV) Services() []*Service {
	var out []*Service
	for _, s := range []*Service{d.CalDAV, d.CardDAV, d.JMAP} {
		if s != nil {
			out = append(out, s)
		}
	}
	return out
}

// HasDAV reports whether the provider has any service besides mail.
func (d DAV) HasDAV() bool { return d.CalDAV != nil || d.CardDAV != nil || d.JMAP != nil }

// URLFor is the service's URL for the request's mailbox: the placeholders
// filled with the canonical address (the DAV server, like the mail
// servers, knows the mailbox, not the alias), each value percent-encoded
// (config.ServiceURL.Expand). Without an address, the URL is the template
// with its placeholders, for the client to fill.
func (s Settings) URLFor(svc *Service) string {
	a := s.Canonical()
	if a == nil {
		return svc.URL.Template
	}
	return svc.URL.Expand(a.Local, a.Domain)
}

// newDAV builds the services of a validated provider. A URL that does not
// parse cannot come from a validated configuration; such a service is left
// out rather than published half.
func newDAV(cp *config.Provider) DAV {
	one := func(kind string, cs *config.Service) *Service {
		if cs == nil {
			return nil
		}
		u, err := config.ParseServiceURL(cs.URL)
		if err != nil {
			return nil
		}
		return &Service{
			Kind:           kind,
			URL:            u,
			Username:       cs.LoginTemplate(cp),
			Authentication: cs.AuthMethods(),
		}
	}
	return DAV{
		CalDAV:  one(config.ServiceCalDAV, cp.CalDAV),
		CardDAV: one(config.ServiceCardDAV, cp.CardDAV),
		JMAP:    one(config.ServiceJMAP, cp.JMAP),
	}
}
