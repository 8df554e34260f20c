package settings

import (
	"context"
	"sync"

	lru "github.com/hashicorp/golang-lru/v2"
)

// Mailbox is what a hoster's directory says about one mailbox: its login
// name and, where the hoster spreads mailboxes over several servers, the
// host of its incoming (IMAP, POP3) and outgoing (SMTP) servers. Ports,
// security and authentication stay the provider's.
type Mailbox struct {
	// Login is the name the mailbox logs in with; never empty, never
	// holding '%' (the directory checks it like a login in the file).
	Login string
	// Incoming and Outgoing replace the host of the provider's servers
	// of that direction when set.
	Incoming string
	Outgoing string
}

// MailboxLookup answers what a directory says about an address. It returns
// within a bounded time whatever the directory does, and false for an
// address it does not know, could not look up in time, or when it failed:
// the caller then serves the domain's ordinary answer.
type MailboxLookup interface {
	Lookup(ctx context.Context, address string) (Mailbox, bool)
}

// MailboxVariants bounds the per-mailbox providers a catalog keeps with
// their renderings. One is kept per distinct (provider, login, hosts), so
// in practice per mailbox recently asked for; each holds its compiled
// documents (some 10–20 KB), so the bound keeps them to about 20 MB. A
// mailbox pushed out is rendered again when next asked for: this is a
// cache, not a limit on the mailboxes served.
const MailboxVariants = 1024

// Variant is set on a provider built for one mailbox (Catalog.WithMailbox):
// the renderers keep what they compile for it here instead of in their
// per-provider slices, so that it is compiled once per mailbox and
// catalog, not per request.
type Variant struct {
	// Mailbox is what the provider was adjusted to.
	Mailbox Mailbox
	memo    sync.Map
}

// Memo returns what build made for key the first time it was asked (a
// renderer's compiled documents for this mailbox). Concurrent first calls
// may build twice; one result wins.
func (v *Variant) Memo(key any, build func() (any, error)) (any, error) {
	if x, ok := v.memo.Load(key); ok {
		return x, nil
	}
	x, err := build()
	if err != nil {
		return nil, err
	}
	x, _ = v.memo.LoadOrStore(key, x)
	return x, nil
}

// mailboxCache holds a catalog's per-mailbox providers.
type mailboxCache struct {
	once  sync.Once
	cache *lru.Cache[variantKey, *Provider]
}

type variantKey struct {
	provider int
	mb       Mailbox
}

// WithMailbox adjusts the settings of a request to what the catalog's
// MailboxLookup says about its address: the login name, and the servers'
// hosts where the directory gives them, in a provider built for that
// mailbox. The address looked up is the mailbox's (for an alias domain,
// the canonical address). Without a lookup, without an address, or for an
// address the directory does not know, s is returned unchanged, so the
// answer is the domain's, byte for byte.
//
// The lookup may wait for the directory, bounded by its timeout (cached
// answers return at once): call it only where the answer depends on the
// mailbox, never for domain data.
func (c *Catalog) WithMailbox(ctx context.Context, s Settings) Settings {
	if c.Mailboxes == nil || s.Address == nil || s.Provider == nil {
		return s
	}
	mb, ok := c.Mailboxes.Lookup(ctx, s.Canonical().String())
	if !ok {
		return s
	}
	s.Provider = c.variant(s.Provider, mb)
	return s
}

// variant returns base as mailbox mb sees it, from the catalog's cache.
func (c *Catalog) variant(base *Provider, mb Mailbox) *Provider {
	c.variants.once.Do(func() {
		c.variants.cache, _ = lru.New[variantKey, *Provider](MailboxVariants) // only fails for a size < 1
	})
	key := variantKey{base.Index, mb}
	if p, ok := c.variants.cache.Get(key); ok {
		return p
	}
	p := &Provider{}
	*p = *base
	p.Variant = &Variant{Mailbox: mb}
	servers := make([]Server, len(base.Servers))
	for i, s := range base.Servers {
		s.Username = mb.Login
		switch {
		case s.Incoming() && mb.Incoming != "":
			s.Host = mb.Incoming
		case !s.Incoming() && mb.Outgoing != "":
			s.Host = mb.Outgoing
		}
		servers[i] = s
	}
	p.setServers(servers)
	c.variants.cache.Add(key, p)
	return p
}
