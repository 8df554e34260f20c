package probe

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/beevik/etree"
	"github.com/miekg/dns"

	"mailautoconf/internal/address"
)

// Autodiscover namespaces ([MS-OXDSCLI]).
const (
	nsPOXRequest = "http://schemas.microsoft.com/exchange/autodiscover/outlook/requestschema/2006"
	nsPOXOutlook = "http://schemas.microsoft.com/exchange/autodiscover/outlook/responseschema/2006a"
	poxPath      = "/autodiscover/autodiscover.xml"
	maxPOXHops   = 3
)

type outlookResult struct {
	checks []*Check
	view   View
}

// poxRequest is the body Outlook POSTs.
func poxRequest(addr string) []byte {
	var b strings.Builder
	b.WriteString(`<?xml version="1.0" encoding="utf-8"?>` + "\n")
	b.WriteString(`<Autodiscover xmlns="` + nsPOXRequest + `"><Request><EMailAddress>`)
	// The address passed address.Parse: no markup characters.
	b.WriteString(addr)
	b.WriteString(`</EMailAddress><AcceptableResponseSchema>` + nsPOXOutlook + `</AcceptableResponseSchema></Request></Autodiscover>`)
	return []byte(b.String())
}

func (p *prober) outlook(ctx context.Context, autodiscoverSRV func() *dns.SRV) outlookResult {
	d := p.addr.Domain
	res := outlookResult{view: View{Client: Outlook}}
	var mu sync.Mutex
	record := func(cs ...*Check) {
		mu.Lock()
		res.checks = append(res.checks, cs...)
		mu.Unlock()
	}
	pox := func(u string) *poxDoc {
		checks, doc := p.poxAt(ctx, u)
		record(checks...)
		return doc
	}

	// The direct URLs, the v2 JSON answer and the http redirect are asked
	// at once; the URLs the latter two point to are asked afterwards,
	// unless they are among those already fetched.
	jsonURL := "https://autodiscover." + d + "/autodiscover/autodiscover.json/v1.0/" + url.PathEscape(p.addr.String()) + "?Protocol=AutodiscoverV1"
	direct := []string{"https://" + d + poxPath, "https://autodiscover." + d + poxPath}
	httpURL := "http://autodiscover." + d + poxPath
	docs := map[string]*poxDoc{}
	var jsonTarget, redirTarget string
	var wg sync.WaitGroup
	wg.Go(func() { jsonTarget = p.autodiscoverV2(ctx, jsonURL, record) })
	for _, u := range direct {
		wg.Go(func() {
			doc := pox(u)
			mu.Lock()
			docs[u] = doc
			mu.Unlock()
		})
	}
	wg.Go(func() { redirTarget = p.poxRedirect(ctx, httpURL, record) })
	wg.Wait()
	srvTarget := ""
	if srv := autodiscoverSRV(); srv != nil {
		srvTarget = srvURL(srv)
	}
	// Outlook's order: the v2 answer, the two direct URLs, the http
	// redirect, the SRV record.
	for _, u := range []string{jsonTarget, direct[0], direct[1], redirTarget, srvTarget} {
		if u == "" {
			continue
		}
		doc, done := docs[u]
		if !done {
			doc = pox(u)
			docs[u] = doc
		}
		if doc == nil || (len(doc.incoming) == 0 && len(doc.outgoing) == 0) {
			continue
		}
		res.view.Source = doc.url
		res.view.Offered = append(append([]Endpoint(nil), doc.incoming...), doc.outgoing...)
		if len(doc.incoming) > 0 {
			res.view.Incoming = &doc.incoming[0]
		}
		if len(doc.outgoing) > 0 {
			res.view.Outgoing = &doc.outgoing[0]
		}
		break
	}
	return res
}

