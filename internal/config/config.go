// Package config reads and validates the YAML configuration: which providers
// exist, which domains each one serves and which mail servers it offers.
//
// Validation errors name the file, the line and the field, in the form
// "config.yaml:14: providers[0].servers[2].port: 99999 is not a port", so that
// an operator can jump straight to the mistake.
package config

import (
	_ "embed"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Config is the whole configuration file.
type Config struct {
	Listen Listen `yaml:"listen"`
	// DNS configures the authoritative DNS server and the zone export
	// (see dns.go).
	DNS DNS `yaml:"dns"`
	// Signing names the certificate that signs Apple profiles
	// (see signing.go).
	Signing Signing `yaml:"signing"`
	// TrustedProxies lists the addresses or CIDR ranges of reverse proxies
	// whose X-Forwarded-* headers are believed.
	TrustedProxies []string `yaml:"trusted_proxies"`
	// TLS, Limits, Log and Metrics are operational settings (see ops.go).
	TLS       TLS        `yaml:"tls"`
	Limits    Limits     `yaml:"limits"`
	Log       Log        `yaml:"log"`
	Metrics   Metrics    `yaml:"metrics"`
	Providers []Provider `yaml:"providers"`

	// dir is the directory of the file the configuration was read from,
	// for Path; empty for a configuration not read from a file.
	dir string
}

// Path resolves a file name given in the configuration: a relative name is
// relative to the configuration file's directory, so that the service finds
// its files wherever it is started from.
func (c *Config) Path(name string) string {
	if c.dir == "" || filepath.IsAbs(name) {
		return name
	}
	return filepath.Join(c.dir, name)
}

// Listen holds the addresses the service listens on. A command-line flag
// overrides the corresponding entry.
type Listen struct {
	HTTP    string `yaml:"http"`
	HTTPS   string `yaml:"https"`
	DNS     string `yaml:"dns"`
	Metrics string `yaml:"metrics"`
}

// Provider is one mail service: a set of servers and the domains that use them.
type Provider struct {
	// ID is a real host name that identifies the provider, e.g.
	// "mail.example.com". Thunderbird for Android rejects a placeholder here.
	ID          string   `yaml:"id"`
	DisplayName string   `yaml:"display_name"`
	ShortName   string   `yaml:"short_name"`
	Domains     []string `yaml:"domains"`
	// Documentation is a page for people with the manual settings.
	Documentation string `yaml:"documentation_url"`
	// LogoURL is an image (http or https) shown on the settings page for
	// people, next to DisplayName.
	LogoURL string `yaml:"logo_url"`
	// Username is the default login-name template for all servers.
	Username string `yaml:"username"`
	// Authentication is the default authentication for all servers.
	Authentication StringList `yaml:"authentication"`
	// PublishPlain tells clients about servers with security "plain" too,
	// in every protocol: autoconfig, Autodiscover, Apple profiles, DNS SRV
	// records and the settings page (Provider.Publishes is the rule). Off
	// by default: Thunderbird for Android rejects a whole autoconfig
	// document that mentions socketType "plain".
	PublishPlain bool    `yaml:"publish_plain"`
	OAuth2       *OAuth2 `yaml:"oauth2"`
	// Aliases maps alias domains to one of the provider's domains: mail
	// to alice@alias is alice@canonical's mailbox (see aliases.go).
	Aliases map[string]string `yaml:"aliases"`
	// ActiveSyncURL is the provider's Exchange ActiveSync endpoint, when it
	// has one; Autodiscover publishes it for the mobilesync schema.
	ActiveSyncURL string   `yaml:"activesync_url"`
	Servers       []Server `yaml:"servers"`
	// CalDAV, CardDAV and JMAP are the provider's calendar, contacts and
	// JMAP services, when it has them (see dav.go).
	CalDAV  *Service `yaml:"caldav"`
	CardDAV *Service `yaml:"carddav"`
	JMAP    *Service `yaml:"jmap"`

	// DNS holds what the provider changes of the dns section.
	DNS ProviderDNS `yaml:"dns"`
}

// ProviderDNS is the per-provider part of the dns section.
type ProviderDNS struct {
	// AutodiscoverTarget overrides dns.autodiscover_target for this
	// provider's domains (Config.AutodiscoverTarget).
	AutodiscoverTarget string `yaml:"autodiscover_target"`
}

// OAuth2 describes the provider's OAuth2 endpoints, needed when a server
// offers OAuth2 authentication.
type OAuth2 struct {
	Issuer   string `yaml:"issuer"`
	Scope    string `yaml:"scope"`
	AuthURL  string `yaml:"auth_url"`
	TokenURL string `yaml:"token_url"`
}

// Server is one mail server endpoint.
type Server struct {
	Type           string     `yaml:"type"`
	Host           string     `yaml:"host"`
	Port           int        `yaml:"port"`
	Security       string     `yaml:"security"`
	Authentication StringList `yaml:"authentication"`
	Username       string     `yaml:"username"`
	// Weight is the SRV weight (RFC 2782): servers of one service with a
	// weight share a priority and split the load by weight; without one
	// they are tried in configured order.
	Weight int `yaml:"weight"`
}

// StringList accepts either a single string or a list of strings.
type StringList []string

// UnmarshalYAML implements yaml.Unmarshaler.
func (l *StringList) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		*l = StringList{n.Value}
		return nil
	}
	var s []string
	if err := n.Decode(&s); err != nil {
		return err
	}
	*l = s
	return nil
}

