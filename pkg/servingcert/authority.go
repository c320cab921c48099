package servingcert

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// authority is a CA: its certificate and, for a CA that signs, its key.
type authority struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// newAuthority makes a self-signed CA (client-go's: ECDSA P-256, valid for
// ten years from now).
func newAuthority(now time.Time) (*authority, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca, err := certutil.NewSelfSignedCACert(certutil.Config{
		CommonName: fmt.Sprintf("signal-apiserver-serving-ca@%d", now.Unix()),
		NotBefore:  now,
	}, key)
	if err != nil {
		return nil, fmt.Errorf("creating a CA: %w", err)
	}
	return &authority{cert: ca, key: key}, nil
}

// parseAuthority reads a CA from PEM; keyPEM may be nil for a CA that is
// only trusted, not used to sign.
func parseAuthority(certPEM, keyPEM []byte) (*authority, error) {
	certs, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		return nil, err
	}
	if len(certs) != 1 || !certs[0].IsCA {
		return nil, errors.New("want exactly one CA certificate")
	}
	a := &authority{cert: certs[0]}
	if keyPEM == nil {
		return a, nil
	}
	key, err := keyutil.ParsePrivateKeyPEM(keyPEM)
	if err != nil {
		return nil, err
	}
	signer, ok := key.(crypto.Signer)
	if !ok {
		return nil, errors.New("the CA key cannot sign")
	}
	if !publicKeysEqual(signer.Public(), a.cert.PublicKey) {
		return nil, errors.New("the CA key does not match the CA certificate")
	}
	a.key = signer
	return a, nil
}

func publicKeysEqual(a, b crypto.PublicKey) bool {
	eq, ok := a.(interface{ Equal(crypto.PublicKey) bool })
	return ok && eq.Equal(b)
}

// pem returns the CA's certificate and key in PEM.
func (a *authority) pem() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = certutil.EncodeCertificates(a.cert); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = keyutil.MarshalPrivateKeyToPEM(a.key); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

// backdate is how far before its issuing a serving certificate is valid, for
// clocks that lag behind the issuer's.
const backdate = 5 * time.Minute

// issue signs a serving certificate for hosts, valid for validity but never
// past the CA's own expiry. client-go makes CAs and self-signed certificates
// only; signing with a CA is crypto/x509's job.
func (a *authority) issue(hosts []string, now time.Time, validity time.Duration) (certPEM, keyPEM []byte, leaf *x509.Certificate, err error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, nil, err
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return nil, nil, nil, err
	}
	notAfter := now.Add(validity)
	if notAfter.After(a.cert.NotAfter) {
		notAfter = a.cert.NotAfter
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: hosts[0]},
		DNSNames:              hosts,
		NotBefore:             now.Add(-backdate),
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, a.cert, key.Public(), a.key)
	if err != nil {
		return nil, nil, nil, fmt.Errorf("signing the serving certificate: %w", err)
	}
	if leaf, err = x509.ParseCertificate(der); err != nil {
		return nil, nil, nil, err
	}
	if certPEM, err = certutil.EncodeCertificates(leaf); err != nil {
		return nil, nil, nil, err
	}
	if keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key); err != nil {
		return nil, nil, nil, err
	}
	return certPEM, keyPEM, leaf, nil
}

// encodeBundle returns the certificates as one PEM bundle, in order.
func encodeBundle(certs ...*x509.Certificate) ([]byte, error) {
	return certutil.EncodeCertificates(certs...)
}

// sameCertificates reports whether PEM bundle got holds exactly the
// certificates of want, in any order. A bundle that does not parse differs.
func sameCertificates(got []byte, want []*x509.Certificate) bool {
	if len(got) == 0 {
		return len(want) == 0
	}
	certs, err := certutil.ParseCertsPEM(got)
	if err != nil || len(certs) != len(want) {
		return false
	}
	for _, w := range want {
		if !containsCertificate(certs, w) {
			return false
		}
	}
	return true
}

func containsCertificate(certs []*x509.Certificate, c *x509.Certificate) bool {
	return slices.ContainsFunc(certs, func(x *x509.Certificate) bool { return bytes.Equal(x.Raw, c.Raw) })
}
