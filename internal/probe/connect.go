package probe

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/textproto"
	"strconv"
	"strings"
	"sync"
)

// connectAll opens every server any client was offered, once each.
func (p *prober) connectAll(ctx context.Context, views []View) []Connection {
	seen := map[string]bool{}
	var eps []Endpoint
	for _, v := range views {
		for _, e := range v.Offered {
			e.Username = ""
			if !seen[e.key()] {
				seen[e.key()] = true
				eps = append(eps, e)
			}
		}
	}
	out := make([]Connection, len(eps))
	var wg sync.WaitGroup
	for i, e := range eps {
		wg.Go(func() { out[i] = p.connect(ctx, e) })
	}
	wg.Wait()
	for _, c := range out {
		switch {
		case !c.OK && c.Certificate != nil && !c.Certificate.Valid:
			p.add(SevError, CodeCertificate, "", "%s: %s", c.Endpoint, c.Detail)
		case !c.OK:
			p.add(SevError, CodeConnect, "", "%s: %s", c.Endpoint, c.Detail)
		case c.Certificate != nil && !c.Certificate.Valid:
			p.add(SevError, CodeCertificate, "", "%s: %s", c.Endpoint, c.Certificate.Error)
		}
	}
	return out
}

// connect opens one server and checks what a client would do first: the
// TLS handshake (implicit TLS) or the STARTTLS capability and upgrade, then
// the greeting. Everything is bounded by the timeout.
func (p *prober) connect(ctx context.Context, e Endpoint) Connection {
	res := Connection{Endpoint: e}
	ctx, cancel := context.WithTimeout(ctx, p.opts.Timeout)
	defer cancel()
	conn, err := p.dial.DialContext(ctx, "tcp", net.JoinHostPort(e.Host, strconv.Itoa(e.Port)))
	if err != nil {
		res.Detail = err.Error()
		return res
	}
	defer conn.Close()
	deadline, _ := ctx.Deadline()
	_ = conn.SetDeadline(deadline)

	upgrade := func(c net.Conn) (*tls.Conn, error) {
		tc := tls.Client(c, &tls.Config{
			ServerName:         e.Host,
			MinVersion:         tls.VersionTLS12,
			InsecureSkipVerify: true,
			VerifyConnection: func(cs tls.ConnectionState) error {
				res.Certificate = p.verify(cs)
				if !res.Certificate.Valid && !p.opts.Insecure {
					return errors.New(res.Certificate.Error)
				}
				return nil
			},
		})
		if err := tc.HandshakeContext(ctx); err != nil {
			return nil, fmt.Errorf("TLS handshake: %w", err)
		}
		res.TLSVersion = tls.VersionName(tc.ConnectionState().Version)
		return tc, nil
	}

	switch e.Security {
	case SecurityTLS:
		tc, err := upgrade(conn)
		if err != nil {
			res.Detail = err.Error()
			return res
		}
		if err := greeting(textproto.NewConn(tc), e.Protocol); err != nil {
			res.Detail = "after the TLS handshake: " + err.Error()
			return res
		}
		res.OK, res.Detail = true, "implicit TLS, greeting received"
	case SecurityStartTLS, SecurityAuto:
		tp := textproto.NewConn(conn)
		if err := greeting(tp, e.Protocol); err != nil {
			res.Detail = err.Error()
			return res
		}
		if err := startTLS(tp, e.Protocol); err != nil {
			res.Detail = err.Error()
			return res
		}
		if _, err := upgrade(conn); err != nil {
			res.Detail = "after STARTTLS: " + err.Error()
			return res
		}
		res.OK, res.Detail = true, "STARTTLS offered and upgraded"
	default:
		if err := greeting(textproto.NewConn(conn), e.Protocol); err != nil {
			res.Detail = err.Error()
			return res
		}
		res.OK, res.Detail = true, "plaintext greeting received (not encrypted)"
	}
	return res
}

