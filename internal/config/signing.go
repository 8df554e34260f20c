package config

import "os"

// Signing names the certificate, key and chain that sign Apple profiles.
//
// iOS and macOS show a signed profile as "Verified" when the signer chains
// to a trusted root, and as "Not Verified" (with a red warning) otherwise, so
// a provider that publishes profiles wants them signed. Any certificate a
// public CA issued for one of the provider's host names works; the service's
// own TLS certificate is the usual choice.
//
// Only the file names are checked here (both given, files readable). Parsing,
// the key/certificate match and the validity period are checked when the
// service builds its state from the configuration, so that a reload re-reads
// renewed files.
type Signing struct {
	// Certificate is a PEM file with the signer certificate first,
	// optionally followed by its intermediates (a "fullchain" file).
	Certificate string `yaml:"certificate"`
	// Key is a PEM file with the certificate's private key (PKCS#8,
	// PKCS#1 or SEC 1, unencrypted).
	Key string `yaml:"key"`
	// Chain is an optional PEM file with intermediate certificates, for
	// CAs that hand them out separately.
	Chain string `yaml:"chain"`
	// ACMEName signs with the certificate obtained for this name through
	// tls.acme (see acme.go), renewed with it; instead of the files.
	ACMEName string `yaml:"acme_name"`
}

// Enabled reports whether profiles are to be signed.
func (s Signing) Enabled() bool { return s.Certificate != "" }

// SigningFiles returns the signing section with its file names resolved
// (Config.Path).
func (c *Config) SigningFiles() Signing {
	s := c.Signing
	for _, f := range []*string{&s.Certificate, &s.Key, &s.Chain} {
		if *f != "" {
			*f = c.Path(*f)
		}
	}
	return s
}

// signing validates the signing section: both files named, and every file
// readable.
func (v *validator) signing(c *Config) {
	s := c.SigningFiles()
	if s.Certificate == "" && s.Key == "" && s.Chain == "" {
		return
	}
	if s.Certificate == "" {
		v.errorf("signing.certificate", "required when signing.key or signing.chain is set")
	}
	if s.Key == "" {
		v.errorf("signing.key", "required when signing.certificate is set")
	}
	for _, f := range []struct{ path, name string }{
		{"signing.certificate", s.Certificate}, {"signing.key", s.Key}, {"signing.chain", s.Chain},
	} {
		if f.name == "" {
			continue
		}
		fh, err := os.Open(f.name)
		if err != nil {
			v.errorf(f.path, "cannot be read: %v", err)
			continue
		}
		st, err := fh.Stat()
		fh.Close()
		if err == nil && st.IsDir() {
			v.errorf(f.path, "%s is a directory, not a PEM file", f.name)
		}
	}
}
