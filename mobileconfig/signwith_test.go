package mobileconfig_test

import (
	"crypto/tls"
	"strings"
	"testing"
	"time"

	"github.com/smallstep/pkcs7"

	"mailautoconf/internal/settings"
	"mailautoconf/internal/testutil"
	"mailautoconf/mobileconfig"
)

// pair is the certificate as a TLS server holds it: leaf, then chain.
func pair(p *pki) tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{p.leaf.cert.Raw, p.inter.cert.Raw}, PrivateKey: p.leaf.key, Leaf: p.leaf.cert}
}

// TestSignWith: a renderer that asks for its signer per profile (the
// managed certificate of signing.acme_name) serves unsigned profiles
// until there is one, signs with it, and signs anew with the renewed
// certificate instead of serving a cached signature of the old one.
func TestSignWith(t *testing.T) {
	cat := settings.New(testutil.Demo(t))
	r, err := mobileconfig.NewRenderer(cat)
	if err != nil {
		t.Fatal(err)
	}
	var current *mobileconfig.Signer
	if err := r.SignWith(func() *mobileconfig.Signer { return current }); err != nil {
		t.Fatal(err)
	}
	s, err := cat.ForAddress("alice@example.com")
	if err != nil {
		t.Fatal(err)
	}
	req := mobileconfig.Request{Settings: s}
	signer := func(b []byte) *pkcs7.PKCS7 {
		t.Helper()
		if len(b) == 0 || b[0] != 0x30 {
			return nil
		}
		p7, err := pkcs7.Parse(b)
		if err != nil {
			t.Fatal(err)
		}
		return p7
	}

	b, err := r.Profile(req)
	if err != nil {
		t.Fatal(err)
	}
	if signer(b) != nil {
		t.Error("signed without a signer")
	}
	for i, pk := range []*pki{newPKI(t, false), newPKI(t, true)} {
		if current, err = mobileconfig.NewSigner(pair(pk)); err != nil {
			t.Fatal(err)
		}
		for range 2 { // the second from the cache
			b, err := r.Profile(req)
			if err != nil {
				t.Fatal(err)
			}
			p7 := signer(b)
			if p7 == nil || !p7.GetOnlySigner().Equal(pk.leaf.cert) {
				t.Fatalf("certificate %d: the profile is not signed with it", i)
			}
			if len(p7.Certificates) != 2 || !p7.Certificates[1].Equal(pk.inter.cert) {
				t.Errorf("certificate %d: the chain is not in the profile", i)
			}
		}
	}
}

// TestNewSigner: a managed certificate that cannot sign is refused with
// the reason.
func TestNewSigner(t *testing.T) {
	root := newCert(t, certOpts{cn: "Root", ca: true}, nil)
	for _, tc := range []struct {
		name string
		pair tls.Certificate
		want string
	}{
		{"empty", tls.Certificate{}, "empty"},
		{"expired", func() tls.Certificate {
			c := newCert(t, certOpts{cn: "mail.example.com", notAfter: time.Now().Add(-time.Minute), notBefore: time.Now().Add(-time.Hour)}, root)
			return tls.Certificate{Certificate: [][]byte{c.cert.Raw}, PrivateKey: c.key}
		}(), "expired"},
		{"no signature usage", func() tls.Certificate {
			c := newCert(t, certOpts{cn: "mail.example.com", keyUsage: 1 << 2 /* KeyEncipherment */}, root)
			return tls.Certificate{Certificate: [][]byte{c.cert.Raw}, PrivateKey: c.key}
		}(), "key usage"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := mobileconfig.NewSigner(tc.pair)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("NewSigner: %v, want an error about %q", err, tc.want)
			}
		})
	}
}
