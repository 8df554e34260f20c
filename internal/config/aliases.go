package config

// aliases validates and normalises a provider's domain aliases.
func (v *validator) aliases(path string, p *Provider) {}
