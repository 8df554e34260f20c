package pacc_test

import (
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"mailautoconf/internal/config"
	"mailautoconf/internal/testutil"
	"mailautoconf/pacc"
)

func service(t *testing.T, raw string, auth ...string) *pacc.Service {
	t.Helper()
	u, err := config.ParseServiceURL(raw)
	if err != nil {
		t.Fatal(err)
	}
	if len(auth) == 0 {
		auth = []string{config.AuthHTTPBasic}
	}
	return &pacc.Service{URL: u, Authentication: auth}
}

var mailServers = []pacc.Server{
	{Type: "imap", Host: "imap.example.com", Port: 143, Security: "starttls", Authentication: []string{"password-cleartext"}},
	{Type: "imap", Host: "imap.example.com", Port: 993, Security: "tls", Authentication: []string{"password-cleartext"}},
	{Type: "imap", Host: "imap2.example.com", Port: 993, Security: "tls", Authentication: []string{"password-cleartext"}},
	{Type: "pop3", Host: "pop.example.com", Port: 995, Security: "tls", Authentication: []string{"password-cleartext"}},
	{Type: "smtp", Host: "smtp.example.com", Port: 465, Security: "tls", Authentication: []string{"password-cleartext"}},
	{Type: "smtp", Host: "smtp.example.com", Port: 587, Security: "starttls", Authentication: []string{"password-cleartext"}},
}

func TestRender(t *testing.T) {
	cases := []struct {
		name   string
		p      func(t *testing.T) *pacc.Provider
		want   string // the exact body, without the final newline
		expect []string
	}{
		{
			name: "mail calendars contacts jmap",
			p: func(t *testing.T) *pacc.Provider {
				return &pacc.Provider{
					Name: "Example Mail", ShortName: "Example",
					Documentation: "https://www.example.com/help/mail", LogoURL: "https://www.example.com/logo.svg",
					OAuthIssuer: "login.example.com",
					Servers:     mailServers,
					JMAP:        service(t, "https://jmap.example.com/.well-known/jmap", "OAuth2", "http-basic"),
					CalDAV:      service(t, "https://dav.example.com/calendars/%EMAILADDRESS%/"),
					CardDAV:     service(t, "https://dav.example.com:443/addressbooks/"),
				}
			},
			want: `{"protocols":{"jmap":{"url":"https://jmap.example.com/.well-known/jmap"},"imap":{"host":"imap.example.com"},` +
				`"pop3":{"host":"pop.example.com"},"submit":{"host":"smtp.example.com"},"caldav":{"url":"https://dav.example.com/calendars/"},` +
				`"carddav":{"url":"https://dav.example.com/addressbooks/"}},"authentication":{"password":true,"oauth-public":{"issuer":"https://login.example.com"}},` +
				`"info":{"provider":{"name":"Example Mail","shortName":"Example","logo":[{"url":"https://www.example.com/logo.svg","content-type":"image/svg+xml"}]},` +
				`"help":{"documentation":"https://www.example.com/help/mail"}}}`,
			expect: []string{"--expect-imap", "imap.example.com", "--expect-smtp", "smtp.example.com"},
		},
		{
			name: "mail only",
			p: func(t *testing.T) *pacc.Provider {
				return &pacc.Provider{Name: "Example Mail", ShortName: "Example", Documentation: "http://www.example.com/help", Servers: mailServers}
			},
			want: `{"protocols":{"imap":{"host":"imap.example.com"},"pop3":{"host":"pop.example.com"},"submit":{"host":"smtp.example.com"}},` +
				`"authentication":{"password":true},"info":{"provider":{"name":"Example Mail","shortName":"Example"}}}`,
		},
		{
			name: "what the format cannot say is left out",
			p: func(t *testing.T) *pacc.Provider {
				return &pacc.Provider{
					Name: "A provider whose marketing name is much longer than sixty characters allow", ShortName: "Twenty-one characters",
					LogoURL: "https://www.example.com/logo", OAuthIssuer: "https://login.example.com/tenant",
					Servers: []pacc.Server{
						{Type: "imap", Host: "imap.example.com", Port: 1993, Security: "tls", Authentication: []string{"password-cleartext"}},
						{Type: "imap", Host: "imap.example.com", Port: 993, Security: "tls", Authentication: []string{"OAuth2"}},
						{Type: "smtp", Host: "smtp.example.com", Port: 587, Security: "starttls", Authentication: []string{"password-cleartext"}},
					},
					CalDAV:  service(t, "https://dav.example.com:8443/cal/"),
					CardDAV: service(t, "https://dav.%EMAILDOMAIN%/card/"),
				}
			},
			want: `{"protocols":{"imap":{"host":"imap.example.com"}},"authentication":{"password":false,"oauth-public":{"issuer":"https://login.example.com/tenant"}},` +
				`"info":{"provider":{"name":"A provider whose marketing name is much longer than sixty ch"}}}`,
		},
		{
			name: "characters JSON must escape, and HTML ones it need not",
			p: func(t *testing.T) *pacc.Provider {
				return &pacc.Provider{Name: `Müller & "Söhne" <Mail>`, ShortName: "M&S",
					Servers: mailServers[4:5], JMAP: service(t, "https://jmap.example.com/a&b/")}
			},
			want: `{"protocols":{"jmap":{"url":"https://jmap.example.com/a&b/"},"submit":{"host":"smtp.example.com"}},"authentication":{"password":true},` +
				`"info":{"provider":{"name":"Müller & \"Söhne\" <Mail>","shortName":"M&S"}}}`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			p := c.p(t)
			doc, err := pacc.Render(p)
			if err != nil {
				t.Fatal(err)
			}
			if got := string(doc.Body); got != c.want+"\n" {
				t.Errorf("body:\n got %s\nwant %s", got, c.want)
			}
			again, err := pacc.Render(p)
			if err != nil || string(again.Body) != string(doc.Body) || again.Digest != doc.Digest {
				t.Errorf("a second rendering differs: %v", err)
			}
			var v map[string]any
			if err := json.Unmarshal(doc.Body, &v); err != nil {
				t.Errorf("not JSON: %v", err)
			}
			// The validator computes the digest itself from the file and
			// compares it with the TXT value.
			args := append([]string{"--content-type", pacc.ContentType, "--txt", doc.TXT()}, c.expect...)
			testutil.Validate(t, "pacc.py", doc.Body, "user-agent-configuration.json", args...)
		})
	}
}

