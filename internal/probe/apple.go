package probe

import (
	"bytes"
	"context"
	"crypto/x509"
	"fmt"
	"net/url"
	"strconv"
	"strings"

	"github.com/smallstep/pkcs7"
	"howett.net/plist"
)

// appleContentType makes Safari hand a download to the profile installer.
const appleContentType = "application/x-apple-aspen-config"

type appleResult struct {
	checks []*Check
	view   View
	dav    DAVView
}

// profileURLs are where the profile is fetched: Options.ProfileURL, or the
// autoconfig host over https and then http. dav=1 asks this service for the
// profile with calendars and contacts (the mail payload is the same), so
// that its CalDAV and CardDAV payloads are compared with the other
// sources; other servers ignore the parameter.
func (p *prober) profileURLs() []string {
	q := "emailaddress=" + url.QueryEscape(p.addr.String()) + "&dav=1"
	if u := p.opts.ProfileURL; u != "" {
		sep := "?"
		if strings.Contains(u, "?") {
			sep = "&"
		}
		return []string{u + sep + q}
	}
	base := "://autoconfig." + p.addr.Domain + "/mobileconfig?" + q
	return []string{"https" + base, "http" + base}
}

func (p *prober) apple(ctx context.Context) appleResult {
	res := appleResult{view: View{Client: AppleMail}}
	for _, u := range p.profileURLs() {
		c := p.fetch(ctx, fetchReq{client: AppleMail, method: "GET", url: u, follow: true})
		res.checks = append(res.checks, c)
		if c.Status != StatusOK {
			continue
		}
		p.checkContentType(AppleMail, c, appleContentType)
		prof, err := p.parseProfile(c.Body)
		if err != nil {
			c.Status, c.Detail = StatusError, err.Error()
			p.add(SevWarning, CodeMalformed, AppleMail, "%s: %v", u, err)
			continue
		}
		c.Detail += "; " + prof.signature
		if strings.HasPrefix(u, "http:") {
			p.add(SevWarning, CodeHTTPOnly, AppleMail, "the profile is only served over plain HTTP (%s): anyone on the path can change it", u)
		}
		res.view.Source = u
		res.dav = prof.dav
		if prof.incoming != nil {
			res.view.Incoming = prof.incoming
			res.view.Offered = append(res.view.Offered, *prof.incoming)
		}
		if prof.outgoing != nil {
			res.view.Outgoing = prof.outgoing
			res.view.Offered = append(res.view.Offered, *prof.outgoing)
		}
		break
	}
	return res
}

// profile is what Apple Mail takes from a configuration profile.
type profile struct {
	incoming, outgoing *Endpoint
	signature          string
	// dav is where the CalDAV and CardDAV payloads point.
	dav DAVView
}

// mailPayload holds the keys of com.apple.mail.managed that decide where
// Mail connects.
type mailPayload struct {
	PayloadType                  string `plist:"PayloadType"`
	EmailAccountType             string `plist:"EmailAccountType"`
	IncomingMailServerHostName   string `plist:"IncomingMailServerHostName"`
	IncomingMailServerPortNumber int    `plist:"IncomingMailServerPortNumber"`
	IncomingMailServerUseSSL     bool   `plist:"IncomingMailServerUseSSL"`
	IncomingMailServerUsername   string `plist:"IncomingMailServerUsername"`
	OutgoingMailServerHostName   string `plist:"OutgoingMailServerHostName"`
	OutgoingMailServerPortNumber int    `plist:"OutgoingMailServerPortNumber"`
	OutgoingMailServerUseSSL     bool   `plist:"OutgoingMailServerUseSSL"`
	OutgoingMailServerUsername   string `plist:"OutgoingMailServerUsername"`
	// com.apple.caldav.account and com.apple.carddav.account.
	CalDAVHostName      string `plist:"CalDAVHostName"`
	CalDAVPort          int    `plist:"CalDAVPort"`
	CalDAVPrincipalURL  string `plist:"CalDAVPrincipalURL"`
	CalDAVUseSSL        *bool  `plist:"CalDAVUseSSL"`
	CardDAVHostName     string `plist:"CardDAVHostName"`
	CardDAVPort         int    `plist:"CardDAVPort"`
	CardDAVPrincipalURL string `plist:"CardDAVPrincipalURL"`
	CardDAVUseSSL       *bool  `plist:"CardDAVUseSSL"`
}

