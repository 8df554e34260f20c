package page

import (
	"fmt"
	"net"
	"net/http"
	"net/url"
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

// publicURL returns the absolute URL of path?rawQuery on this service, as
// the client reached it: a phone that scans a QR code must reach the same
// service under the same name.
//
// Behind a TLS-terminating proxy the scheme comes from X-Forwarded-Proto.
// The server's proxy middleware removes that header from every peer that
// is not a configured trusted proxy and has already put a trusted proxy's
// X-Forwarded-Host into r.Host, so what is left here can be believed.
//
// The Host header must be a host name or an IP address (with an optional
// port), so that nothing but a plain URL ever goes into a QR code.
func publicURL(r *http.Request, path, rawQuery string) (string, error) {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil {
		host, port = r.Host, ""
	}
	ip := net.ParseIP(trimBrackets(host))
	if ip == nil && !address.IsHostname(host) {
		return "", fmt.Errorf("the Host header %q names no host", r.Host)
	}
	if ip != nil && ip.To4() == nil {
		host = "[" + trimBrackets(host) + "]"
	}
	if port != "" {
		host += ":" + port
	}
	scheme := "http"
	if r.TLS != nil {
		scheme = "https"
	} else if p := strings.ToLower(strings.TrimSpace(strings.Split(r.Header.Get("X-Forwarded-Proto"), ",")[0])); p == "https" {
		scheme = p
	}
	u := url.URL{Scheme: scheme, Host: host, Path: path, RawQuery: rawQuery}
	return u.String(), nil
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

// QRHandler serves GET /settings/qr.png?emailaddress=…: a QR code holding
// the absolute URL of the address's Apple profile. The iPhone and iPad
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
		target, err := publicURL(req, ProfilePath, url.Values{"emailaddress": {s.Address.String()}}.Encode())
		if err != nil {
			return c.String(http.StatusBadRequest, "cannot build a link from the Host header\n")
		}
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
