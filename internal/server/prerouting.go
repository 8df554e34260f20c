package server

import (
	"net/http"

	"mailautoconf/autodiscover"
)

// forwardedHeaders are dropped from requests that do not come from a trusted
// proxy, so that nothing downstream (echo's RealIP and Scheme included) can
// be fooled by them.
//
// Non-canonical spellings ("x-forwarded-for") never reach a handler:
// net/http canonicalises header names while reading the request.
var forwardedHeaders = []string{
	"X-Forwarded-For", "X-Forwarded-Proto", "X-Forwarded-Protocol", "X-Forwarded-Ssl",
	"X-Forwarded-Host", "X-Url-Scheme", "X-Real-Ip", "Forwarded",
}

// ServeHTTP prepares a request before echo routes it: X-Forwarded-Host from
// trusted proxies applied, the X-Forwarded-* headers of everyone else
// removed, and the Autodiscover paths in their registered case (see
// autodiscover.CanonicalizePath). Done here rather than as echo
// pre-middlewares, which echo wraps anew for every request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	px := s.State().proxies
	if px.fromProxy(r) {
		r.Host = px.host(r)
	} else {
		// The names are in canonical form already, so the map is
		// used directly: Header.Del canonicalises every name on every
		// request, although a client rarely sends any of them.
		for _, h := range forwardedHeaders {
			delete(r.Header, h)
		}
	}
	autodiscover.CanonicalizePath(r.URL)
	if !s.serveStatic(w, r) {
		s.echo.ServeHTTP(w, r)
	}
}
