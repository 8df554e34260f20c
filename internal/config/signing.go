package config

// Signing names the certificate, key and chain that sign Apple profiles.
type Signing struct{}

// signing validates the signing section.
func (v *validator) signing(c *Config) {}
