package probe

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"

	"github.com/miekg/dns"
)

// PACCClients are the clients of draft-ietf-mailmaint-pacc. They are
// reported only for a domain that publishes a PACC document: none ships
// yet, and a domain without one is not at fault.
const PACCClients = "PACC clients"

// paccPath is the well-known document on ua-auto-config.<domain>.
const paccPath = "/.well-known/user-agent-configuration.json"

type paccResult struct {
	checks []*Check
	// view is nil unless a document whose digest a TXT record vouches for
	// offers a mail server.
	view *View
	// dav holds the document's HTTP services, when one was read.
	dav *DAVView
}

// paccDoc is what a client reads of the document: the host of each TCP
// protocol and the URL of each HTTP one. Members it does not know are
// ignored, as the draft requires of clients.
type paccDoc struct {
	hosts map[string]string // imap, pop3, submit (smtp in draft-02)
	urls  map[string]string // jmap, caldav, carddav, webdav
}

func parsePACC(b []byte) (*paccDoc, error) {
	var raw struct {
		Protocols map[string]json.RawMessage `json:"protocols"`
	}
	if err := json.Unmarshal(b, &raw); err != nil {
		return nil, fmt.Errorf("not a JSON object: %w", err)
	}
	if raw.Protocols == nil {
		return nil, errors.New("no protocols member")
	}
	d := &paccDoc{hosts: map[string]string{}, urls: map[string]string{}}
	for name, v := range raw.Protocols {
		var e struct {
			Host string `json:"host"`
			URL  string `json:"url"`
		}
		switch name {
		case "imap", "pop3", "submit", "smtp":
			if err := json.Unmarshal(v, &e); err != nil || e.Host == "" {
				return nil, fmt.Errorf("protocols.%s has no host", name)
			}
			d.hosts[name] = strings.ToLower(strings.TrimSuffix(e.Host, "."))
		case "jmap", "caldav", "carddav", "webdav":
			if err := json.Unmarshal(v, &e); err != nil || !strings.HasPrefix(e.URL, "https://") {
				return nil, fmt.Errorf("protocols.%s has no https url", name)
			}
			d.urls[name] = e.URL
		}
	}
	return d, nil
}

// pacc fetches the PACC document and the TXT record that vouches for it,
// the way a PACC client does: the document counts only when the SHA-256 of
// its exact bytes is the d= of a v=UAAC1 record.
func (p *prober) pacc(ctx context.Context) paccResult {
	d := p.addr.Domain
	u := "https://ua-auto-config." + d + paccPath
	name := "_ua-auto-config." + d
	var (
		res      paccResult
		c        *Check
		txt      []dns.RR
		txtCheck = &Check{Kind: "dns", Target: name + " TXT"}
		wg       sync.WaitGroup
	)
	wg.Go(func() { c = p.fetch(ctx, fetchReq{client: PACCClients, method: "GET", url: u, quiet: true}) })
	wg.Go(func() {
		var err error
		txt, err = p.res.query(ctx, name, dns.TypeTXT)
		switch {
		case errors.Is(err, errNoRecord):
			txtCheck.Status, txtCheck.Detail = StatusMissing, "no record"
		case err != nil:
			txtCheck.Status, txtCheck.Detail = StatusError, err.Error()
		default:
			txtCheck.Status = StatusOK
			var parts []string
			for _, rr := range txt {
				parts = append(parts, rdata(rr))
			}
			txtCheck.Detail = strings.Join(parts, ", ")
		}
	})
	wg.Wait()
	res.checks = []*Check{c, txtCheck}
	// A domain publishes PACC by its TXT record; only then is a bad
	// certificate on ua-auto-config.<domain> a problem.
	if cert := c.Certificate; cert != nil && !cert.Valid && txtCheck.Status == StatusOK {
		p.add(SevError, CodeCertificate, PACCClients, "%s: the certificate fails verification: %s", u, cert.Error)
	}
	if c.Status != StatusOK || c.HTTPStatus != 200 {
		if txtCheck.Status == StatusOK {
			p.add(SevWarning, CodePACC, PACCClients, "%s has a TXT record but %s gives no document (%s)", name, u, c.Detail)
		}
		return res
	}
	p.checkContentType(PACCClients, c, "application/json")
	var records []string
	for _, rr := range txt {
		records = append(records, strings.Join(rr.(*dns.TXT).Txt, ""))
	}
	sum := sha256.Sum256(c.Body)
	switch ok, seen := uaacMatch(records, sum[:]); {
	case txtCheck.Status != StatusOK:
		p.add(SevError, CodePACC, PACCClients, "%s serves a document but %s has no TXT record (%s): PACC clients do not use it", u, name, txtCheck.Detail)
		return res
	case seen == 0:
		p.add(SevError, CodePACC, PACCClients, "%s has no v=UAAC1 record: PACC clients do not use the document", name)
		return res
	case !ok:
		p.add(SevError, CodePACC, PACCClients, "no v=UAAC1 record at %s has the digest of the %d bytes served (%s): PACC clients do not use the document", name, len(c.Body), base64.StdEncoding.EncodeToString(sum[:]))
		return res
	}
	c.Detail += "; digest matches " + name
	doc, err := parsePACC(c.Body)
	if err != nil {
		c.Status, c.Detail = StatusError, err.Error()
		p.add(SevWarning, CodeMalformed, PACCClients, "%s: %v", u, err)
		return res
	}
	if _, ok := doc.hosts["submit"]; !ok && doc.hosts["smtp"] != "" {
		p.add(SevWarning, CodePACC, PACCClients, "%s names the submission server smtp (draft-02); draft-03 clients read submit", u)
		doc.hosts["submit"] = doc.hosts["smtp"]
	}
	v := &View{Client: PACCClients, Source: u}
	// No port and no security in the format: implicit TLS on the
	// protocol's port (RFC 8314).
	for _, e := range []struct {
		member, proto string
		port          int
	}{{"imap", IMAP, 993}, {"pop3", POP3, 995}, {"submit", SMTP, 465}} {
		host, ok := doc.hosts[e.member]
		if !ok {
			continue
		}
		ep := Endpoint{Protocol: e.proto, Host: host, Port: e.port, Security: SecurityTLS, Username: p.addr.String()}
		v.Offered = append(v.Offered, ep)
		switch {
		case e.proto == SMTP:
			v.Outgoing = &ep
		case v.Incoming == nil:
			v.Incoming = &ep
		}
	}
	if v.Incoming != nil || v.Outgoing != nil {
		res.view = v
	}
	dav := &DAVView{Source: "PACC", CalDAV: doc.urls["caldav"], CardDAV: doc.urls["carddav"], JMAP: doc.urls["jmap"]}
	res.dav = dav
	return res
}

// uaacMatch reports whether one of the TXT values is a v=UAAC1 record whose
// d= is digest, and how many v=UAAC1 records there are. The tag syntax is
// DKIM's (RFC 6376 section 3.2): "tag=value" separated by ";", blanks
// around them ignored, unknown tags ignored.
func uaacMatch(records []string, digest []byte) (ok bool, seen int) {
	want := base64.StdEncoding.EncodeToString(digest)
	for _, r := range records {
		tags := map[string]string{}
		for _, part := range strings.Split(r, ";") {
			k, v, found := strings.Cut(part, "=")
			if found {
				tags[strings.TrimSpace(k)] = strings.TrimSpace(v)
			}
		}
		if tags["v"] != "UAAC1" {
			continue
		}
		seen++
		if tags["a"] == "sha256" && tags["d"] == want {
			ok = true
		}
	}
	return ok, seen
}
