// Package probe looks at a mail domain the way real clients do and reports
// what each of them would configure, where the sources disagree and what
// would fail.
//
// It is deliberately an independent client: it speaks DNS, HTTP(S) and the
// mail protocols itself and parses what it receives (etree for XML,
// howett.net/plist for Apple profiles, miekg/dns for DNS). It never asks the
// renderers of this project what they meant, so a bug there shows up here.
//
// What each client does, and therefore what is probed:
//   - Thunderbird (desktop) asks, in this order and takes the first answer
//     that parses: https://autoconfig.<domain>/mail/config-v1.1.xml,
//     https://<domain>/.well-known/autoconfig/mail/config-v1.1.xml, then the
//     same two over plain http (with ?emailaddress=<address>). It does not
//     read SRV records. Mozilla's ISPDB and the MX-based guess come after
//     these and are out of scope here. Thunderbird for Android uses the same
//     document with a much stricter parser: a placeholder in emailProvider's
//     id or a "plain" socketType anywhere makes it reject the document.
//   - Outlook first asks the Autodiscover v2 JSON endpoint on
//     autodiscover.<domain> for the POX URL, then POSTs POX to
//     https://<domain>/… and https://autodiscover.<domain>/…, then tries
//     http://autodiscover.<domain>/… only to be redirected to https, and at
//     last the target of the _autodiscover._tcp SRV record. Of the answer it
//     uses the first IMAP or POP3 protocol and the first SMTP one; the
//     Encryption element, where present, overrides SSL.
//   - Apple Mail discovers nothing: people open a link that downloads a
//     .mobileconfig profile. The probe fetches it from
//     https://autoconfig.<domain>/mobileconfig (or Options.ProfileURL).
//   - SRV-aware clients (FairEmail, Evolution, KMail, K-9 as a fallback) read
//     the RFC 6186/8314 records and take the lowest priority value across
//     IMAP and POP3, and across submission and submissions.
//   - PACC clients (draft-ietf-mailmaint-pacc; none ships yet) fetch
//     https://ua-auto-config.<domain>/.well-known/user-agent-configuration.json
//     and use it only when a _ua-auto-config TXT record carries the SHA-256
//     of its exact bytes. They are reported when a domain publishes one.
//   - Calendars and contacts: the autoconfig document's calendar and
//     addressBook elements, the profile's CalDAV and CardDAV payloads, the
//     RFC 6764 SRV and TXT records and the PACC document are read and
//     compared; Thunderbird itself finds address books through the DNS
//     records.
package probe

import (
	"context"
	"crypto/x509"
	"fmt"
	"sync"
	"time"

	"github.com/miekg/dns"

	"mailautoconf/internal/address"
)

// Client names as reported.
const (
	Thunderbird = "Thunderbird"
	Outlook     = "Outlook"
	AppleMail   = "Apple Mail"
	SRVClients  = "SRV clients"
)

// Clients is the order in which clients are reported.
var Clients = []string{Thunderbird, Outlook, AppleMail, SRVClients}

// Connection security of an endpoint.
const (
	SecurityTLS      = "tls"      // implicit TLS from the first byte
	SecurityStartTLS = "starttls" // plaintext upgraded with STARTTLS/STLS
	SecurityPlain    = "plain"    // no encryption at all
	SecurityAuto     = "auto"     // Outlook's Encryption "Auto": negotiated
)

// Mail protocols.
const (
	IMAP = "imap"
	POP3 = "pop3"
	SMTP = "smtp"
)

// DefaultTimeout bounds every single query, fetch and connection.
const DefaultTimeout = 10 * time.Second

// Options configure a probe. The same struct serves the command line and
// the tests, which point the probe at loopback instead of the real hosts.
type Options struct {
	// Resolver is the DNS server (host or host:port, port 53 by default)
	// every name is looked up with: SRV records and the addresses of the
	// HTTP and mail hosts. Empty: the first nameserver of
	// /etc/resolv.conf.
	Resolver string
	// ConnectTo sends connections for "host:port" or, for any host, ":port"
	// to another "host:port" (like curl's --connect-to). TLS still verifies
	// the certificate for the original host name.
	ConnectTo map[string]string
	// RootCAs verify HTTPS and mail server certificates; nil means the
	// system's roots.
	RootCAs *x509.CertPool
	// Insecure reads answers even when the certificate does not verify.
	// The certificate problem is still reported.
	Insecure bool
	// Connect also opens every advertised mail server port and checks the
	// TLS handshake or the STARTTLS capability.
	Connect bool
	// Timeout bounds each query, fetch and connection (DefaultTimeout).
	Timeout time.Duration
	// ProfileURL is where the Apple profile is fetched; the address is
	// added as ?emailaddress=. Default
	// https://autoconfig.<domain>/mobileconfig.
	ProfileURL string
}

