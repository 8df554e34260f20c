package config

// DNS configures the built-in authoritative DNS server and the zone export.
type DNS struct{}

// dns validates and defaults the DNS section.
func (v *validator) dns(c *Config) {}
