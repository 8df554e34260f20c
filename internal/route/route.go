// Package route is the service's table of HTTP endpoints: every path a
// client may ask for, the methods answered there, the handler that serves
// it and the name of the endpoint it belongs to.
//
// The table is written once, here. The server registers exactly these
// routes and binds each handler name to its function; the access log and
// the metrics name a request's endpoint by the route it was routed to (no
// guessing from the path, so a path nothing serves counts as "other");
// the Autodiscover path canonicaliser and the settings page read their
// paths from here. Adding an endpoint is a line in Table and a handler
// bound in the server.
package route

import "net/http"

// Endpoint names: the values of the metrics' endpoint label. The Grafana
// dashboard, the alerts and the operator documentation (deploy/) use them:
// renaming one breaks those.
const (
	Autoconfig       = "autoconfig"        // Thunderbird and friends
	AutodiscoverPOX  = "autodiscover-pox"  // Outlook, Exchange POX
	AutodiscoverJSON = "autodiscover-json" // Outlook, Autodiscover v2
	Mobileconfig     = "mobileconfig"      // Apple profiles
	Page             = "page"              // the settings page for people
	PACC             = "pacc"              // PACC clients (draft-ietf-mailmaint-pacc)
	// Other is every other request: the operator endpoints and paths
	// that no route serves.
	Other = "other"
)

// Paths, in the spelling routes are registered with.
const (
	AutoconfigPath = "/mail/config-v1.1.xml"
	// AutoconfigWellKnownPath is where Thunderbird looks on the mail
	// domain itself (https://<domain>/.well-known/autoconfig/…).
	AutoconfigWellKnownPath = "/.well-known/autoconfig/mail/config-v1.1.xml"
	// POXPath and JSONPath arrive in any case (Outlook sends
	// "/Autodiscover/Autodiscover.xml"); the server rewrites them to
	// this spelling before routing (autodiscover.CanonicalizePath).
	POXPath  = "/autodiscover/autodiscover.xml"
	JSONPath = "/autodiscover/autodiscover.json"
	// ProfilePath serves the profile; ProfileFilePath is the same under
	// a file name, for links that want one.
	ProfilePath     = "/mobileconfig"
	ProfileFilePath = "/email.mobileconfig"
	// PACCPath is the PACC document, on ua-auto-config.<domain>.
	PACCPath     = "/.well-known/user-agent-configuration.json"
	HomePath     = "/"
	SettingsPath = "/settings"
	QRPath       = "/settings/qr.png"
	StylePath    = "/settings/style.css"
	HealthzPath  = "/healthz"
	ReadyzPath   = "/readyz"
	MetricsPath  = "/metrics"
)

// Handler names: which function serves a route. The server binds one
// function to each name.
const (
	HandleAutoconfig       = "autoconfig"
	HandleAutodiscoverPOX  = "autodiscover-pox"
	HandleAutodiscoverJSON = "autodiscover-json"
	HandleMobileconfig     = "mobileconfig"
	HandlePACC             = "pacc"
	HandlePage             = "page"
	HandleQR               = "qr"
	HandleStyle            = "style"
	HandleHealthz          = "healthz"
	HandleReadyz           = "readyz"
	HandleMetrics          = "metrics"
)

// Route is one registered path.
type Route struct {
	// Path as registered; a trailing "/*" also matches everything below
	// (echo's syntax), and the route is then known by that spelling.
	Path     string
	Methods  []string
	Handler  string // one of the Handle* names
	Endpoint string // the metrics' endpoint label
	// Ops marks operator endpoints (probes and scrapes), which come
	// often from few addresses and are exempt from the per-client rate
	// limit.
	Ops bool
}

// Table returns the routes of the service. The slice is new on every call;
// it is read at start-up.
func Table() []Route {
	getHead := []string{http.MethodGet, http.MethodHead}
	get := []string{http.MethodGet}
	// A POX GET or HEAD comes from administrators testing the URL with a
	// browser: they get a readable error document instead of 404 or 405.
	pox := []string{http.MethodPost, http.MethodGet, http.MethodHead}
	return []Route{
		{Path: AutoconfigPath, Methods: getHead, Handler: HandleAutoconfig, Endpoint: Autoconfig},
		{Path: AutoconfigWellKnownPath, Methods: getHead, Handler: HandleAutoconfig, Endpoint: Autoconfig},
		{Path: ProfilePath, Methods: getHead, Handler: HandleMobileconfig, Endpoint: Mobileconfig},
		{Path: ProfileFilePath, Methods: getHead, Handler: HandleMobileconfig, Endpoint: Mobileconfig},
		{Path: POXPath, Methods: pox, Handler: HandleAutodiscoverPOX, Endpoint: AutodiscoverPOX},
		{Path: JSONPath, Methods: get, Handler: HandleAutodiscoverJSON, Endpoint: AutodiscoverJSON},
		// …/autodiscover.json/v1.0/<address>, the form Outlook uses.
		{Path: JSONPath + "/*", Methods: get, Handler: HandleAutodiscoverJSON, Endpoint: AutodiscoverJSON},
		{Path: PACCPath, Methods: getHead, Handler: HandlePACC, Endpoint: PACC},
		{Path: HomePath, Methods: getHead, Handler: HandlePage, Endpoint: Page},
		{Path: SettingsPath, Methods: getHead, Handler: HandlePage, Endpoint: Page},
		{Path: QRPath, Methods: getHead, Handler: HandleQR, Endpoint: Page},
		{Path: StylePath, Methods: getHead, Handler: HandleStyle, Endpoint: Page},
		{Path: HealthzPath, Methods: get, Handler: HandleHealthz, Endpoint: Other, Ops: true},
		{Path: ReadyzPath, Methods: get, Handler: HandleReadyz, Endpoint: Other, Ops: true},
		{Path: MetricsPath, Methods: get, Handler: HandleMetrics, Endpoint: Other, Ops: true},
	}
}

// Index finds routes by their registered path.
type Index map[string]Route

// NewIndex indexes Table.
func NewIndex() Index {
	x := Index{}
	for _, r := range Table() {
		x[r.Path] = r
	}
	return x
}

// Endpoint returns the endpoint name of the route registered at path (what
// echo's Context.Path reports after routing), Other for none.
func (x Index) Endpoint(path string) string {
	if r, ok := x[path]; ok {
		return r.Endpoint
	}
	return Other
}

// Ops reports whether the route registered at path is an operator
// endpoint.
func (x Index) Ops(path string) bool { return x[path].Ops }

// Endpoints returns every endpoint name, Other included, each once, in
// table order.
func Endpoints() []string {
	var names []string
	seen := map[string]bool{}
	for _, r := range append(Table(), Route{Endpoint: Other}) {
		if !seen[r.Endpoint] {
			seen[r.Endpoint] = true
			names = append(names, r.Endpoint)
		}
	}
	return names
}