// greeting reads the server's first words.
func greeting(c *textproto.Conn, proto string) error {
	switch proto {
	case SMTP:
		if _, msg, err := c.ReadResponse(220); err != nil {
			return fmt.Errorf("SMTP greeting: %w (%s)", err, msg)
		}
		return nil
	case POP3:
		line, err := c.ReadLine()
		if err != nil {
			return fmt.Errorf("POP3 greeting: %w", err)
		}
		if !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("POP3 greeting %q", clip(line))
		}
		return nil
	default:
		line, err := c.ReadLine()
		if err != nil {
			return fmt.Errorf("IMAP greeting: %w", err)
		}
		if !strings.HasPrefix(line, "* OK") && !strings.HasPrefix(line, "* PREAUTH") {
			return fmt.Errorf("IMAP greeting %q", clip(line))
		}
		return nil
	}
}

// startTLS asks for the capabilities, checks that STARTTLS (POP3: STLS) is
// among them and asks for it. The caller then does the handshake.
func startTLS(c *textproto.Conn, proto string) error {
	switch proto {
	case SMTP:
		if err := c.PrintfLine("EHLO mailautoconf-probe.invalid"); err != nil {
			return err
		}
		_, msg, err := c.ReadResponse(250)
		if err != nil {
			return fmt.Errorf("EHLO: %w", err)
		}
		if !hasToken(strings.Split(msg, "\n"), "STARTTLS") {
			return errors.New("the server does not offer STARTTLS in its EHLO answer")
		}
		if err := c.PrintfLine("STARTTLS"); err != nil {
			return err
		}
		if _, msg, err := c.ReadResponse(220); err != nil {
			return fmt.Errorf("STARTTLS: %w (%s)", err, msg)
		}
		return nil
	case POP3:
		if err := c.PrintfLine("CAPA"); err != nil {
			return err
		}
		line, err := c.ReadLine()
		if err != nil {
			return fmt.Errorf("CAPA: %w", err)
		}
		if !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("CAPA answered %q: the server does not list STLS", clip(line))
		}
		caps, err := c.ReadDotLines()
		if err != nil {
			return fmt.Errorf("CAPA: %w", err)
		}
		if !hasToken(caps, "STLS") {
			return errors.New("the server does not offer STLS in its CAPA answer")
		}
		if err := c.PrintfLine("STLS"); err != nil {
			return err
		}
		if line, err = c.ReadLine(); err != nil || !strings.HasPrefix(line, "+OK") {
			return fmt.Errorf("STLS answered %q: %v", clip(line), err)
		}
		return nil
	default:
		if err := c.PrintfLine("A1 CAPABILITY"); err != nil {
			return err
		}
		var caps []string
		for {
			line, err := c.ReadLine()
			if err != nil {
				return fmt.Errorf("CAPABILITY: %w", err)
			}
			if strings.HasPrefix(line, "A1 ") {
				break
			}
			caps = append(caps, strings.Fields(line)...)
		}
		if !hasToken(caps, "STARTTLS") {
			return errors.New("the server does not offer STARTTLS in its CAPABILITY answer")
		}
		if err := c.PrintfLine("A2 STARTTLS"); err != nil {
			return err
		}
		for {
			line, err := c.ReadLine()
			if err != nil {
				return fmt.Errorf("STARTTLS: %w", err)
			}
			if strings.HasPrefix(line, "A2 ") {
				if !strings.HasPrefix(line, "A2 OK") {
					return fmt.Errorf("STARTTLS answered %q", clip(line))
				}
				return nil
			}
		}
	}
}

// hasToken reports whether one of the lines holds the word.
func hasToken(lines []string, word string) bool {
	for _, l := range lines {
		for _, w := range strings.Fields(l) {
			if strings.EqualFold(w, word) {
				return true
			}
		}
	}
	return false
}

// clip shortens what a server said for a message.
func clip(s string) string {
	if len(s) > 80 {
		return s[:80] + "…"
	}
	return s
}
