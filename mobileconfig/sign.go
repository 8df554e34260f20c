package mobileconfig

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/smallstep/pkcs7"

	"mailautoconf/internal/config"
)

// Signer signs profiles as CMS SignedData, the form iOS and macOS verify:
// DER, the profile attached as content, the signer certificate and its
// intermediates included (the device has only its roots), SHA-256.
//
// The signed attributes carry a signing time, so a signature is made once
// per distinct profile and then cached by the Renderer.
type Signer struct {
	cert  *x509.Certificate
	key   any // crypto.Signer of the certificate's public key
	chain []*x509.Certificate
}

// NotAfter is the end of the signing certificate's validity.
func (s *Signer) NotAfter() time.Time { return s.cert.NotAfter }

// LoadSigner reads the files the configuration names and checks that they
// can sign: the key matches the certificate, the certificate (and every
// chain certificate) is valid now, its key usage allows signatures, and a
// chain, when given, holds the certificate's issuer. It returns nil without
// a signing section.
func LoadSigner(s config.Signing) (*Signer, error) {
	return loadSigner(s, time.Now())
}

func loadSigner(s config.Signing, now time.Time) (*Signer, error) {
	if !s.Enabled() {
		return nil, nil
	}
	// tls.LoadX509KeyPair does the parsing of every PEM key format and the
	// key/certificate match; the certificate file may carry the chain.
	pair, err := tls.LoadX509KeyPair(s.Certificate, s.Key)
	if err != nil {
		return nil, fmt.Errorf("signing: loading certificate %s and key %s: %w", s.Certificate, s.Key, err)
	}
	var chain []*x509.Certificate
	if s.Chain != "" {
		if chain, err = readCertificates(s.Chain); err != nil {
			return nil, fmt.Errorf("signing: chain: %w", err)
		}
	}
	return newSigner(pair, chain, now, "certificate "+s.Certificate, s.Key)
}

// NewSigner makes a signer of a certificate the service holds in memory: the
// managed certificate of signing.acme_name (its chain follows the leaf, the
// way a TLS server sends it). The checks are those of LoadSigner.
func NewSigner(pair tls.Certificate) (*Signer, error) {
	if len(pair.Certificate) == 0 {
		return nil, errors.New("signing: the certificate is empty")
	}
	return newSigner(pair, nil, time.Now(), "managed certificate", "its key")
}

// newSigner checks a key pair (chain certificates after the leaf, and more
// in chain) for signing at now; what names the certificate and the key in
// error messages.
func newSigner(pair tls.Certificate, chain []*x509.Certificate, now time.Time, what, keyName string) (*Signer, error) {
	leaf := pair.Leaf
	var err error
	if leaf == nil {
		if leaf, err = x509.ParseCertificate(pair.Certificate[0]); err != nil {
			return nil, fmt.Errorf("signing: parsing %s: %w", what, err)
		}
	}
	sg := &Signer{cert: leaf, key: pair.PrivateKey}
	for i, der := range pair.Certificate[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, fmt.Errorf("signing: parsing certificate %d of %s: %w", i+2, what, err)
		}
		sg.chain = append(sg.chain, c)
	}
	sg.chain = append(sg.chain, chain...)
	if err := checkValidity(leaf, now); err != nil {
		return nil, fmt.Errorf("signing: %s: %w", what, err)
	}
	if leaf.KeyUsage != 0 && leaf.KeyUsage&x509.KeyUsageDigitalSignature == 0 {
		return nil, fmt.Errorf("signing: %s: its key usage does not allow digital signatures", what)
	}
	for _, c := range sg.chain {
		if err := checkValidity(c, now); err != nil {
			return nil, fmt.Errorf("signing: chain certificate %q: %w", c.Subject.String(), err)
		}
	}
	if len(sg.chain) > 0 {
		found := false
		for _, c := range sg.chain {
			if leaf.CheckSignatureFrom(c) == nil {
				found = true
				break
			}
		}
		if !found {
			return nil, fmt.Errorf("signing: the chain does not contain the issuer of %q (%q)", leaf.Subject.String(), leaf.Issuer.String())
		}
	}
	// One trial signature finds key types the CMS library cannot use now
	// rather than on the first request.
	if _, err := sg.Sign([]byte("probe")); err != nil {
		return nil, fmt.Errorf("signing: trial signature with %s: %w", keyName, err)
	}
	return sg, nil
}

// checkValidity reports a certificate that is expired or not yet valid.
func checkValidity(c *x509.Certificate, now time.Time) error {
	switch {
	case now.After(c.NotAfter):
		return fmt.Errorf("expired on %s", c.NotAfter.UTC().Format(time.RFC3339))
	case now.Before(c.NotBefore):
		return fmt.Errorf("not valid before %s", c.NotBefore.UTC().Format(time.RFC3339))
	}
	return nil
}

// readCertificates reads every CERTIFICATE block of a PEM file.
func readCertificates(path string) ([]*x509.Certificate, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	var out []*x509.Certificate
	for {
		var b *pem.Block
		b, data = pem.Decode(data)
		if b == nil {
			break
		}
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, fmt.Errorf("parsing a certificate in %s: %w", path, err)
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w", path, errNoCertificate)
	}
	return out, nil
}

var errNoCertificate = errors.New("no PEM CERTIFICATE block found")

// Sign wraps content in a CMS SignedData structure (DER).
func (s *Signer) Sign(content []byte) ([]byte, error) {
	sd, err := pkcs7.NewSignedData(content)
	if err != nil {
		return nil, fmt.Errorf("signing profile: %w", err)
	}
	sd.SetDigestAlgorithm(pkcs7.OIDDigestAlgorithmSHA256)
	if err := sd.AddSigner(s.cert, s.key, pkcs7.SignerInfoConfig{}); err != nil {
		return nil, fmt.Errorf("signing profile: %w", err)
	}
	for _, c := range s.chain {
		sd.AddCertificate(c)
	}
	b, err := sd.Finish()
	if err != nil {
		return nil, fmt.Errorf("signing profile: %w", err)
	}
	return b, nil
}
