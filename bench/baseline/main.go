// Command baseline is the ceiling the load harness (bench/run) measures
// mailautoconf against: a bare net/http server that answers the same URLs
// with fixed bytes rendered in advance. It does what any HTTP service must
// do (parse the request, read the whole body of a POST, write the answer)
// and nothing else: no routing library, no address parsing, no logging,
// no metrics. The ratio of mailautoconf's throughput to this one's is the
// price of everything the service adds.
//
// It sends the same answer as mailautoconf, headers included (all but
// Date, which net/http adds to both): the cost of writing, say, a profile's
// Content-Disposition belongs to the answer a client needs, not to the
// service, and a body sent with Content-Length is framed differently from a
// chunked one.
//
//	baseline -addr 127.0.0.1:8081 -manifest routes.txt \
//	         [-tls-addr 127.0.0.1:8444 -cert c.pem -key k.pem] [-timeouts]
//
// With -tls-addr it also answers over HTTPS (crypto/tls through
// net/http's ServeTLS, its defaults: TLS 1.2 and 1.3, HTTP/2 offered),
// with the certificate mailautoconf is given: the ceiling for HTTPS, for
// keep-alive requests and for new handshakes alike.
//
// Each line of the manifest is "METHOD PATH HEADERS BODY": HEADERS is a
// file of the answer's header lines as `curl -D` writes them (the status
// line and Date are skipped), BODY the body. The query string is ignored.
package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

type route struct {
	header http.Header
	body   []byte
}

func main() {
	addr := flag.String("addr", "127.0.0.1:8081", "listen address")
	manifest := flag.String("manifest", "", "file of \"METHOD PATH HEADERS BODY\" lines")
	tlsAddr := flag.String("tls-addr", "", "HTTPS listen address (off without)")
	certFile := flag.String("cert", "", "PEM certificate (with chain) for -tls-addr")
	keyFile := flag.String("key", "", "PEM key for -tls-addr")
	timeouts := flag.Bool("timeouts", false, "net/http's timeouts, with mailautoconf's values (default: none, as http.ListenAndServe)")
	flag.Parse()
	routes, err := load(*manifest)
	if err != nil {
		slog.Error("loading the manifest", "err", err)
		os.Exit(1)
	}
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rt, ok := routes[r.Method+" "+r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		if r.Method == http.MethodPost {
			if _, err := io.Copy(io.Discard, r.Body); err != nil {
				http.Error(w, "bad body", http.StatusBadRequest)
				return
			}
		}
		h := w.Header()
		for k, v := range rt.header {
			h[k] = v
		}
		_, _ = w.Write(rt.body)
	})
	errc := make(chan error, 2)
	go func() { errc <- newServer(*addr, h, *timeouts).ListenAndServe() }()
	if *tlsAddr != "" {
		go func() { errc <- newServer(*tlsAddr, h, *timeouts).ListenAndServeTLS(*certFile, *keyFile) }()
	}
	slog.Error("serving", "err", <-errc)
	os.Exit(1)
}

// newServer is what http.ListenAndServe runs, with mailautoconf's header
// limit: no timeouts unless -timeouts. A bare server is the ceiling an
// operator would compare against; net/http's timeouts cost it 0.6–0.8 µs of
// CPU per keep-alive request (socket deadlines set five to six times per
// request), which mailautoconf avoids for plain HTTP with its own watchdog
// (internal/watchdog) while keeping the same protection. -timeouts gives
// the baseline net/http's timeouts with mailautoconf's values, to see that
// difference.
func newServer(addr string, h http.Handler, timeouts bool) *http.Server {
	srv := &http.Server{Addr: addr, Handler: h, MaxHeaderBytes: 16 << 10}
	if timeouts {
		srv.ReadHeaderTimeout = 5 * time.Second
		srv.ReadTimeout = 10 * time.Second
		srv.WriteTimeout = 10 * time.Second
		srv.IdleTimeout = 60 * time.Second
	}
	return srv
}

func load(path string) (map[string]route, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening the manifest: %w", err)
	}
	defer f.Close()
	routes := map[string]route{}
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		fields := strings.Fields(sc.Text())
		if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
			continue
		}
		if len(fields) != 4 {
			return nil, fmt.Errorf("%s:%d: want METHOD PATH HEADERS BODY", path, n)
		}
		var files [2][]byte
		for i, file := range fields[2:] {
			if !filepath.IsAbs(file) {
				file = filepath.Join(filepath.Dir(path), file)
			}
			if files[i], err = os.ReadFile(file); err != nil {
				return nil, fmt.Errorf("%s:%d: %w", path, n, err)
			}
		}
		header := http.Header{}
		for i, line := range strings.Split(string(files[0]), "\n") {
			k, v, ok := strings.Cut(strings.TrimRight(line, "\r"), ":")
			if i == 0 || !ok || http.CanonicalHeaderKey(k) == "Date" {
				continue // the status line, the blank line, Date
			}
			header.Add(k, strings.TrimSpace(v))
		}
		routes[fields[0]+" "+fields[1]] = route{header: header, body: files[1]}
	}
	return routes, sc.Err()
}