// Severity of a finding.
type Severity string

// Severities. Only errors make a probe fail.
const (
	SevError   Severity = "error"
	SevWarning Severity = "warning"
	SevInfo    Severity = "info"
)

// Finding codes: stable names for scripts (the --json output) and tests.
const (
	CodeNoConfig     = "no-config"     // a client gets no configuration at all
	CodeNoIncoming   = "no-incoming"   // a configuration without an incoming server
	CodeNoOutgoing   = "no-outgoing"   // a configuration without an outgoing server
	CodePlaintext    = "plaintext"     // a client would use an unencrypted connection
	CodePlainOffered = "plain-offered" // a source offers a plaintext server besides TLS ones
	CodeDisagree     = "disagreement"  // clients would configure different servers
	CodeCertificate  = "certificate"   // a certificate that fails verification
	CodeContentType  = "content-type"  // an answer with the wrong Content-Type
	CodeMalformed    = "malformed"     // an answer that does not parse
	CodeStrict       = "strict-reject" // Thunderbird for Android would reject the document
	CodeHTTPOnly     = "http-only"     // a configuration only reachable over plain HTTP
	CodeNoAddress    = "no-address"    // autoconfig./autodiscover. do not resolve
	CodeRedirect     = "no-redirect"   // http://autodiscover.<domain> does not redirect to https
	CodeConnect      = "connect"       // a mail server that cannot be reached or does not do TLS
	CodeAnswerError  = "answer-error"  // an Autodiscover error answer
)

// Endpoint is one mail server as a client would configure it.
type Endpoint struct {
	Protocol string `json:"protocol"`
	Host     string `json:"host"`
	Port     int    `json:"port"`
	Security string `json:"security"`
	Username string `json:"username,omitempty"`
}

func (e Endpoint) String() string {
	return fmt.Sprintf("%s %s:%d %s", e.Protocol, e.Host, e.Port, e.Security)
}

// key identifies the server a client would talk to, ignoring the login.
func (e Endpoint) key() string {
	return fmt.Sprintf("%s|%s|%d|%s", e.Protocol, e.Host, e.Port, e.Security)
}

// View is what one client would configure, and from which answer.
type View struct {
	Client   string     `json:"client"`
	Source   string     `json:"source,omitempty"`
	Incoming *Endpoint  `json:"incoming,omitempty"`
	Outgoing *Endpoint  `json:"outgoing,omitempty"`
	Offered  []Endpoint `json:"offered,omitempty"`
}

// Certificate describes the certificate a server presented.
type Certificate struct {
	Subject string `json:"subject"`
	Issuer  string `json:"issuer"`
	// IssuerName is the issuer's common name (its organisation without
	// one), short enough for the text output: "R11", "Pebble Intermediate-A".
	IssuerName string    `json:"issuer_name,omitempty"`
	DNSNames   []string  `json:"dns_names,omitempty"`
	NotAfter   time.Time `json:"not_after"`
	Valid      bool      `json:"valid"`
	Error      string    `json:"error,omitempty"`
}

// Check statuses.
const (
	StatusOK      = "ok"
	StatusMissing = "missing" // no such record or document (not an error by itself)
	StatusError   = "error"
)

// Check is one query: a DNS lookup or an HTTP request.
type Check struct {
	Kind        string       `json:"kind"` // "dns" or "http"
	Target      string       `json:"target"`
	Status      string       `json:"status"`
	Detail      string       `json:"detail,omitempty"`
	HTTPStatus  int          `json:"http_status,omitempty"`
	ContentType string       `json:"content_type,omitempty"`
	Location    string       `json:"location,omitempty"`
	Certificate *Certificate `json:"certificate,omitempty"`
	// Body is the answer as received, for tests and validators.
	Body []byte `json:"-"`
}

// Connection is the result of opening one advertised mail server port.
type Connection struct {
	Endpoint    Endpoint     `json:"endpoint"`
	OK          bool         `json:"ok"`
	Detail      string       `json:"detail"`
	TLSVersion  string       `json:"tls_version,omitempty"`
	Certificate *Certificate `json:"certificate,omitempty"`
}

// Finding is one problem or remark.
type Finding struct {
	Severity Severity `json:"severity"`
	Code     string   `json:"code"`
	Client   string   `json:"client,omitempty"`
	Message  string   `json:"message"`
}

