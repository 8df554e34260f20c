// Package web holds the small pieces every HTTP endpoint shares: finding the
// settings a request asks for and answering errors in plain text.
package web

import (
	"errors"
	"net/http"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"mailautoconf/internal/address"
	"mailautoconf/internal/settings"
)

// Query returns the first value of a query parameter, trying the names in
// order. Names are matched without regard to case: Thunderbird sends
// "emailaddress", other clients and hand-written links "emailAddress" or
// "EmailAddress"; Outlook's v2 JSON request says "Protocol" or "protocol".
func Query(r *http.Request, names ...string) (string, bool) {
	q := r.URL.Query()
	for _, n := range names {
		if v, ok := q[n]; ok && len(v) > 0 {
			return v[0], true
		}
	}
	for k, v := range q {
		for _, n := range names {
			if strings.EqualFold(k, n) && len(v) > 0 {
				return v[0], true
			}
		}
	}
	return "", false
}

// Context keys under which handlers leave facts for the access log and the
// metrics.
const (
	KeyDomain  = "mailautoconf.domain"  // the served domain a request is about
	KeyAddress = "mailautoconf.address" // the normalised address, if any
	KeyOutcome = "mailautoconf.outcome" // a metrics outcome overriding the status's
)

// SetOutcome records the outcome of a request whose HTTP status does not
// tell it, e.g. an Autodiscover error document sent with status 200.
func SetOutcome(c echo.Context, outcome string) { c.Set(KeyOutcome, outcome) }

// Resolve finds the settings a request is about: from the address parameter
// when there is one, otherwise from the Host header with one of the given
// prefixes (e.g. "autoconfig.") removed.
func Resolve(c echo.Context, cat *settings.Catalog, prefixes ...string) (settings.Settings, error) {
	var s settings.Settings
	var err error
	if a, ok := Query(c.Request(), "emailaddress", "email"); ok {
		s, err = cat.ForAddress(a)
	} else {
		s, err = cat.ForHost(c.Request().Host, prefixes...)
	}
	if err == nil {
		Note(c, s)
	}
	return s, err
}

// Note records the settings a request was answered from, for the access log
// and the metrics. Handlers that resolve settings themselves call it.
func Note(c echo.Context, s settings.Settings) {
	c.Set(KeyDomain, s.Domain)
	if s.Address != nil {
		c.Set(KeyAddress, s.Address.String())
	}
}

// ResolveAddress is Resolve for endpoints that need an address, such as a
// profile or a QR code, which name one mailbox: the Host header is not
// enough.
func ResolveAddress(c echo.Context, cat *settings.Catalog) (settings.Settings, error) {
	raw, ok := Query(c.Request(), "emailaddress", "email")
	if !ok {
		return settings.Settings{}, settings.ErrNoDomain
	}
	s, err := cat.ForAddress(raw)
	if err == nil {
		Note(c, s)
	}
	return s, err
}

// Status returns the HTTP status for an error of Resolve.
func Status(err error) int {
	switch {
	case address.IsInvalid(err), errors.Is(err, settings.ErrNoDomain):
		return http.StatusBadRequest
	case errors.Is(err, settings.ErrUnknownDomain):
		return http.StatusNotFound
	}
	return http.StatusInternalServerError
}

// Error answers err in plain text with its status. Messages of Resolve's
// errors never repeat the input, so nothing a client sent is reflected.
func Error(c echo.Context, err error) error {
	code := Status(err)
	switch code {
	case http.StatusBadRequest:
		SetOutcome(c, "bad-request")
	case http.StatusNotFound:
		SetOutcome(c, "unknown-domain")
	}
	msg := err.Error()
	if code == http.StatusInternalServerError {
		msg = http.StatusText(code)
	}
	return c.String(code, msg+"\n")
}

// Blob answers b with an explicit Content-Length. Without it net/http
// switches to chunked encoding for bodies over a few kilobytes (an
// Autodiscover answer is one), which some older Autodiscover and profile
// clients handle badly; a length also lets clients see a cut-off answer.
func Blob(c echo.Context, code int, contentType string, b []byte) error {
	c.Response().Header().Set(echo.HeaderContentLength, strconv.Itoa(len(b)))
	return c.Blob(code, contentType, b)
}
