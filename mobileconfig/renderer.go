package mobileconfig

import (
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/google/uuid"
	lru "github.com/hashicorp/golang-lru/v2"
	"howett.net/plist"

	"mailautoconf/internal/settings"
	"mailautoconf/internal/tmpl"
)

// SignedCacheSize bounds the number of signed profiles kept per
// configuration. A signature costs far more than rendering (see the
// benchmarks), and people tend to download a profile more than once.
const SignedCacheSize = 2048

// Renderer holds the compiled profiles of every provider of a catalog and
// the signer of the configuration, if any.
type Renderer struct {
	// docs[provider][protocol][withName]; nil when the provider has no
	// server of that protocol.
	docs [][len(protocols)][2]*tmpl.Template
	// davDocs are the same with calendars and contacts (dav.go); nil
	// for providers without CalDAV and CardDAV.
	davDocs [][len(protocols)][2]*tmpl.Template
	// first is the index into protocols of each provider's first
	// published incoming server type, the default protocol.
	first  []int
	ns     []uuid.UUID // per provider, the namespace of its UUIDs
	signer *Signer
	// source, when set, gives the signer per request instead of signer:
	// a managed certificate that is renewed while the renderer lives, or
	// not obtained yet (nil: the profile goes out unsigned).
	source func() *Signer
	signed *lru.Cache[[sha256.Size]byte, signedProfile]
}

// signedProfile is a cached signature and the signer that made it: after a
// renewal the same profile is signed anew.
type signedProfile struct {
	by  *Signer
	der []byte
}

// NewRenderer renders every provider once and loads the signing
// certificate the catalog's configuration names, if any.
func NewRenderer(cat *settings.Catalog) (*Renderer, error) {
	signer, err := LoadSigner(cat.Config.SigningFiles())
	if err != nil {
		return nil, err
	}
	return newRenderer(cat, signer)
}

func newRenderer(cat *settings.Catalog, signer *Signer) (*Renderer, error) {
	n := len(cat.Providers)
	r := &Renderer{
		docs:    make([][len(protocols)][2]*tmpl.Template, n),
		davDocs: make([][len(protocols)][2]*tmpl.Template, n),
		first:   make([]int, n),
		ns:      make([]uuid.UUID, n),
		signer:  signer,
	}
	if signer != nil {
		if err := r.newCache(); err != nil {
			return nil, err
		}
	}
	for i, p := range cat.Providers {
		r.ns[i] = uuid.NewSHA1(uuid.NameSpaceDNS, []byte(p.ID))
		r.first[i] = -1
		pr, err := compileProvider(p)
		if err != nil {
			return nil, err
		}
		r.docs[i], r.davDocs[i] = pr.docs, pr.dav
		for _, s := range p.Incoming() {
			for pi, proto := range protocols {
				if s.Type == proto && r.docs[i][pi][0] != nil {
					r.first[i] = pi
				}
			}
			if r.first[i] >= 0 {
				break
			}
		}
	}
	return r, nil
}

// profiles are the compiled profiles of one provider: per protocol,
// without and with the sender's name; dav with calendars and contacts.
type profiles struct {
	docs, dav [len(protocols)][2]*tmpl.Template
}

// compileProvider renders and compiles every profile of one provider.
func compileProvider(p *settings.Provider) (profiles, error) {
	var pr profiles
	for pi, proto := range protocols {
		for named := range 2 {
			for dav := range 2 {
				if dav == 1 && !hasDAV(p) {
					continue
				}
				t, err := compile(p, proto, named == 1, dav == 1)
				if errors.Is(err, ErrNoServer) {
					continue
				}
				if err != nil {
					return pr, err
				}
				if dav == 1 {
					pr.dav[pi][named] = t
				} else {
					pr.docs[pi][named] = t
				}
			}
		}
	}
	return pr, nil
}

// memoKey is this renderer's key in a mailbox's settings.Variant.
type memoKey struct{}

// profilesOf returns the compiled profiles of p: the catalog's, or for a
// provider built for one mailbox (its login name and servers from the
// hoster's directory) its own, compiled once for that mailbox. The server
// types are the provider's either way, so the default protocol is too.
// Should compiling fail (it cannot for a checked mailbox), the domain's
// profiles serve.
func (r *Renderer) profilesOf(p *settings.Provider) (docs, dav *[len(protocols)][2]*tmpl.Template) {
	i := p.Index
	if p.Variant == nil {
		return &r.docs[i], &r.davDocs[i]
	}
	x, err := p.Variant.Memo(memoKey{}, func() (any, error) {
		pr, err := compileProvider(p)
		return &pr, err
	})
	if err != nil {
		return &r.docs[i], &r.davDocs[i]
	}
	pr := x.(*profiles)
	return &pr.docs, &pr.dav
}

// compile renders and compiles one profile of a provider.
func compile(p *settings.Provider, proto string, named, dav bool) (*tmpl.Template, error) {
	doc, err := DocumentDAV(p, proto, named, dav)
	if errors.Is(err, ErrNoServer) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("building the profile of %s: %w", p.ID, err)
	}
	b, err := plist.MarshalIndent(doc, plist.XMLFormat, "\t")
	if err != nil {
		return nil, fmt.Errorf("rendering the profile of %s: %w", p.ID, err)
	}
	// The address is filled as local part, "@", domain: escaped part by
	// part it reads the same, and a request need not build the address
	// string.
	text := strings.ReplaceAll(string(b)+"\n", tmpl.Marker(slotAddress),
		tmpl.Marker(slotLocal)+"@"+tmpl.Marker(slotAddrDomain))
	t, err := tmpl.Compile(text, numDAVSlots)
	if err != nil {
		return nil, fmt.Errorf("compiling the profile of %s: %w", p.ID, err)
	}
	return t, nil
}

