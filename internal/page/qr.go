package page

import (
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"
	qrcode "github.com/skip2/go-qrcode"

	"mailautoconf/internal/address"
	"mailautoconf/internal/settings"
	"mailautoconf/internal/web"
)

// QRSize is the width and height of the QR code PNG in pixels: large
// enough for a phone camera to read it off a screen from arm's length.
const QRSize = 320

// qrHostPrefixes are the names of a served domain that point at this
// service by definition: README tells hosters to create them. The domain
// itself and "mail." or "www." often point elsewhere (the web site, the
// mail server).
var qrHostPrefixes = []string{"autoconfig.", "autodiscover."}

// publicURL returns the absolute URL of path?rawQuery on this service for
// an address at domain (a served domain, as parsed: lower case, A-labels),
// for a phone that scans the QR code: it must reach this service, under a
// name its certificate covers.
//
// Nothing of the request goes into it unchecked: a QR code is a link that
// people follow without reading it. The Host header's name is used only
// when it is autoconfig. or autodiscover. under a served domain (as parsed:
// lower case, A-labels), or the IP address the client connected to; any
// other name, ours or not, gives autoconfig.<domain>, the name every
// served domain points at the service. The Host header's port is used only
// when it is the port of the listener the request came in on, or, behind
// a trusted proxy (whose public port is not the listener's), any port
// number. Without a port in the Host header the client reached a default
// port, and there is none; an invalid one ("x!$", "99999", another port),
// or no Host header at all, gives the listener's port (none when it is
// the scheme's default, or behind a proxy).
//
// The scheme is https for a TLS connection, or when a trusted proxy says
// so in X-Forwarded-Proto. The server's proxy middleware removes the
// X-Forwarded-* headers of every peer that is not a trusted proxy, and has
// already put a trusted proxy's X-Forwarded-Host into r.Host, so what is
// left of them here can be believed.
func publicURL(r *http.Request, cat *settings.Catalog, domain, path, rawQuery string) string {
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if p := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")[0])); p == "https" {
		scheme = p
	}
	// Only a trusted proxy's request still carries these headers.
	proxied := r.Header.Get("X-Forwarded-For") != "" || r.Header.Get("X-Forwarded-Host") != "" || r.Header.Get("X-Forwarded-Proto") != ""
	local, _ := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	var localIP netip.Addr
	localPort := ""
	if ap, err := netip.ParseAddrPort(addrString(local)); err == nil {
		localIP, localPort = ap.Addr().Unmap(), strconv.Itoa(int(ap.Port()))
	}

	hostName, hostPort, err := net.SplitHostPort(r.Host)
	hasPort := err == nil
	if !hasPort {
		hostName = r.Host
	}
	host := ""
	if ip, err := netip.ParseAddr(trimBrackets(hostName)); err == nil {
		if localIP.IsValid() && ip.Unmap() == localIP {
			host = localIP.String()
		}
	} else if d, err := address.ParseDomain(hostName); err == nil {
		for _, pre := range qrHostPrefixes {
			if rest, ok := strings.CutPrefix(d, pre); ok && rest != "" {
				if _, served := cat.Lookup(rest); served {
					host = d
				}
			}
		}
	}
	if host == "" {
		host = "autoconfig." + domain
	}

	port := ""
	hostPort, portOK := canonicalPort(hostPort)
	switch {
	case hasPort && portOK && (proxied || hostPort == localPort):
		port = hostPort
	case r.Host != "" && !hasPort:
		// The client reached a default port (maybe mapped to ours).
	case !proxied:
		port = localPort
	}
	if port == defaultPort[scheme] {
		port = ""
	}
	if port != "" {
		host = net.JoinHostPort(host, port)
	} else if strings.Contains(host, ":") {
		host = "[" + host + "]"
	}
	u := url.URL{Scheme: scheme, Host: host, Path: path, RawQuery: rawQuery}
	return u.String()
}

var defaultPort = map[string]string{"http": "80", "https": "443"}

// canonicalPort returns p as a URL carries a port, when it is one: decimal
// digits only (no sign, no space), 1 to 65535, without leading zeros.
func canonicalPort(p string) (string, bool) {
	if p == "" || len(p) > 5 || strings.Trim(p, "0123456789") != "" {
		return "", false
	}
	n, err := strconv.Atoi(p)
	if err != nil || n < 1 || n > 65535 {
		return "", false
	}
	return strconv.Itoa(n), true
}

func addrString(a net.Addr) string {
	if a == nil {
		return ""
	}
	return a.String()
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}

// QRCacheSize bounds the number of QR codes kept per configuration (about
// 1 KiB each). Drawing one costs about 4 ms, a thousand times an ordinary
// answer, and a person tends to load the page, and so the code, more than
// once.
const QRCacheSize = 1024

// qrCode returns the QR code PNG holding target: from the cache when it was
// drawn before, otherwise drawn anew once the client's budget for
// expensive answers allows it (ok false: a 429 was answered, err is its
// write error).
func (r *Renderer) qrCode(c echo.Context, target string) (png []byte, ok bool, err error) {
	if png, ok := r.qr.Get(target); ok {
		return png, true, nil
	}
	if ok, err := web.Spend(c); !ok {
		return nil, false, err
	}
	png, err = qrcode.Encode(target, qrcode.Medium, QRSize)
	if err != nil {
		return nil, false, fmt.Errorf("encoding QR code: %w", err)
	}
	r.qr.Add(target, png)
	return png, true, nil
}

// QRHandler serves GET /settings/qr.png?emailaddress=…[&dav=1]: a QR code
// holding the absolute URL of the address's Apple profile. The iPhone and iPad
// camera app offers to open such a code in Safari, the only browser that
// hands a profile to the installer.
//
// Only addresses of served domains get a code, so the endpoint cannot be
// used to make QR codes of arbitrary text.
func QRHandler(current func() (*settings.Catalog, *Renderer)) echo.HandlerFunc {
	return func(c echo.Context) error {
		cat, r := current()
		req := c.Request()
		s, err := web.ResolveAddress(c, cat)
		if err != nil {
			return web.Error(c, err)
		}
		q := url.Values{"emailaddress": {s.Address.String()}}
		// The profile with calendars and contacts, when the page's
		// choice asks for it and the provider has them (dav.go).
		if v, _ := web.Query(req, "dav"); v == "1" && profileChoice(s.Provider) {
			q.Set("dav", "1")
		}
		target := publicURL(req, cat, s.Address.Domain, ProfilePath, q.Encode())
		png, ok, err := r.qrCode(c, target)
		if !ok {
			return err
		}
		h := c.Response().Header()
		h.Set("Cache-Control", "private, no-store")
		h.Set("X-Content-Type-Options", "nosniff")
		return web.Blob(c, http.StatusOK, "image/png", png)
	}
}
