package e2e

import (
	"bytes"
	"encoding/xml"
	"errors"
	"io"
	"strings"
	"testing"

	"mailautoconf/internal/address"
	"mailautoconf/internal/config"
	"mailautoconf/internal/server"
	"mailautoconf/mobileconfig"
)

// FuzzConfig: every configuration the validator accepts can be served.
// The state renders without error (so a reload never fails on a file that
// `mailautoconf check` calls OK), and for an address in every configured
// domain the autoconfig, Autodiscover and profile documents are
// well-formed XML that names the domain's own provider.
func FuzzConfig(f *testing.F) {
	f.Add(config.DemoYAML())
	f.Add([]byte(twoProviders))
	f.Add([]byte("providers:\n  - id: a.example\n    display_name: \"A & <B>\"\n    domains: [bücher.example, '*.wild.example']\n    aliases: {alias.example: bücher.example}\n" +
		"    username: \"%EMAILLOCALPART%\"\n    publish_plain: true\n    servers: [{type: imap, host: imap.a.example, port: 143, security: starttls}, {type: pop3, host: pop.a.example}, {type: smtp, host: smtp.a.example, port: 25, security: plain}]\n"))
	f.Add([]byte("dns: {zone: _tcp, service_cname: svc.example.org, publish_unavailable: true}\nproviders:\n  - id: x.example\n    domains: [x.example]\n    activesync_url: https://eas.x.example/Microsoft-Server-ActiveSync\n" +
		"    servers: [{type: smtp, host: smtp.x.example, port: 587, security: starttls, weight: 5}, {type: imap, host: imap.x.example}]\n"))
	f.Add([]byte("providers:\n  - id: d.example\n    domains: [d.example, '*.w.example']\n    aliases: {a.example: d.example}\n" +
		"    servers: [{type: imap, host: imap.d.example}, {type: smtp, host: smtp.d.example}]\n" +
		"    caldav: {url: \"https://dav.d.example/cal/%EMAILADDRESS%/\", username: \"%EMAILLOCALPART%\"}\n" +
		"    carddav: {url: \"https://%EMAILDOMAIN%:8443/card/%EMAILLOCALPART%/x%20y/\", authentication: [http-digest]}\n" +
		"    jmap: {url: \"https://jmap.d.example/\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		cfg, err := config.Parse("fuzz.yaml", data)
		if err != nil {
			return
		}
		if cfg.Signing.Enabled() || len(cfg.TLS.Certificates) > 0 {
			return // names files whose content is only read when rendering
		}
		st, err := server.NewState(cfg)
		if err != nil {
			t.Fatalf("an accepted configuration does not render: %v\n%s", err, data)
		}
		for _, p := range st.Catalog.Providers {
			for _, d := range p.Domains {
				if rest, ok := strings.CutPrefix(d, "*."); ok {
					d = "sub." + rest // a wildcard covers sub-domains only
				}
				if len("user@"+d) > address.MaxAddress {
					continue // a domain too long for any address
				}
				s, err := st.Catalog.ForAddress("user@" + d)
				if err != nil {
					t.Fatalf("configured domain %q: %v\n%s", d, err, data)
				}
				if s.Provider.Index != p.Index {
					t.Fatalf("configured domain %q is served by provider %d, not %d\n%s", d, s.Provider.Index, p.Index, data)
				}
				wellFormed(t, "autoconfig", st.Autoconfig.Append(nil, s), data)
				wellFormed(t, "autodiscover", st.Autodiscover.Settings(s), data)
				prof, err := st.Mobileconfig.Profile(mobileconfig.Request{Settings: s})
				if errors.Is(err, mobileconfig.ErrNoServer) {
					continue // no IMAP or POP3 server, nothing for Apple Mail
				}
				if err != nil {
					t.Fatalf("profile for %s: %v\n%s", d, err, data)
				}
				wellFormed(t, "profile", prof, data)
				prof, err = st.Mobileconfig.Profile(mobileconfig.Request{Settings: s, DAV: true})
				if err != nil {
					t.Fatalf("profile with calendars for %s: %v\n%s", d, err, data)
				}
				wellFormed(t, "profile with calendars", prof, data)
			}
		}
	})
}

func wellFormed(t *testing.T, what string, doc, cfg []byte) {
	t.Helper()
	d := xml.NewDecoder(bytes.NewReader(doc))
	for {
		_, err := d.Token()
		if errors.Is(err, io.EOF) {
			return
		}
		if err != nil {
			t.Fatalf("%s document is not well-formed XML: %v\n%s\n--- configuration ---\n%s", what, err, doc, cfg)
		}
	}
}
