package server

import (
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/labstack/echo/v4"

	"mailautoconf/autoconfig"
	"mailautoconf/autodiscover"
	"mailautoconf/internal/page"
	"mailautoconf/internal/route"
	"mailautoconf/internal/settings"
	"mailautoconf/mobileconfig"
	"mailautoconf/pacc"
)

// routes registers the route table (internal/route) with a handler bound to
// each of its handler names.
func (s *Server) routes() (*echo.Echo, error) {
	e := echo.New()
	e.HideBanner = true
	e.HidePort = true
	e.HTTPErrorHandler = s.errorHandler
	e.IPExtractor = func(r *http.Request) string { return s.State().proxies.clientIP(r).String() }
	e.Use(s.front())

	ad := func() (*settings.Catalog, *autodiscover.Renderer) {
		st := s.State()
		return st.Catalog, st.Autodiscover
	}
	pg := func() (*settings.Catalog, *page.Renderer) {
		st := s.State()
		return st.Catalog, st.Page
	}
	handlers := map[string]echo.HandlerFunc{
		route.HandleAutoconfig: autoconfig.Handler(func() (*settings.Catalog, *autoconfig.Renderer) {
			st := s.State()
			return st.Catalog, st.Autoconfig
		}),
		route.HandleMobileconfig: mobileconfig.Handler(func() (*settings.Catalog, *mobileconfig.Renderer) {
			st := s.State()
			return st.Catalog, st.Mobileconfig
		}),
		route.HandleAutodiscoverPOX:  autodiscover.Handler(ad),
		route.HandleAutodiscoverJSON: autodiscover.JSONHandler(ad),
		route.HandlePACC: pacc.Handler(func() (*settings.Catalog, *pacc.Renderer) {
			st := s.State()
			return st.Catalog, st.PACC
		}),
		route.HandlePage:    page.Handler(pg),
		route.HandleQR:      page.QRHandler(pg),
		route.HandleStyle:   page.StyleHandler,
		route.HandleHealthz: s.healthz,
		route.HandleReadyz:  s.readyz,
		route.HandleMetrics: s.metricsRoute,
	}
	s.static = map[string]*staticRoute{}
	for _, rt := range route.Table() {
		h, ok := handlers[rt.Handler]
		if !ok {
			return nil, fmt.Errorf("route %s: no handler %q", rt.Path, rt.Handler)
		}
		for _, m := range rt.Methods {
			e.Add(m, rt.Path, h)
		}
		if !strings.ContainsAny(rt.Path, ":*") {
			sr := &staticRoute{path: rt.Path, methods: rt.Methods, handlers: make([]echo.HandlerFunc, len(rt.Methods))}
			for i := range rt.Methods {
				sr.handlers[i] = h
			}
			s.static[rt.Path] = sr
		}
	}
	return e, nil
}

// staticRoute is a route without parameters: its path and its handler
// for each of its methods.
type staticRoute struct {
	path     string
	methods  []string
	handlers []echo.HandlerFunc
}

func (rt *staticRoute) handler(method string) echo.HandlerFunc {
	for i, m := range rt.methods {
		if m == method {
			return rt.handlers[i]
		}
	}
	return nil
}

// serveStatic answers a request for a route without parameters, as echo
// would after routing it (the same context, the same front middleware and
// error handler), without echo's router and the middleware chain that
// echo builds anew for every request: together they were a tenth of what
// the service adds to a request. It reports false for anything else (an
// escaped path, another method: echo answers those, with its 405).
func (s *Server) serveStatic(w http.ResponseWriter, r *http.Request) bool {
	rt := s.static[r.URL.Path]
	if rt == nil || r.URL.RawPath != "" {
		return false
	}
	h := rt.handler(r.Method)
	if h == nil {
		return false
	}
	c := s.echo.AcquireContext()
	c.Reset(r, w)
	c.SetPath(rt.path)
	s.observe(c, h)
	s.echo.ReleaseContext(c)
	return true
}

// errorHandler answers every error in plain text, without internals.
func (s *Server) errorHandler(err error, c echo.Context) {
	if c.Response().Committed {
		return
	}
	code := http.StatusInternalServerError
	msg := http.StatusText(code)
	var he *echo.HTTPError
	if errors.As(err, &he) {
		code = he.Code
		if m, ok := he.Message.(string); ok && code < 500 {
			msg = m
		} else {
			msg = http.StatusText(code)
		}
	}
	if code >= 500 {
		s.log.Error("request failed", "method", c.Request().Method, "path", s.logged(c.Request().URL.Path), "err", s.logged(err.Error()))
	}
	if c.Request().Method == http.MethodHead {
		_ = c.NoContent(code)
		return
	}
	_ = c.String(code, msg+"\n")
}
