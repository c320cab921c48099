package cluster

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"time"

	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
)

// Identities in the cluster's client certificates.
const (
	adminUser         = "kubernetes-admin"
	kubeletClientUser = "kube-apiserver-kubelet-client"
	frontProxyUser    = "front-proxy-client"
)

// pki writes the cluster's certificates under dir: the cluster CA and what
// it signs (kube-apiserver and kubelet serving, every component's client
// certificate), the front-proxy CA for aggregation, and the ServiceAccount
// signing key.
type pki struct {
	dir string
	ca  *keyPair
}

type keyPair struct {
	cert *x509.Certificate
	key  crypto.Signer
}

// certificate validity: a cluster lives for a test run or an afternoon.
const certValidity = 30 * 24 * time.Hour

func newPKI(dir string) (*pki, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	p := &pki{dir: dir}
	var err error
	if p.ca, err = p.newCA("ca", "e2e-cluster-ca"); err != nil {
		return nil, err
	}
	frontProxyCA, err := p.newCA("front-proxy-ca", "e2e-front-proxy-ca")
	if err != nil {
		return nil, err
	}
	apiserverIPs := []net.IP{net.ParseIP(nodeIP), net.ParseIP(kubernetesServiceIP), net.IPv4(127, 0, 0, 1)}
	apiserverNames := []string{"localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc", "kubernetes.default.svc.cluster.local"}
	for _, c := range []struct {
		file   string
		ca     *keyPair
		cn     string
		org    []string
		usage  x509.ExtKeyUsage
		ips    []net.IP
		dnsSAN []string
	}{
		{"apiserver", p.ca, "kube-apiserver", nil, x509.ExtKeyUsageServerAuth, apiserverIPs, apiserverNames},
		{"kubelet", p.ca, nodeName, nil, x509.ExtKeyUsageServerAuth, []net.IP{net.ParseIP(nodeIP)}, []string{nodeName}},
		{"admin", p.ca, adminUser, []string{"system:masters"}, x509.ExtKeyUsageClientAuth, nil, nil},
		{"apiserver-kubelet-client", p.ca, kubeletClientUser, nil, x509.ExtKeyUsageClientAuth, nil, nil},
		{"kubelet-client", p.ca, "system:node:" + nodeName, []string{"system:nodes"}, x509.ExtKeyUsageClientAuth, nil, nil},
		{"kube-controller-manager", p.ca, "system:kube-controller-manager", nil, x509.ExtKeyUsageClientAuth, nil, nil},
		{"kube-scheduler", p.ca, "system:kube-scheduler", nil, x509.ExtKeyUsageClientAuth, nil, nil},
		{"kube-proxy", p.ca, "system:kube-proxy", nil, x509.ExtKeyUsageClientAuth, nil, nil},
		{"front-proxy-client", frontProxyCA, frontProxyUser, nil, x509.ExtKeyUsageClientAuth, nil, nil},
	} {
		if err := p.issue(c.file, c.ca, &x509.Certificate{
			Subject:     pkix.Name{CommonName: c.cn, Organization: c.org},
			ExtKeyUsage: []x509.ExtKeyUsage{c.usage},
			IPAddresses: c.ips,
			DNSNames:    c.dnsSAN,
		}); err != nil {
			return nil, err
		}
	}
	saKey, err := keyutil.MakeEllipticPrivateKeyPEM()
	if err != nil {
		return nil, err
	}
	if err := keyutil.WriteKey(p.path("sa.key"), saKey); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *pki) path(file string) string { return filepath.Join(p.dir, file) }

func (p *pki) newCA(file, commonName string) (*keyPair, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	ca, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: commonName}, key)
	if err != nil {
		return nil, err
	}
	kp := &keyPair{cert: ca, key: key}
	return kp, p.write(file, kp)
}

// issue signs tmpl's subject, names and usage with ca. client-go makes CAs
// and self-signed certificates only; signing with a CA is crypto/x509's.
func (p *pki) issue(file string, ca *keyPair, tmpl *x509.Certificate) error {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return err
	}
	if tmpl.SerialNumber, err = rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127)); err != nil {
		return err
	}
	now := time.Now()
	tmpl.NotBefore, tmpl.NotAfter = now.Add(-time.Hour), now.Add(certValidity)
	tmpl.KeyUsage = x509.KeyUsageDigitalSignature
	tmpl.BasicConstraintsValid = true
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, key.Public(), ca.key)
	if err != nil {
		return fmt.Errorf("signing %s: %w", file, err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		return err
	}
	return p.write(file, &keyPair{cert: cert, key: key})
}

func (p *pki) write(file string, kp *keyPair) error {
	certPEM, err := certutil.EncodeCertificates(kp.cert)
	if err != nil {
		return err
	}
	keyPEM, err := keyutil.MarshalPrivateKeyToPEM(kp.key)
	if err != nil {
		return err
	}
	if err := certutil.WriteCert(p.path(file+".crt"), certPEM); err != nil {
		return err
	}
	return keyutil.WriteKey(p.path(file+".key"), keyPEM)
}
