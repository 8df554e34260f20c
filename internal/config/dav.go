package config

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"mailautoconf/internal/address"
)

// Service is a provider's service besides mail that clients reach over
// HTTPS: a CalDAV server (calendars), a CardDAV server (contacts) or a JMAP
// session resource. Each is optional; a provider without them is served
// exactly as before.
//
//	caldav:
//	  url: https://dav.example.com/calendars/%EMAILADDRESS%/
//	  username: "%EMAILADDRESS%"              # default: the provider's
//	  authentication: [http-basic]            # default; also http-digest, OAuth2
type Service struct {
	// URL is an https URL. It may hold the address placeholders
	// (%EMAILADDRESS%, %EMAILLOCALPART% in the path, %EMAILDOMAIN% in the
	// path or the host name); see ParseServiceURL.
	URL string `yaml:"url"`
	// Username is the login-name template; the provider's when empty.
	Username string `yaml:"username"`
	// Authentication lists the HTTP authentication methods in preference
	// order: http-basic, http-digest, OAuth2 (the provider's oauth2
	// section). Default: http-basic.
	Authentication StringList `yaml:"authentication"`
}

// Service kinds, as the configuration names them.
const (
	ServiceCalDAV  = "caldav"
	ServiceCardDAV = "carddav"
	ServiceJMAP    = "jmap"
)

// HTTP authentication methods of a Service, with the names of the autoconfig
// format (draft-ietf-mailmaint-autoconfig, "URL-based protocols") and the
// deployed addressBook/calendar elements. OAuth2 is AuthOAuth2.
const (
	AuthHTTPBasic  = "http-basic"
	AuthHTTPDigest = "http-digest"
)

var validServiceAuth = map[string]bool{AuthHTTPBasic: true, AuthHTTPDigest: true, AuthOAuth2: true}

// Services returns the provider's configured services by kind, in the order
// CalDAV, CardDAV, JMAP; kinds not configured are left out.
func (p *Provider) Services() []NamedService {
	var out []NamedService
	for _, s := range []NamedService{{ServiceCalDAV, p.CalDAV}, {ServiceCardDAV, p.CardDAV}, {ServiceJMAP, p.JMAP}} {
		if s.Service != nil {
			out = append(out, s)
		}
	}
	return out
}

// NamedService is a Service with its kind (ServiceCalDAV, …).
type NamedService struct {
	Kind string
	*Service
}

// LoginTemplate is the service's login-name template: its own, else the
// provider's, else DefaultUsername.
func (s *Service) LoginTemplate(p *Provider) string {
	switch {
	case s.Username != "":
		return s.Username
	case p.Username != "":
		return p.Username
	}
	return DefaultUsername
}

// AuthMethods are the service's authentication methods, http-basic when
// none are configured: every CalDAV and CardDAV server and client knows it.
func (s *Service) AuthMethods() []string {
	if len(s.Authentication) == 0 {
		return []string{AuthHTTPBasic}
	}
	return s.Authentication
}

// ServiceURL is a validated service URL template.
type ServiceURL struct {
	// Template is the URL as configured, scheme and host in lower case.
	Template string
	// Host is the host name (or IP address) in lower case; it may hold
	// %EMAILDOMAIN%.
	Host string
	// Port is the explicit port, or 443.
	Port int
	// Path is the path template, at least "/".
	Path string
	// Context is the longest leading part of Path that holds no
	// placeholder and ends with "/" (RFC 6764 calls it the context path):
	// what is published where no address is known and one document must
	// do for every domain and mailbox (PACC, DNS TXT path=). Equal to Path
	// when Path holds no placeholder.
	Context string
}

// PerAddress reports whether the URL differs between mailboxes or domains.
func (u ServiceURL) PerAddress() bool { return hasPlaceholder(u.Template) }

// ContextURL is the URL with Context as its path: https://host[:port]/context.
// It is empty when the host name holds a placeholder.
func (u ServiceURL) ContextURL() string {
	if hasPlaceholder(u.Host) {
		return ""
	}
	return "https://" + u.authority() + u.Context
}

func (u ServiceURL) authority() string {
	h := u.Host
	if strings.Contains(h, ":") { // IPv6 literal
		h = "[" + h + "]"
	}
	if u.Port != 443 {
		return h + ":" + strconv.Itoa(u.Port)
	}
	return h
}

// Expand fills the placeholders for one mailbox: local part and domain
// (an A-label domain). Values in the path are percent-encoded as one path
// segment each (RFC 3986 section 3.3), so that an address holding "/", "?",
// "#" or "%" - all allowed in a local part - cannot change the URL's
// structure; the domain in the host name is already a valid host name.
func (u ServiceURL) Expand(local, domain string) string {
	if !hasPlaceholder(u.Template) {
		return u.Template
	}
	addr := local + "@" + domain
	host := strings.ReplaceAll(u.authority(), PlaceholderDomainName, domain)
	path := strings.NewReplacer(
		PlaceholderAddressName, url.PathEscape(addr),
		PlaceholderLocalName, url.PathEscape(local),
		PlaceholderDomainName, url.PathEscape(domain),
	).Replace(u.Path)
	return "https://" + host + path
}

