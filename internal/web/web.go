// Package web holds the small pieces every HTTP endpoint shares: finding the
// settings a request asks for and answering errors in plain text.
package web

import (
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/labstack/echo/v4"

	"mailautoconf/internal/address"
	"mailautoconf/internal/metrics"
	"mailautoconf/internal/settings"
)

// Query returns the first value of a query parameter, trying the names in
// order. Names are matched without regard to case: Thunderbird sends
// "emailaddress", other clients and hand-written links "emailAddress" or
// "EmailAddress"; Outlook's v2 JSON request says "Protocol" or "protocol".
//
// An earlier name wins over later ones, and exact matches over matches
// without regard to case; among parameters of the same name, the first.
// Pairs that url.ParseQuery would drop (a ';' in the name, bad escapes) are
// skipped the same way. The query string is scanned in place: every request
// asks for one or two parameters, and building url.Values for that was a
// map and a slice per request.
func Query(r *http.Request, names ...string) (string, bool) {
	return queryValue(r.URL.RawQuery, names)
}

// queryValue scans raw once. Each well-formed pair whose name is one of
// names gets a rank, exact matches first and then by the names' order;
// the first pair of the best rank is the answer. (Scanning once per name
// and per kind of match took up to four passes for a parameter that is
// absent, as most of the optional ones are.)
func queryValue(raw string, names []string) (string, bool) {
	best, bestRank := "", -1
	for raw != "" && bestRank != 0 {
		var pair string
		if i := strings.IndexByte(raw, '&'); i >= 0 {
			pair, raw = raw[:i], raw[i+1:]
		} else {
			pair, raw = raw, ""
		}
		if pair == "" || strings.IndexByte(pair, ';') >= 0 {
			continue
		}
		k, v := pair, ""
		if i := strings.IndexByte(pair, '='); i >= 0 {
			k, v = pair[:i], pair[i+1:]
		}
		if escaped(k) {
			var err error
			if k, err = url.QueryUnescape(k); err != nil {
				continue
			}
		}
		rank := -1
		for i, n := range names {
			if k == n {
				rank = i
				break
			}
		}
		if rank < 0 {
			for i, n := range names {
				if strings.EqualFold(k, n) {
					rank = len(names) + i
					break
				}
			}
		}
		if rank < 0 || bestRank >= 0 && rank >= bestRank {
			continue
		}
		if escaped(v) {
			var err error
			if v, err = url.QueryUnescape(v); err != nil {
				continue
			}
		}
		best, bestRank = v, rank
	}
	return best, bestRank >= 0
}

// escaped reports whether a query key or value holds '%' or '+', which
// url.QueryUnescape would change. strings.ContainsAny builds a set of its
// characters on every call; two byte searches do not.
func escaped(s string) bool {
	return strings.IndexByte(s, '%') >= 0 || strings.IndexByte(s, '+') >= 0
}

// Info is what a handler learned about a request, for the access log and
// the metrics: the served domain, the address and an outcome that the HTTP
// status does not tell.
type Info struct {
	Domain  string
	Address *address.Address // nil when the request named no mailbox
	Outcome string           // empty: derived from the status
}

// Context is the echo.Context handlers see behind the server's observing
// middleware (echo's "custom context" pattern): it carries the request's
// Info in a plain struct, which the server recycles, instead of echo's
// per-request map of values.
type Context struct {
	echo.Context
	Info Info
	// Budget is the allowance for expensive answers of the request's
	// client (see Spend); nil: unlimited.
	Budget Budget
}

// Budget is what each client may spend on answers that cost far more than
// the others: a profile signed anew (RSA: about 2 ms), a QR code drawn
// anew (about 4 ms), a /metrics scrape. An ordinary answer costs a few
// microseconds, so the request rate limit alone would let one client keep
// a CPU busy with these.
type Budget interface {
	// Spend takes one unit from the budget of r's client. Without one
	// left it reports false and the Retry-After value (in seconds).
	Spend(r *http.Request) (ok bool, retryAfter string)
}

// Spend takes one unit of the request's expensive-answer budget before a
// handler does such work; handlers call it only when no cached answer
// saves them the work. When the budget is spent it answers 429 and
// returns false with the error of writing that answer, which the handler
// returns.
func Spend(c echo.Context) (bool, error) {
	x, ok := c.(*Context)
	if !ok || x.Budget == nil {
		return true, nil
	}
	if ok, retry := x.Budget.Spend(c.Request()); !ok {
		return false, TooManyRequests(c, retry)
	}
	return true, nil
}

// TooManyRequests answers 429 with Retry-After and closes the connection
// after the answer (HTTP/2: GOAWAY): a client over its budget that kept
// its connection would go on holding a slot of the listener.
func TooManyRequests(c echo.Context, retryAfter string) error {
	SetOutcome(c, metrics.OutcomeRateLimited)
	h := c.Response().Header()
	h.Set("Retry-After", retryAfter)
	h.Set("Connection", "close")
	return c.String(http.StatusTooManyRequests, "too many requests, slow down\n")
}

// InfoOf returns the Info of a request, or nil when c is not a *Context
// (a handler mounted without the server's middleware).
func InfoOf(c echo.Context) *Info {
	if x, ok := c.(*Context); ok {
		return &x.Info
	}
	return nil
}

// SetOutcome records the outcome (metrics.Outcome*) of a request whose HTTP
// status does not tell it, e.g. an Autodiscover error document sent with
// status 200.
func SetOutcome(c echo.Context, outcome string) {
	if in := InfoOf(c); in != nil {
		in.Outcome = outcome
	}
}

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
	if in := InfoOf(c); in != nil {
		in.Domain = s.Domain
		in.Address = s.Address
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

// NoteError records the outcome of a request that failed with an error of
// Resolve, for endpoints whose answer's HTTP status does not tell it
// (Autodiscover answers errors with 200 and an error document).
func NoteError(c echo.Context, err error) {
	switch Status(err) {
	case http.StatusBadRequest:
		SetOutcome(c, metrics.OutcomeBadRequest)
	case http.StatusNotFound:
		SetOutcome(c, metrics.OutcomeUnknownDomain)
	}
}

// Error answers err in plain text with its status. Messages of Resolve's
// errors never repeat the input, so nothing a client sent is reflected.
func Error(c echo.Context, err error) error {
	code := Status(err)
	NoteError(c, err)
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
	// Assigned directly, both values in one allocation: the keys are
	// canonical already, and Header.Set would canonicalise them again and
	// allocate a slice each, on every request.
	v := [...]string{contentType, strconv.Itoa(len(b))}
	vs := v[:]
	h := c.Response().Header()
	h[echo.HeaderContentType] = vs[0:1:1]
	h[echo.HeaderContentLength] = vs[1:2:2]
	// What echo's Blob does after checking the Content-Type set just
	// above (a canonicalised header lookup per answer).
	resp := c.Response()
	resp.WriteHeader(code)
	_, err := resp.Write(b)
	return err
}