// parseProfile reads a profile, unwrapping and checking a CMS signature.
func (p *prober) parseProfile(body []byte) (*profile, error) {
	out := &profile{signature: "unsigned"}
	trimmed := bytes.TrimLeft(body, " \t\r\n\ufeff")
	if !bytes.HasPrefix(trimmed, []byte("<")) && !bytes.HasPrefix(trimmed, []byte("bplist")) {
		p7, err := pkcs7.Parse(body)
		if err != nil {
			return nil, fmt.Errorf("neither a property list nor a CMS-signed profile: %w", err)
		}
		if err := p7.Verify(); err != nil {
			return nil, fmt.Errorf("the CMS signature does not match the content: %w", err)
		}
		roots := p.opts.RootCAs
		if roots == nil {
			if roots, err = x509.SystemCertPool(); err != nil {
				roots = x509.NewCertPool()
			}
		}
		signer := "unknown signer"
		if c := p7.GetOnlySigner(); c != nil {
			signer = c.Subject.String()
		}
		if err := p7.VerifyWithChain(roots); err != nil {
			// The device installs it, but shows "Not Verified".
			out.signature = "signed by " + signer + ", chain not trusted: " + err.Error()
			p.add(SevWarning, CodeCertificate, AppleMail, "the profile's signer (%s) does not chain to a trusted root: devices show it as Not Verified", signer)
		} else {
			out.signature = "signed by " + signer + ", verified"
		}
		body = p7.Content
	}
	var top struct {
		PayloadType    string        `plist:"PayloadType"`
		PayloadContent []mailPayload `plist:"PayloadContent"`
	}
	if _, err := plist.Unmarshal(body, &top); err != nil {
		return nil, fmt.Errorf("not a property list of the expected shape: %w", err)
	}
	if top.PayloadType != "Configuration" {
		return nil, fmt.Errorf("PayloadType %q, want Configuration", top.PayloadType)
	}
	out.dav.Source = davSourceApple
	var mail *mailPayload
	for i, m := range top.PayloadContent {
		switch m.PayloadType {
		case "com.apple.caldav.account":
			out.dav.CalDAV = appleDAVURL(m.CalDAVHostName, m.CalDAVPort, m.CalDAVPrincipalURL, m.CalDAVUseSSL)
		case "com.apple.carddav.account":
			out.dav.CardDAV = appleDAVURL(m.CardDAVHostName, m.CardDAVPort, m.CardDAVPrincipalURL, m.CardDAVUseSSL)
		case "com.apple.mail.managed":
			if mail == nil {
				mail = &top.PayloadContent[i]
			}
		}
	}
	if m := mail; m != nil {
		proto := IMAP
		if m.EmailAccountType == "EmailTypePOP" {
			proto = POP3
		}
		if m.IncomingMailServerHostName != "" {
			out.incoming = appleEndpoint(proto, m.IncomingMailServerHostName, m.IncomingMailServerPortNumber, m.IncomingMailServerUseSSL, m.IncomingMailServerUsername)
		}
		if m.OutgoingMailServerHostName != "" {
			out.outgoing = appleEndpoint(SMTP, m.OutgoingMailServerHostName, m.OutgoingMailServerPortNumber, m.OutgoingMailServerUseSSL, m.OutgoingMailServerUsername)
		}
		return out, nil
	}
	return nil, fmt.Errorf("no com.apple.mail.managed payload")
}

// appleDAVURL is the URL a CalDAV or CardDAV payload makes the device use:
// the principal URL when it is absolute, else scheme, host and port from
// the payload's keys (UseSSL defaults to true) with the principal URL as
// the path.
func appleDAVURL(host string, port int, principal string, useSSL *bool) string {
	if host == "" {
		return ""
	}
	if strings.HasPrefix(principal, "https://") || strings.HasPrefix(principal, "http://") {
		return principal
	}
	scheme := "https"
	if useSSL != nil && !*useSSL {
		scheme = "http"
	}
	h := strings.ToLower(host)
	if port != 0 && !(scheme == "https" && port == 443) && !(scheme == "http" && port == 80) {
		h += ":" + strconv.Itoa(port)
	}
	if !strings.HasPrefix(principal, "/") {
		principal = "/" + principal
	}
	return scheme + "://" + h + principal
}

// appleEndpoint maps a payload's server keys. "UseSSL" means "use TLS":
// Mail speaks implicit TLS on the well-known implicit-TLS ports and
// STARTTLS on the others.
func appleEndpoint(proto, host string, port int, useSSL bool, user string) *Endpoint {
	e := &Endpoint{Protocol: proto, Host: strings.ToLower(host), Port: port, Username: user, Security: SecurityPlain}
	if useSSL {
		e.Security = SecurityStartTLS
		if port == 993 || port == 995 || port == 465 {
			e.Security = SecurityTLS
		}
	}
	if e.Port == 0 {
		e.Port = defaultPort(proto, e.Security)
	}
	return e
}