//go:embed demo.yaml
var demoYAML []byte

// Demo returns the built-in demonstration configuration, used when serve runs
// without --config.
func Demo() (*Config, error) {
	return Parse("demo.yaml", demoYAML)
}

// DemoYAML returns the text of the demonstration configuration.
func DemoYAML() []byte { return append([]byte(nil), demoYAML...) }

// Load reads and validates a configuration file.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading configuration: %w", err)
	}
	return Parse(path, data)
}

// Errors is a list of validation problems, one per line.
type Errors []string

func (e Errors) Error() string { return strings.Join(e, "\n") }

// Parse reads and validates a configuration. name is used in messages and
// to resolve relative file names (Config.Path). The result holds what the
// file says: defaults and derived values are applied by whoever builds the
// service's state from it (internal/settings, internal/server,
// internal/dnsserver), through the functions of this package that say what
// a key means.
func Parse(name string, data []byte) (*Config, error) {
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err != nil {
		return nil, Errors{yamlError(name, err)}
	}
	if root.Kind == 0 || len(root.Content) == 0 {
		return nil, Errors{name + ":1: the file is empty"}
	}
	var c Config
	dec := yaml.NewDecoder(strings.NewReader(string(data)))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		var te *yaml.TypeError
		if errors.As(err, &te) {
			errs := make(Errors, 0, len(te.Errors))
			for _, e := range te.Errors {
				errs = append(errs, name+":"+strings.TrimPrefix(e, "line "))
			}
			return nil, errs
		}
		return nil, Errors{yamlError(name, err)}
	}
	c.dir = filepath.Dir(name)
	v := validator{file: name, lines: map[string]int{}}
	v.index("", root.Content[0])
	v.config(&c)
	v.allText("", reflect.ValueOf(c))
	if len(v.errs) > 0 {
		return nil, v.errs
	}
	return &c, nil
}

// yamlError turns "yaml: line 3: did not find expected key" into
// "file:3: did not find expected key".
func yamlError(name string, err error) string {
	msg := strings.TrimPrefix(err.Error(), "yaml: ")
	if rest, ok := strings.CutPrefix(msg, "line "); ok {
		if i := strings.IndexByte(rest, ':'); i > 0 {
			return name + ":" + rest[:i] + ":" + rest[i+1:]
		}
	}
	return name + ": " + msg
}
