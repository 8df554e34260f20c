package server

import (
	"bytes"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"mailautoconf/internal/config"
	"mailautoconf/internal/route"
)

// The routes without parameters are served without echo's router
// (serveStatic); every such route, for each of its methods, must answer
// exactly as echo routing the same request does, and anything else must be
// left to echo.
func TestStaticDispatchMatchesEcho(t *testing.T) {
	cfg, err := config.Demo()
	if err != nil {
		t.Fatal(err)
	}
	s, err := New(cfg, Options{Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	pox := `<?xml version="1.0" encoding="utf-8"?><Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>alice@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
	served := 0
	for _, rt := range route.Table() {
		if strings.ContainsAny(rt.Path, ":*") {
			continue
		}
		for _, method := range append(append([]string(nil), rt.Methods...), http.MethodPut) {
			for _, query := range []string{"", "?emailaddress=alice@example.com", "?emailaddress=bad"} {
				req := func() *http.Request {
					var body io.Reader
					if method == http.MethodPost || method == http.MethodPut {
						body = strings.NewReader(pox)
					}
					r := httptest.NewRequest(method, rt.Path+query, body)
					r.Host = "autoconfig.example.com"
					r.Header.Set("User-Agent", "Thunderbird/128.0")
					return r
				}
				ours := httptest.NewRecorder()
				took := s.serveStatic(ours, req())
				if listed := method != http.MethodPut; took != listed {
					t.Errorf("%s %s%s: served without echo %v, want %v", method, rt.Path, query, took, listed)
					continue
				}
				if !took {
					continue
				}
				served++
				theirs := httptest.NewRecorder()
				s.echo.ServeHTTP(theirs, req())
				if ours.Code != theirs.Code {
					t.Errorf("%s %s%s: status %d, echo %d", method, rt.Path, query, ours.Code, theirs.Code)
				}
				if rt.Ops && rt.Path == route.MetricsPath {
					continue // the counts move between the two scrapes
				}
				if !equalHeaders(ours.Header(), theirs.Header()) || !bytes.Equal(ours.Body.Bytes(), theirs.Body.Bytes()) {
					t.Errorf("%s %s%s: answers differ:\nours %v %q\necho %v %q", method, rt.Path, query,
						ours.Header(), ours.Body.String(), theirs.Header(), theirs.Body.String())
				}
			}
		}
	}
	if served == 0 {
		t.Fatal("no route was served without echo")
	}
	// An escaped path is left to echo, which routes on the raw path.
	r := httptest.NewRequest(http.MethodGet, "/mail/config%2Dv1.1.xml", nil)
	if r.URL.RawPath == "" {
		t.Fatal("test request has no raw path")
	}
	if s.serveStatic(httptest.NewRecorder(), r) {
		t.Error("a request with an escaped path was served without echo")
	}
}

func equalHeaders(a, b http.Header) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if k == "Date" {
			continue // the two answers may fall in two seconds
		}
		if strings.Join(v, "\n") != strings.Join(b[k], "\n") {
			return false
		}
	}
	return true
}
