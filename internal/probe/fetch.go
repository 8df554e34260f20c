package probe

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"net/url"
	"strings"
)

// maxBody bounds what is read of an answer; real ones are a few KiB.
const maxBody = 1 << 20

// userAgent names the probe in the server's logs.
const userAgent = "mailautoconf-probe"

// fetchReq is one HTTP request of a client.
type fetchReq struct {
	client      string // whose request it is, for findings
	method, url string
	body        []byte
	contentType string
	// follow makes the request follow redirects, as browsers and
	// Thunderbird do. Outlook's POX redirects are handled by the caller.
	follow bool
	// quiet leaves a certificate that fails verification to the caller:
	// for a document that a domain need not publish, a host name's
	// default certificate is not a problem by itself.
	quiet bool
}

// fetch performs one request and records it as a check. A certificate that
// does not verify is a finding whether or not Insecure lets the request go
// on.
func (p *prober) fetch(ctx context.Context, r fetchReq) *Check {
	c := &Check{Kind: "http", Target: r.method + " " + r.url}
	var cert *Certificate
	tc := &tls.Config{
		MinVersion: tls.VersionTLS12,
		// Verification is done in VerifyConnection, so that the
		// certificate is described even when it fails.
		InsecureSkipVerify: true,
		VerifyConnection: func(cs tls.ConnectionState) error {
			cert = p.verify(cs)
			if !cert.Valid && !p.opts.Insecure {
				return errors.New(cert.Error)
			}
			return nil
		},
	}
	tr := &http.Transport{
		DialContext:           p.dial.DialContext,
		TLSClientConfig:       tc,
		TLSHandshakeTimeout:   p.opts.Timeout,
		ResponseHeaderTimeout: p.opts.Timeout,
		DisableKeepAlives:     true,
	}
	defer tr.CloseIdleConnections()
	hc := &http.Client{Transport: tr, Timeout: p.opts.Timeout}
	if !r.follow {
		hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	}
	var body io.Reader
	if r.body != nil {
		body = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, r.url, body)
	if err != nil {
		c.Status, c.Detail = StatusError, err.Error()
		return c
	}
	req.Header.Set("User-Agent", userAgent)
	if r.contentType != "" {
		req.Header.Set("Content-Type", r.contentType)
	}
	resp, err := hc.Do(req)
	c.Certificate = cert
	if cert != nil && !cert.Valid && !r.quiet {
		p.add(SevError, CodeCertificate, r.client, "%s: the certificate fails verification: %s", r.url, cert.Error)
	}
	if err != nil {
		// The URL is already the check's target.
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err
		}
		c.Status, c.Detail = StatusError, err.Error()
		if errors.Is(err, errNoRecord) {
			c.Status = StatusMissing
		}
		return c
	}
	defer resp.Body.Close()
	c.Body, err = io.ReadAll(io.LimitReader(resp.Body, maxBody))
	c.HTTPStatus = resp.StatusCode
	c.ContentType = resp.Header.Get("Content-Type")
	c.Location = resp.Header.Get("Location")
	switch {
	case err != nil:
		c.Status, c.Detail = StatusError, fmt.Sprintf("reading the answer: %v", err)
	case resp.StatusCode >= 200 && resp.StatusCode < 300:
		c.Status, c.Detail = StatusOK, resp.Status
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		c.Status, c.Detail = StatusOK, resp.Status+" to "+c.Location
	case resp.StatusCode == http.StatusNotFound:
		c.Status, c.Detail = StatusMissing, resp.Status
	default:
		c.Status, c.Detail = StatusError, resp.Status
	}
	return c
}

// verify checks a server's certificate chain for the name asked for.
func (p *prober) verify(cs tls.ConnectionState) *Certificate {
	if len(cs.PeerCertificates) == 0 {
		return &Certificate{Error: "no certificate"}
	}
	leaf := cs.PeerCertificates[0]
	inter := x509.NewCertPool()
	for _, c := range cs.PeerCertificates[1:] {
		inter.AddCert(c)
	}
	out := &Certificate{
		Subject:    leaf.Subject.String(),
		Issuer:     leaf.Issuer.String(),
		IssuerName: leaf.Issuer.CommonName,
		DNSNames:   leaf.DNSNames,
		NotAfter:   leaf.NotAfter,
	}
	if out.IssuerName == "" && len(leaf.Issuer.Organization) > 0 {
		out.IssuerName = leaf.Issuer.Organization[0]
	}
	_, err := leaf.Verify(x509.VerifyOptions{DNSName: cs.ServerName, Roots: p.opts.RootCAs, Intermediates: inter})
	if err != nil {
		out.Error = fmt.Sprintf("certificate for %s: %v", cs.ServerName, err)
	} else {
		out.Valid = true
	}
	return out
}

// checkContentType reports an answer whose media type is not one of want.
func (p *prober) checkContentType(client string, c *Check, want ...string) {
	mt, _, err := mime.ParseMediaType(c.ContentType)
	if err == nil {
		for _, w := range want {
			if strings.EqualFold(mt, w) {
				return
			}
		}
	}
	p.add(SevWarning, CodeContentType, client, "%s: Content-Type %q, want %s", c.Target, c.ContentType, strings.Join(want, " or "))
}