// Report is the result of a probe.
type Report struct {
	Address     string       `json:"address"`
	Domain      string       `json:"domain"`
	Checks      []*Check     `json:"checks"`
	Clients     []View       `json:"clients"`
	Connections []Connection `json:"connections,omitempty"`
	// DAV lists, per source that says anything, where clients are sent
	// for calendars, contacts and JMAP.
	DAV      []DAVView `json:"dav,omitempty"`
	Findings []Finding `json:"findings"`
	// OK is true when every client would get a working TLS
	// configuration: no finding of severity error.
	OK bool `json:"ok"`
}

// Has reports whether the report has a finding with this code (and, when
// client is not empty, for this client).
func (r *Report) Has(code, client string) bool {
	for _, f := range r.Findings {
		if f.Code == code && (client == "" || f.Client == client) {
			return true
		}
	}
	return false
}

// View returns the view of one client.
func (r *Report) View(client string) View {
	for _, v := range r.Clients {
		if v.Client == client {
			return v
		}
	}
	return View{Client: client}
}

// prober holds one probe's state. Checks are appended under mu because
// the sources are queried in parallel.
type prober struct {
	opts Options
	addr address.Address
	res  *resolver
	dial *dialer

	mu       sync.Mutex
	findings []Finding
}

func (p *prober) add(sev Severity, code, client, format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.findings = append(p.findings, Finding{Severity: sev, Code: code, Client: client, Message: fmt.Sprintf(format, args...)})
}

// Run probes the domain of raw, an e-mail address. An invalid address or
// an unusable option is an error; everything found about the domain is in
// the report.
func Run(ctx context.Context, raw string, opts Options) (*Report, error) {
	a, err := address.Parse(raw)
	if err != nil {
		return nil, fmt.Errorf("probe %q: %w", raw, err)
	}
	if opts.Timeout <= 0 {
		opts.Timeout = DefaultTimeout
	}
	res, err := newResolver(opts.Resolver, opts.Timeout)
	if err != nil {
		return nil, fmt.Errorf("probe: %w", err)
	}
	for from, to := range opts.ConnectTo {
		if err := checkConnectTo(from, to); err != nil {
			return nil, fmt.Errorf("probe: %w", err)
		}
	}
	p := &prober{opts: opts, addr: a, res: res}
	p.dial = &dialer{res: res, connectTo: opts.ConnectTo, timeout: opts.Timeout}

	rep := &Report{Address: a.String(), Domain: a.Domain}
	// Every source is independent: ask them all at once, each into its own
	// slot, so a slow or dead host costs one timeout, not one per query.
	var (
		dnsRes  dnsResult
		tb      thunderbirdResult
		ol      outlookResult
		apple   appleResult
		pacc    paccResult
		davDNS  davDNSResult
		wg      sync.WaitGroup
		srvDone = make(chan struct{})
	)
	wg.Go(func() { dnsRes = p.queryDNS(ctx); close(srvDone) })
	wg.Go(func() { tb = p.thunderbird(ctx) })
	// Outlook needs the _autodiscover._tcp record only for its last
	// resort, so it starts at once and waits for DNS only then.
	wg.Go(func() {
		ol = p.outlook(ctx, func() *dns.SRV { <-srvDone; return dnsRes.autodiscoverSRV })
	})
	wg.Go(func() { apple = p.apple(ctx) })
	wg.Go(func() { pacc = p.pacc(ctx) })
	wg.Go(func() { davDNS = p.queryDAV(ctx) })
	wg.Wait()

	rep.Checks = append(rep.Checks, dnsRes.checks...)
	rep.Checks = append(rep.Checks, tb.checks...)
	rep.Checks = append(rep.Checks, ol.checks...)
	rep.Checks = append(rep.Checks, apple.checks...)
	rep.Checks = append(rep.Checks, davDNS.checks...)
	rep.Checks = append(rep.Checks, pacc.checks...)
	rep.Clients = []View{tb.view, ol.view, apple.view, dnsRes.view}
	if pacc.view != nil {
		rep.Clients = append(rep.Clients, *pacc.view)
	}
	for _, v := range []*DAVView{&tb.dav, &apple.dav, &davDNS.view, pacc.dav} {
		if v != nil && !v.empty() {
			rep.DAV = append(rep.DAV, *v)
		}
	}
	p.compareDAV(rep.DAV)

	if opts.Connect {
		rep.Connections = p.connectAll(ctx, rep.Clients)
	}
	p.compare(rep)
	rep.Findings = sortFindings(p.findings)
	rep.OK = true
	for _, f := range rep.Findings {
		if f.Severity == SevError {
			rep.OK = false
		}
	}
	return rep, nil
}