// autodiscoverV2 asks the v2 JSON endpoint and returns the POX URL it
// names ("" when there is none Outlook would use).
func (p *prober) autodiscoverV2(ctx context.Context, jsonURL string, record func(...*Check)) string {
	c := p.fetch(ctx, fetchReq{client: Outlook, method: "GET", url: jsonURL})
	record(c)
	if c.Status != StatusOK {
		return ""
	}
	p.checkContentType(Outlook, c, "application/json")
	var ans struct {
		Protocol string `json:"Protocol"`
		URL      string `json:"Url"`
	}
	if err := json.Unmarshal(c.Body, &ans); err != nil || ans.URL == "" {
		c.Status, c.Detail = StatusError, "not an Autodiscover v2 answer (want a JSON object with Url)"
		p.add(SevWarning, CodeMalformed, Outlook, "%s: %s", jsonURL, c.Detail)
		return ""
	}
	c.Detail += ": " + ans.URL
	if !strings.HasPrefix(ans.URL, "https://") {
		p.add(SevWarning, CodeMalformed, Outlook, "%s points to %s: Outlook only follows https URLs", jsonURL, ans.URL)
		return ""
	}
	return ans.URL
}

// poxRedirect POSTs to the plain-HTTP URL and returns the https URL it
// redirects to. Outlook POSTs over plain HTTP only to be redirected (and
// asks the user whether to follow); it never uses settings sent over http.
func (p *prober) poxRedirect(ctx context.Context, httpURL string, record func(...*Check)) string {
	c := p.fetch(ctx, fetchReq{client: Outlook, method: "POST", url: httpURL, body: poxRequest(p.addr.String()), contentType: "text/xml"})
	record(c)
	redirect := c.HTTPStatus >= 300 && c.HTTPStatus <= 399
	loc, err := url.Parse(c.Location)
	if !redirect || err != nil || loc.Scheme != "https" {
		detail := c.Detail
		if redirect {
			detail = "it redirects to " + c.Location
		}
		p.add(SevInfo, CodeRedirect, Outlook, "%s does not redirect to https: %s", httpURL, detail)
		return ""
	}
	return loc.String()
}

// poxAt POSTs the request to u and follows redirectAddr/redirectUrl
// answers a few times, as Outlook does.
func (p *prober) poxAt(ctx context.Context, u string) ([]*Check, *poxDoc) {
	addr := p.addr.String()
	var checks []*Check
	for range maxPOXHops {
		c := p.fetch(ctx, fetchReq{client: Outlook, method: "POST", url: u, body: poxRequest(addr), contentType: "text/xml"})
		checks = append(checks, c)
		if c.Status != StatusOK || c.HTTPStatus != 200 {
			return checks, nil
		}
		p.checkContentType(Outlook, c, "text/xml", "application/xml")
		doc, err := parsePOX(c.Body)
		if err != nil {
			c.Status, c.Detail = StatusError, err.Error()
			p.add(SevWarning, CodeMalformed, Outlook, "%s: %v", u, err)
			return checks, nil
		}
		switch {
		case doc.errorCode != "":
			c.Status, c.Detail = StatusError, "Autodiscover error "+doc.errorCode+": "+doc.errorMessage
			p.add(SevWarning, CodeAnswerError, Outlook, "%s answers error %s: %s", u, doc.errorCode, doc.errorMessage)
			return checks, nil
		case doc.redirectAddr != "":
			a, err := address.Parse(doc.redirectAddr)
			if err != nil {
				c.Status, c.Detail = StatusError, "redirectAddr to an invalid address"
				return checks, nil
			}
			c.Detail += ": redirectAddr " + a.String()
			addr = a.String()
		case doc.redirectURL != "":
			c.Detail += ": redirectUrl " + doc.redirectURL
			if !strings.HasPrefix(doc.redirectURL, "https://") {
				p.add(SevWarning, CodeMalformed, Outlook, "%s redirects to %s: Outlook only follows https", u, doc.redirectURL)
				return checks, nil
			}
			u = doc.redirectURL
		default:
			doc.url = u
			return checks, doc
		}
	}
	return checks, nil
}