// The placeholders a service URL may hold. The same names as in login-name
// templates; spelled out here because config cannot import the renderers.
const (
	PlaceholderAddressName = "%EMAILADDRESS%"
	PlaceholderLocalName   = "%EMAILLOCALPART%"
	PlaceholderDomainName  = "%EMAILDOMAIN%"
)

func hasPlaceholder(s string) bool {
	for _, p := range placeholders {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// ParseServiceURL checks a configured service URL and splits it. The rules:
// https only (the login travels in every request), a host name or IP
// address (%EMAILDOMAIN% allowed in a host name, the other placeholders
// not: they are not host names), no user information, no query and no
// fragment (clients take the URL as a collection or session path), only the
// known placeholders, and every other "%" a valid percent-encoding.
func ParseServiceURL(raw string) (ServiceURL, error) {
	raw = strings.TrimSpace(raw)
	if raw == "" {
		return ServiceURL{}, errors.New("required (an https URL)")
	}
	scheme, rest, ok := strings.Cut(raw, "://")
	if !ok || !strings.EqualFold(scheme, "https") {
		return ServiceURL{}, fmt.Errorf("%q is not an https URL", raw)
	}
	authority, path := rest, "/"
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		authority, path = rest[:i], rest[i:]
	}
	if strings.HasPrefix(path, "?") || strings.HasPrefix(path, "#") {
		path = "/" + path
	}
	if strings.Contains(authority, "@") {
		return ServiceURL{}, fmt.Errorf("%q has user information; give the login name as username", raw)
	}
	for _, p := range []string{PlaceholderAddressName, PlaceholderLocalName} {
		if strings.Contains(authority, p) {
			return ServiceURL{}, fmt.Errorf("%q: %s cannot be part of a host name; only %s can", raw, p, PlaceholderDomainName)
		}
	}
	u := ServiceURL{Port: 443}
	host := authority
	if h, port, err := net.SplitHostPort(authority); err == nil {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return ServiceURL{}, fmt.Errorf("%q: %q is not a port", raw, port)
		}
		host, u.Port = h, n
	} else if strings.HasPrefix(authority, "[") && strings.HasSuffix(authority, "]") {
		host = authority[1 : len(authority)-1]
	}
	// Lower-case the host name around the placeholder, which is spelled
	// in capitals.
	parts := strings.Split(strings.TrimSuffix(host, "."), PlaceholderDomainName)
	for i := range parts {
		parts[i] = strings.ToLower(parts[i])
	}
	host = strings.Join(parts, PlaceholderDomainName)
	sample := strings.ReplaceAll(host, PlaceholderDomainName, "example.org")
	if host == "" || (net.ParseIP(sample) == nil && !address.IsHostname(sample)) || (net.ParseIP(sample) != nil && host != sample) {
		return ServiceURL{}, fmt.Errorf("%q: %q is not a host name or IP address", raw, host)
	}
	if strings.ContainsAny(path, "?#") {
		return ServiceURL{}, fmt.Errorf("%q has a query or fragment; give the collection or session path only", raw)
	}
	// Every % outside a placeholder must start a percent-encoding, and the
	// path must be one url.Parse accepts once placeholders are filled in.
	rem := path
	for _, p := range placeholders {
		rem = strings.ReplaceAll(rem, p, "x")
	}
	parsed, err := url.Parse("https://example.org" + rem)
	if err != nil || parsed.Path == "" {
		return ServiceURL{}, fmt.Errorf("%q: the path is not valid (an unknown placeholder, or %% not followed by two hex digits?); placeholders: %s", raw, strings.Join(placeholders, ", "))
	}
	for _, r := range rem {
		if r <= ' ' || r >= 0x7f {
			return ServiceURL{}, fmt.Errorf("%q: the path holds white space, a control or a non-ASCII character; percent-encode it", raw)
		}
	}
	u.Host, u.Path = host, path
	u.Context = path
	if i := firstPlaceholder(path); i >= 0 {
		u.Context = path[:strings.LastIndexByte(path[:i], '/')+1]
	}
	u.Template = "https://" + u.authority() + path
	return u, nil
}

// firstPlaceholder is the index of the first placeholder in s, or -1.
func firstPlaceholder(s string) int {
	first := -1
	for _, p := range placeholders {
		if i := strings.Index(s, p); i >= 0 && (first < 0 || i < first) {
			first = i
		}
	}
	return first
}

// services checks the provider's caldav, carddav and jmap sections.
func (v *validator) services(path string, p *Provider) {
	for _, s := range p.Services() {
		sp := path + "." + s.Kind
		if _, err := ParseServiceURL(s.URL); err != nil {
			v.errorf(sp+".url", "%v", err)
		}
		if s.Username != "" {
			v.username(sp+".username", s.Username)
		}
		if s.Authentication != nil && len(s.Authentication) == 0 {
			v.errorf(sp+".authentication", "at least one method is required")
		}
		for _, a := range s.Authentication {
			switch {
			case !validServiceAuth[a]:
				v.errorf(sp+".authentication", "%q is not one of http-basic, http-digest, OAuth2", a)
			case a == AuthOAuth2 && p.OAuth2 == nil:
				v.errorf(sp+".authentication", "OAuth2 needs the provider's oauth2 section")
			}
		}
	}
}
