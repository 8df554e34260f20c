package acme

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/netip"
	"strconv"
	"strings"
	"time"

	"github.com/caddyserver/certmagic"
)

// The pre-check asks http://<name>/.well-known/acme-challenge/<precheckPath>
// the way the CA will ask for the HTTP-01 token, and expects the token that
// every process sharing the storage answers there. A name that does not
// resolve, resolves elsewhere, or reaches another web server fails here for
// free instead of failing the CA's validation, which Let's Encrypt counts
// (5 failed authorizations per name and account per hour).
const (
	challengePrefix = "/.well-known/acme-challenge/"
	precheckPath    = challengePrefix + "mailautoconf-precheck"
	precheckKey     = "mailautoconf/precheck_token"
	precheckTimeout = 10 * time.Second
	// maxPrecheckAddrs bounds the addresses tried for one name.
	maxPrecheckAddrs = 8
)

// precheckError marks a failed pre-check, so that it is counted as such
// and not as a failed order.
type precheckError struct{ err error }

func (e *precheckError) Error() string { return e.err.Error() }
func (e *precheckError) Unwrap() error { return e.err }

// loadPrecheckToken reads the token shared through the storage, creating it
// under the storage's lock when no process has yet.
func loadPrecheckToken(ctx context.Context, s certmagic.Storage) (string, error) {
	if tok, err := s.Load(ctx, precheckKey); err == nil && len(tok) > 0 {
		return string(tok), nil
	}
	if err := s.Lock(ctx, precheckKey); err != nil {
		return "", fmt.Errorf("locking the pre-check token: %w", err)
	}
	defer s.Unlock(ctx, precheckKey) //nolint:errcheck // nothing to do about it
	tok, err := s.Load(ctx, precheckKey)
	if err == nil && len(tok) > 0 {
		return string(tok), nil
	}
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("reading the pre-check token: %w", err)
	}
	b := make([]byte, 24)
	if _, err := rand.Read(b); err != nil {
		return "", err
	}
	tok = []byte(base64.RawURLEncoding.EncodeToString(b))
	if err := s.Store(ctx, precheckKey, tok); err != nil {
		return "", fmt.Errorf("storing the pre-check token: %w", err)
	}
	return string(tok), nil
}

// prechecker checks that a name reaches a process of this service.
type prechecker struct {
	token    string
	port     int
	resolver *net.Resolver
	client   *http.Client
}

func newPrechecker(token string, port int, resolverAddr string) *prechecker {
	r := net.DefaultResolver
	if resolverAddr != "" {
		var d net.Dialer
		r = &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return d.DialContext(ctx, network, resolverAddr)
		}}
	}
	return &prechecker{
		token:    token,
		port:     port,
		resolver: r,
		client: &http.Client{
			// The address is dialled as given: no proxy, no keep-alive,
			// no redirect (the CA follows redirects, but one here means
			// another server answers).
			Transport: &http.Transport{Proxy: nil, DisableKeepAlives: true},
			CheckRedirect: func(*http.Request, []*http.Request) error {
				return http.ErrUseLastResponse
			},
		},
	}
}

// check resolves name and asks each of its addresses for the token.
//
// Let's Encrypt tries the IPv6 address first and falls back to IPv4 only
// when it cannot connect, so an address that cannot be reached from here is
// tolerated as long as another one answers, but an address that answers
// with anything but the token fails the check: the CA would get that
// answer too.
func (p *prechecker) check(ctx context.Context, name string) error {
	ctx, cancel := context.WithTimeout(ctx, precheckTimeout)
	defer cancel()
	addrs, err := p.resolver.LookupNetIP(ctx, "ip", name)
	if err != nil {
		return &precheckError{fmt.Errorf("pre-check: %s does not resolve: %w", name, err)}
	}
	if len(addrs) == 0 {
		return &precheckError{fmt.Errorf("pre-check: %s has no address", name)}
	}
	var unreachable []error
	answered := 0
	for _, a := range addrs[:min(len(addrs), maxPrecheckAddrs)] {
		reached, err := p.ask(ctx, name, a.Unmap())
		switch {
		case err == nil:
			answered++
		case !reached:
			unreachable = append(unreachable, err)
		default:
			return &precheckError{err}
		}
	}
	if answered == 0 {
		return &precheckError{fmt.Errorf("pre-check: no address of %s answers on port %d: %w", name, p.port, errors.Join(unreachable...))}
	}
	return nil
}

// ask fetches the token from one address. reached is false when no HTTP
// answer came back at all (refused, timed out).
func (p *prechecker) ask(ctx context.Context, name string, a netip.Addr) (reached bool, err error) {
	u := "http://" + net.JoinHostPort(a.String(), strconv.Itoa(p.port)) + precheckPath
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, err
	}
	req.Host = name
	req.Header.Set("User-Agent", "mailautoconf-precheck")
	resp, err := p.client.Do(req)
	if err != nil {
		return false, fmt.Errorf("%s at %s: %w", name, a, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	if resp.StatusCode != http.StatusOK || strings.TrimSpace(string(body)) != p.token {
		return true, fmt.Errorf("pre-check: %s at %s port %d is answered by another server (HTTP %d), not by this service", name, a, p.port, resp.StatusCode)
	}
	return true, nil
}
