package server_test

import (
	"io"
	"log/slog"
	"net/http"
	"strings"
	"testing"

	"mailautoconf/internal/fastlog"
	"mailautoconf/internal/route"
	"mailautoconf/internal/server"
	"mailautoconf/internal/testutil"
)

// addressRequests are requests to every route of the route table, and to
// paths no route serves, each carrying the address jane.doe@example.com
// in every place a client can put it: in the path, in the query string
// under the names the endpoints read, plain and percent-encoded once and
// twice, and in a POX body.
func addressRequests(t *testing.T, base string) []*http.Request {
	t.Helper()
	forms := []string{"jane.doe@example.com", "jane.doe%40example.com", "jane.doe%2540example.com", "Jane.Doe%40Example.COM"}
	var queries []string
	for _, f := range forms {
		queries = append(queries, "?emailaddress="+f, "?Email="+f+"&Protocol=AutodiscoverV1", "?email="+f+"&name=Jane%20Doe")
	}
	var reqs []*http.Request
	add := func(method, target, body string) {
		req, err := http.NewRequest(method, base+target, strings.NewReader(body))
		if err != nil {
			t.Fatalf("%s %s: %v", method, target, err)
		}
		if body != "" {
			req.Header.Set("Content-Type", "text/xml")
		}
		reqs = append(reqs, req)
	}
	pox := `<Autodiscover xmlns="http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"><Request><EMailAddress>jane.doe@example.com</EMailAddress><AcceptableResponseSchema>http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a</AcceptableResponseSchema></Request></Autodiscover>`
	for _, rt := range route.Table() {
		paths := []string{rt.Path}
		if prefix, ok := strings.CutSuffix(rt.Path, "/*"); ok {
			paths = nil
			for _, f := range forms {
				paths = append(paths, prefix+"/v1.0/"+f, prefix+"/"+f)
			}
		}
		for _, m := range rt.Methods {
			for _, p := range paths {
				body := ""
				if m == http.MethodPost {
					body = pox
				}
				add(m, p, body)
				for _, q := range queries {
					add(m, p+q, body)
				}
			}
		}
	}
	for _, f := range forms {
		add(http.MethodGet, "/"+f, "")
		add(http.MethodGet, "/settings/"+f+"/qr.png", "")
		add(http.MethodPost, "/mail/"+f, "x")
	}
	return reqs
}

// TestLogRedactsAddresses: with log.addresses off, no log line, whatever
// the handler (text and JSON, slog's and the service's own), holds the
// local part of an address a client sent, for any route of the route
// table or a path none serves; the path is logged with "*" for the local
// part. With log.addresses on, the same requests do show it (so the
// requests reach the log at all).
func TestLogRedactsAddresses(t *testing.T) {
	for _, h := range []struct {
		name    string
		handler func(io.Writer) slog.Handler
		json    bool
	}{
		{"slog text", func(w io.Writer) slog.Handler { return slog.NewTextHandler(w, nil) }, false},
		{"slog json", func(w io.Writer) slog.Handler { return slog.NewJSONHandler(w, nil) }, true},
		{"fastlog text", func(w io.Writer) slog.Handler { return fastlog.New(w, false, nil) }, false},
		{"fastlog json", func(w io.Writer) slog.Handler { return fastlog.New(w, true, nil) }, true},
	} {
		for _, logAddr := range []bool{false, true} {
			name := h.name
			if logAddr {
				name += ", log.addresses"
			}
			t.Run(name, func(t *testing.T) {
				logs := &testutil.LogBuffer{}
				cfg := testutil.Demo(t)
				cfg.Log.Addresses = logAddr
				srv := testutil.Start(t, cfg, server.Options{Logger: slog.New(h.handler(logs))})
				reqs := addressRequests(t, srv.URL)
				for _, req := range reqs {
					testutil.Do(t, req)
				}
				srv.FlushLog()
				out := logs.String()
				if n := strings.Count(out, `"msg":"request"`) + strings.Count(out, "msg=request"); n != len(reqs) {
					t.Fatalf("%d access lines for %d requests", n, len(reqs))
				}
				wantPath := `path=/autodiscover/autodiscover.json/v1.0/*@example.com `
				if h.json {
					wantPath = `"path":"/autodiscover/autodiscover.json/v1.0/*@example.com"`
				}
				leaked := strings.Contains(strings.ToLower(out), "jane")
				switch {
				case !logAddr && leaked:
					for _, line := range strings.Split(out, "\n") {
						if strings.Contains(strings.ToLower(line), "jane") {
							t.Errorf("a local part is logged: %s", line)
						}
					}
				case !logAddr && !strings.Contains(out, wantPath):
					t.Errorf("no access line with %s:\n%.2000s", wantPath, out)
				case logAddr && !strings.Contains(out, "/autodiscover/autodiscover.json/v1.0/jane.doe@example.com"):
					t.Errorf("log.addresses: the path is not logged as sent:\n%.2000s", out)
				}
			})
		}
	}
}
