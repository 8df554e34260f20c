package config

import (
	"fmt"
	"slices"
)

// Changes is what a new configuration removes from and adds to the one in
// force, as an operator reads it in the log after a reload: a domain or a
// server that vanished is worth a warning, whether it was meant or the
// result of a file saved half-way.
type Changes struct {
	DomainsRemoved, DomainsAdded []string
	// Servers are named "provider: type host:port security".
	ServersRemoved, ServersAdded []string
}

// Removed reports whether anything was removed.
func (c Changes) Removed() bool { return len(c.DomainsRemoved)+len(c.ServersRemoved) > 0 }

// Diff compares the served domains (alias domains included) and the mail
// servers of two configurations. Each list is sorted.
func Diff(old, cur *Config) Changes {
	od, oldServers := inventory(old)
	nd, ns := inventory(cur)
	return Changes{
		DomainsRemoved: missing(od, nd), DomainsAdded: missing(nd, od),
		ServersRemoved: missing(oldServers, ns), ServersAdded: missing(ns, oldServers),
	}
}

func inventory(c *Config) (domains, servers map[string]bool) {
	domains, servers = map[string]bool{}, map[string]bool{}
	if c == nil {
		return
	}
	for _, p := range c.Providers {
		for _, d := range p.Domains {
			domains[d] = true
		}
		for a := range p.Aliases {
			domains[a] = true
		}
		for _, s := range p.Servers {
			// Named with the defaults in place, as they are served.
			security := s.Security
			if security == "" {
				security = SecurityTLS
			}
			port := s.Port
			if port == 0 {
				port = DefaultPort(s.Type, security)
			}
			name := fmt.Sprintf("%s: %s %s:%d %s", p.ID, s.Type, s.Host, port, security)
			servers[name] = true
		}
	}
	return domains, servers
}

// missing returns the keys of a that b lacks, sorted.
func missing(a, b map[string]bool) []string {
	var out []string
	for k := range a {
		if !b[k] {
			out = append(out, k)
		}
	}
	slices.Sort(out)
	return out
}
