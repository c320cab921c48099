package controlplane

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	"k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// Names in the generated certificates.
const (
	frontProxyClientName = "front-proxy-client"
	serviceDNSName       = "signal-apiserver.signal-apiserver.svc"
)

// pki holds the two CAs the control plane needs besides envtest's own: the
// front-proxy CA that kube-apiserver uses to vouch for the users it proxies to
// signal-apiserver, and the CA of signal-apiserver's serving certificate.
type pki struct {
	frontProxyCA     *keyPair
	frontProxyClient *keyPair
	servingCA        *keyPair
	serving          *keyPair
	dir              string
}

// keyPair is a certificate with its private key, PEM-encoded.
type keyPair struct {
	certPEM []byte
	keyPEM  []byte
	cert    *x509.Certificate
	signer  crypto.Signer
}

func newPKI(dir string) (*pki, error) {
	p := &pki{dir: dir}
	var err error
	if p.frontProxyCA, err = newCA("front-proxy-ca"); err != nil {
		return nil, err
	}
	if p.frontProxyClient, err = p.frontProxyCA.sign(cert.Config{
		CommonName: frontProxyClientName,
		Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}); err != nil {
		return nil, err
	}
	if p.servingCA, err = newCA("signal-apiserver-serving-ca"); err != nil {
		return nil, err
	}
	if p.serving, err = p.servingCA.sign(cert.Config{
		CommonName: serviceDNSName,
		AltNames: cert.AltNames{
			DNSNames: []string{"localhost", serviceDNSName},
			IPs:      []net.IP{net.IPv4(127, 0, 0, 1)},
		},
		Usages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}); err != nil {
		return nil, err
	}

	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	for name, kp := range map[string]*keyPair{
		"front-proxy-ca":     p.frontProxyCA,
		"front-proxy-client": p.frontProxyClient,
		"serving-ca":         p.servingCA,
		"serving":            p.serving,
	} {
		if err := cert.WriteCert(p.path(name+".crt"), kp.certPEM); err != nil {
			return nil, err
		}
		if err := keyutil.WriteKey(p.path(name+".key"), kp.keyPEM); err != nil {
			return nil, err
		}
	}
	return p, nil
}

func (p *pki) path(file string) string { return filepath.Join(p.dir, file) }

func newCA(commonName string) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caCert, err := cert.NewSelfSignedCACert(cert.Config{CommonName: commonName}, key)
	if err != nil {
		return nil, fmt.Errorf("creating CA %s: %w", commonName, err)
	}
	return newKeyPair(caCert, key)
}

// sign issues a leaf certificate valid for a year. client-go's cert package
// only makes CAs and self-signed leaves, hence crypto/x509 here.
func (ca *keyPair) sign(cfg cert.Config) (*keyPair, error) {
	now := time.Now()
	return ca.signValid(cfg, now.Add(-time.Minute), now.Add(365*24*time.Hour))
}

// signValid issues a leaf certificate valid from notBefore to notAfter.
func (ca *keyPair) signValid(cfg cert.Config, notBefore, notAfter time.Time) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	serial, err := rand.Int(rand.Reader, big.NewInt(math.MaxInt64))
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial,
		Subject:               pkix.Name{CommonName: cfg.CommonName, Organization: cfg.Organization},
		DNSNames:              cfg.AltNames.DNSNames,
		IPAddresses:           cfg.AltNames.IPs,
		NotBefore:             notBefore,
		NotAfter:              notAfter,
		KeyUsage:              x509.KeyUsageDigitalSignature,
		ExtKeyUsage:           cfg.Usages,
		BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.signer)
	if err != nil {
		return nil, fmt.Errorf("signing certificate %s: %w", cfg.CommonName, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return newKeyPair(leaf, key)
}

func newKeyPair(c *x509.Certificate, key crypto.Signer) (*keyPair, error) {
	certPEM, err := cert.EncodeCertificates(c)
	if err != nil {
		return nil, err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(key)
	if err != nil {
		return nil, err
	}
	return &keyPair{certPEM: certPEM, keyPEM: keyPEM, cert: c, signer: key}, nil
}