// poxDoc is what Outlook reads from a POX answer.
type poxDoc struct {
	url                       string
	incoming, outgoing        []Endpoint
	redirectAddr, redirectURL string
	errorCode, errorMessage   string
}

// parsePOX reads an Outlook POX answer (settings, redirect or error form).
func parsePOX(body []byte) (*poxDoc, error) {
	doc := etree.NewDocument()
	if err := doc.ReadFromBytes(body); err != nil {
		return nil, fmt.Errorf("not well-formed XML: %w", err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "Autodiscover" {
		return nil, fmt.Errorf("the root element is not Autodiscover")
	}
	resp := root.SelectElement("Response")
	if resp == nil {
		return nil, fmt.Errorf("no Response element")
	}
	out := &poxDoc{}
	errEl := resp.SelectElement("Error")
	if errEl == nil {
		if acc := resp.SelectElement("Account"); acc != nil {
			errEl = acc.SelectElement("Error")
		}
	}
	if errEl != nil {
		out.errorCode, out.errorMessage = text(errEl, "ErrorCode"), text(errEl, "Message")
		if out.errorCode == "" {
			out.errorCode = "(none)"
		}
		return out, nil
	}
	if resp.NamespaceURI() != nsPOXOutlook {
		return nil, fmt.Errorf("the Response is in namespace %q, not Outlook's %q", resp.NamespaceURI(), nsPOXOutlook)
	}
	acc := resp.SelectElement("Account")
	if acc == nil {
		return nil, fmt.Errorf("no Account element")
	}
	switch action := text(acc, "Action"); action {
	case "redirectAddr":
		out.redirectAddr = text(acc, "RedirectAddr")
		return out, nil
	case "redirectUrl":
		// Microsoft's pages spell it both ways.
		out.redirectURL = text(acc, "RedirectUrl")
		if out.redirectURL == "" {
			out.redirectURL = text(acc, "RedirectURL")
		}
		return out, nil
	case "settings", "":
	default:
		return nil, fmt.Errorf("unknown Action %q", action)
	}
	for _, pr := range acc.SelectElements("Protocol") {
		var proto string
		switch text(pr, "Type") {
		case "IMAP":
			proto = IMAP
		case "POP3":
			proto = POP3
		case "SMTP":
			proto = SMTP
		default:
			continue
		}
		e := Endpoint{Protocol: proto, Host: strings.ToLower(text(pr, "Server")), Username: text(pr, "LoginName")}
		// SSL defaults to on ([MS-OXDSCLI] 2.2.4.1.1.2.6.44); the
		// Encryption element, where present, says more precisely
		// what Outlook does: SSL is implicit TLS, TLS is STARTTLS.
		switch strings.ToLower(text(pr, "Encryption")) {
		case "ssl":
			e.Security = SecurityTLS
		case "tls":
			e.Security = SecurityStartTLS
		case "none":
			e.Security = SecurityPlain
		case "auto":
			e.Security = SecurityAuto
		default:
			e.Security = SecurityTLS
			if strings.EqualFold(text(pr, "SSL"), "off") {
				e.Security = SecurityPlain
			}
		}
		var ok bool
		if e.Port, ok = portOf(text(pr, "Port")); !ok {
			e.Port = defaultPort(proto, e.Security)
		}
		if e.Host == "" {
			continue
		}
		if proto == SMTP {
			out.outgoing = append(out.outgoing, e)
		} else {
			out.incoming = append(out.incoming, e)
		}
	}
	return out, nil
}

// defaultPort is the port a client assumes when none is given.
func defaultPort(proto, security string) int {
	tls := security == SecurityTLS
	switch {
	case proto == IMAP && tls:
		return 993
	case proto == IMAP:
		return 143
	case proto == POP3 && tls:
		return 995
	case proto == POP3:
		return 110
	case tls:
		return 465
	}
	return 587
}