func (r *Renderer) newCache() error {
	c, err := lru.New[[sha256.Size]byte, signedProfile](SignedCacheSize)
	if err != nil {
		return fmt.Errorf("creating the signed-profile cache: %w", err)
	}
	r.signed = c
	return nil
}

// SignWith makes the renderer ask source for the signer of every profile
// (signing.acme_name: the managed certificate, which is renewed while the
// configuration stays). A nil signer means none yet: the profile is served
// unsigned, as iOS and macOS accept it ("Not Verified"), rather than not at
// all. Call it before the renderer serves.
func (r *Renderer) SignWith(source func() *Signer) error {
	r.source = source
	if r.signed == nil {
		return r.newCache()
	}
	return nil
}

// SigningNotAfter is the end of the validity of the certificate the next
// profile is signed with, and false when profiles are not signed (none
// configured, or the managed certificate not obtained yet).
func (r *Renderer) SigningNotAfter() (time.Time, bool) {
	if sg := r.currentSigner(); sg != nil {
		return sg.NotAfter(), true
	}
	return time.Time{}, false
}

// currentSigner is the signer of the next profile, nil for none.
func (r *Renderer) currentSigner() *Signer {
	if r.source != nil {
		return r.source()
	}
	return r.signer
}

// Request is what one profile is made for.
type Request struct {
	Settings settings.Settings // with an address
	// Protocol is "imap" or "pop3"; empty means the provider's first
	// incoming server type.
	Protocol string
	// Name is the sender's full name, or empty.
	Name string
	// DAV asks for the provider's calendars and contacts too; a
	// provider without them gets the mail profile.
	DAV bool
}

// Profile returns the profile for req: an XML property list, or the CMS
// SignedData (DER) wrapping it when the configuration names a signing
// certificate.
func (r *Renderer) Profile(req Request) ([]byte, error) {
	doc, err := r.Unsigned(nil, req)
	if err != nil {
		return doc, err
	}
	if sg := r.currentSigner(); sg != nil {
		return r.sign(sg, doc)
	}
	return doc, nil
}

// cachedSignature returns the signed form of doc when the same profile was
// signed before by sg.
func (r *Renderer) cachedSignature(sg *Signer, doc []byte) ([]byte, bool) {
	if p, ok := r.signed.Get(sha256.Sum256(doc)); ok && p.by == sg {
		return p.der, true
	}
	return nil, false
}

// sign returns the signed form of doc, from the cache when the same
// profile was signed before. The result never shares memory with doc.
func (r *Renderer) sign(sg *Signer, doc []byte) ([]byte, error) {
	key := sha256.Sum256(doc)
	if p, ok := r.signed.Get(key); ok && p.by == sg {
		return p.der, nil
	}
	b, err := sg.Sign(doc)
	if err != nil {
		return nil, err
	}
	r.signed.Add(key, signedProfile{by: sg, der: b})
	return b, nil
}

// Unsigned appends the XML property list for req to dst.
func (r *Renderer) Unsigned(dst []byte, req Request) ([]byte, error) {
	s := req.Settings
	if s.Address == nil {
		return nil, errBadRequest{settings.ErrNoDomain.Error()}
	}
	i := s.Provider.Index
	docs, davDocs := r.profilesOf(s.Provider)
	pi := r.first[i]
	if req.Protocol != "" {
		pi = -1
		for j, proto := range protocols {
			if req.Protocol == proto {
				pi = j
			}
		}
		if pi < 0 {
			return nil, errBadRequest{"protocol must be imap or pop3"}
		}
	}
	if pi < 0 || docs[pi][0] == nil {
		return nil, fmt.Errorf("%s: %w", protocols[max(pi, 0)], ErrNoServer)
	}
	named := 0
	if req.Name != "" {
		named = 1
	}
	t := docs[pi][named]
	var dv [numDAVSlots - numSlots]string
	if req.DAV && davDocs[pi][named] != nil {
		t = davDocs[pi][named]
		dv = davValues(r.ns[i], s)
	} else {
		// Login names are those of the mailbox, as in autoconfig and
		// Autodiscover: for an alias domain the canonical address,
		// while EmailAddress stays the address the person typed.
		c := s.Canonical()
		dv[slotCanonDomain-numSlots] = c.Domain
		dv[slotCanonAddress-numSlots] = tmpl.EscapeXML(c.String())
		dv[slotCanonLocal-numSlots] = tmpl.EscapeXML(c.Local)
	}
	if dst == nil {
		dst = make([]byte, 0, t.Size()+512)
	}
	ids := derive(r.ns[i], s.Address.Local, s.Address.Domain)
	return t.Append(dst,
		"", // the address: local part, "@", domain
		tmpl.EscapeXML(s.Address.Local),
		s.Address.Domain,
		ids[:len(ids)-2*uuidLen],
		ids[len(ids)-2*uuidLen:len(ids)-uuidLen],
		ids[len(ids)-uuidLen:],
		tmpl.EscapeXML(req.Name),
		dv[0], dv[1], dv[2], dv[3], dv[4], dv[5], dv[6],
	), nil
}
