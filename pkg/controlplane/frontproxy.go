package controlplane

import (
	"crypto/x509"
	"time"

	"k8s.io/client-go/util/cert"
)

// FrontProxyClientCert issues a client certificate from the front-proxy CA,
// the CA kube-apiserver's aggregator authenticates to signal-apiserver
// with, valid from notBefore to notAfter. Tests use it to present
// certificates the aggregator never would: expired ones, or ones with a
// name outside --requestheader-allowed-names.
func (c *ControlPlane) FrontProxyClientCert(commonName string, notBefore, notAfter time.Time) (certPEM, keyPEM []byte, err error) {
	kp, err := c.pki.frontProxyCA.signValid(cert.Config{
		CommonName: commonName,
		Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, notBefore, notAfter)
	if err != nil {
		return nil, nil, err
	}
	return kp.certPEM, kp.keyPEM, nil
}

// FrontProxyCA is the PEM certificate of the front-proxy CA: what
// kube-apiserver publishes as requestheader-client-ca-file in
// kube-system/extension-apiserver-authentication.
func (c *ControlPlane) FrontProxyCA() []byte { return c.pki.frontProxyCA.certPEM }
