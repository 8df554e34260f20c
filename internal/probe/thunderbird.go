package probe

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"sync"

	"github.com/beevik/etree"

	"mailautoconf/internal/address"
)

type thunderbirdResult struct {
	checks []*Check
	view   View
	// dav is what the winning document says of calendars and contacts.
	dav DAVView
}

// autoconfigURLs are Thunderbird's URLs for a domain in the order it
// prefers their answers (it sends them in parallel). The address is added
// as ?emailaddress=, which ISPs use to pick per-user settings.
func autoconfigURLs(a address.Address) []string {
	q := "?emailaddress=" + url.QueryEscape(a.String())
	var out []string
	for _, scheme := range []string{"https", "http"} {
		out = append(out,
			scheme+"://autoconfig."+a.Domain+"/mail/config-v1.1.xml"+q,
			scheme+"://"+a.Domain+"/.well-known/autoconfig/mail/config-v1.1.xml"+q)
	}
	return out
}

func (p *prober) thunderbird(ctx context.Context) thunderbirdResult {
	urls := autoconfigURLs(p.addr)
	res := thunderbirdResult{checks: make([]*Check, len(urls)), view: View{Client: Thunderbird}}
	var wg sync.WaitGroup
	for i, u := range urls {
		wg.Go(func() {
			res.checks[i] = p.fetch(ctx, fetchReq{client: Thunderbird, method: "GET", url: u, follow: true})
		})
	}
	wg.Wait()
	var winner *autoconfigDoc
	for i, c := range res.checks {
		if c.Status != StatusOK {
			continue
		}
		p.checkContentType(Thunderbird, c, "application/xml", "text/xml")
		doc, err := parseAutoconfig(c.Body, p.addr)
		if err != nil {
			c.Status, c.Detail = StatusError, err.Error()
			p.add(SevWarning, CodeMalformed, Thunderbird, "%s: %v", urls[i], err)
			continue
		}
		if winner == nil {
			winner = doc
			res.view.Source = urls[i]
		}
	}
	if winner == nil {
		return res
	}
	if strings.HasPrefix(res.view.Source, "http:") {
		p.add(SevWarning, CodeHTTPOnly, Thunderbird, "the configuration is only found over plain HTTP (%s): anyone on the path can change it", res.view.Source)
	}
	res.dav = winner.dav
	res.view.Offered = append(append([]Endpoint(nil), winner.incoming...), winner.outgoing...)
	if len(winner.incoming) > 0 {
		res.view.Incoming = &winner.incoming[0]
	}
	if len(winner.outgoing) > 0 {
		res.view.Outgoing = &winner.outgoing[0]
	}
	// Thunderbird for Android (K-9) reads the same document with the
	// strictest parser in the field.
	if strings.Contains(winner.providerID, "%") {
		p.add(SevError, CodeStrict, Thunderbird, "emailProvider id %q contains a placeholder: Thunderbird for Android rejects the document", winner.providerID)
	}
	for _, s := range winner.badSockets {
		p.add(SevError, CodeStrict, Thunderbird, "socketType %q: Thunderbird for Android accepts only SSL and STARTTLS and rejects the whole document", s)
	}
	return res
}

// autoconfigDoc is what Thunderbird reads from a clientConfig document.
type autoconfigDoc struct {
	providerID         string
	incoming, outgoing []Endpoint
	badSockets         []string
	// dav holds the calendar and addressBook elements (children of
	// clientConfig), which Thunderbird itself does not read.
	dav DAVView
}

// socketTypes maps Thunderbird's socketType to a security.
var socketTypes = map[string]string{"SSL": SecurityTLS, "STARTTLS": SecurityStartTLS, "plain": SecurityPlain}

// parseAutoconfig reads a clientConfig document, substituting the
// placeholders the way Thunderbird does.
func parseAutoconfig(body []byte, a address.Address) (*autoconfigDoc, error) {
	doc := etree.NewDocument()
	doc.ReadSettings.Permissive = false
	if err := doc.ReadFromBytes(body); err != nil {
		return nil, fmt.Errorf("not well-formed XML: %w", err)
	}
	root := doc.Root()
	if root == nil || root.Tag != "clientConfig" {
		return nil, fmt.Errorf("the root element is not clientConfig")
	}
	prov := root.SelectElement("emailProvider")
	if prov == nil {
		return nil, fmt.Errorf("no emailProvider element")
	}
	out := &autoconfigDoc{providerID: prov.SelectAttrValue("id", "")}
	subst := strings.NewReplacer("%EMAILADDRESS%", a.String(), "%EMAILLOCALPART%", a.Local, "%EMAILDOMAIN%", a.Domain)
	read := func(el *etree.Element, typ string) (Endpoint, bool) {
		e := Endpoint{Protocol: typ, Host: strings.ToLower(subst.Replace(text(el, "hostname"))), Username: subst.Replace(text(el, "username"))}
		e.Port, _ = portOf(text(el, "port"))
		var first string
		for i, s := range el.SelectElements("socketType") {
			v := strings.TrimSpace(s.Text())
			if v != "SSL" && v != "STARTTLS" {
				out.badSockets = append(out.badSockets, v)
			}
			if i == 0 {
				first = v
			}
		}
		e.Security = socketTypes[first]
		return e, e.Host != "" && e.Port != 0 && e.Security != ""
	}
	for _, el := range prov.SelectElements("incomingServer") {
		typ := el.SelectAttrValue("type", "")
		if typ != IMAP && typ != POP3 {
			continue // exchange, ews, …: not mail protocols the probe compares
		}
		if e, ok := read(el, typ); ok {
			out.incoming = append(out.incoming, e)
		}
	}
	out.dav.Source = davSourceAutoconfig
	for _, d := range []struct {
		tag, typ string
		dst      *string
	}{{"calendar", "caldav", &out.dav.CalDAV}, {"addressBook", "carddav", &out.dav.CardDAV}} {
		for _, el := range root.SelectElements(d.tag) {
			if el.SelectAttrValue("type", "") != d.typ {
				continue
			}
			// The deployed form says serverURL, the mailmaint draft url.
			u := text(el, "serverURL")
			if u == "" {
				u = text(el, "url")
			}
			if u != "" {
				*d.dst = davSubst(u, a)
				break
			}
		}
	}
	for _, el := range prov.SelectElements("outgoingServer") {
		if el.SelectAttrValue("type", "") != SMTP {
			continue
		}
		if e, ok := read(el, SMTP); ok {
			out.outgoing = append(out.outgoing, e)
		}
	}
	return out, nil
}

// text is the trimmed text of the first child element named tag.
func text(el *etree.Element, tag string) string {
	if c := el.SelectElement(tag); c != nil {
		return strings.TrimSpace(c.Text())
	}
	return ""
}