func TestRenderNothing(t *testing.T) {
	p := &pacc.Provider{Name: "STARTTLS only", Servers: []pacc.Server{
		{Type: "imap", Host: "imap.example.com", Port: 143, Security: "starttls", Authentication: []string{"password-cleartext"}},
		{Type: "smtp", Host: "smtp.example.com", Port: 587, Security: "starttls", Authentication: []string{"password-cleartext"}},
	}}
	if doc, err := pacc.Render(p); !errors.Is(err, pacc.ErrNothing) {
		t.Fatalf("Render = %v, %v; want ErrNothing", doc, err)
	}
}

// TestDigestChangesWithBytes: the validator refuses a TXT record made for
// other bytes, so a stale record cannot pass the test above by accident.
func TestDigestChangesWithBytes(t *testing.T) {
	a, err := pacc.Render(&pacc.Provider{Name: "A", Servers: mailServers})
	if err != nil {
		t.Fatal(err)
	}
	b, err := pacc.Render(&pacc.Provider{Name: "B", Servers: mailServers})
	if err != nil {
		t.Fatal(err)
	}
	if a.Digest == b.Digest || !strings.HasPrefix(a.TXT(), "v=UAAC1; a=sha256; d=") || len(a.Digest) != 44 {
		t.Fatalf("digests %q %q", a.Digest, b.Digest)
	}
	out := validateFails(t, a.Body, b.TXT())
	if !strings.Contains(out, "digest mismatch") {
		t.Errorf("pacc.py did not report the mismatch:\n%s", out)
	}
}

// validateFails runs pacc.py on body with a TXT value and expects it to
// reject the pair; it returns the validator's output.
func validateFails(t *testing.T, body []byte, txt string) string {
	t.Helper()
	f := filepath.Join(t.TempDir(), "user-agent-configuration.json")
	if err := os.WriteFile(f, body, 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command("python3", filepath.Join(testutil.ConformanceDir(t), "pacc.py"), "--txt", txt, f).CombinedOutput()
	if err == nil {
		t.Errorf("pacc.py accepted a TXT record made for other bytes:\n%s", out)
	}
	return string(out)
}
