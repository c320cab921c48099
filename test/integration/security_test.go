package integration

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"fmt"
	"math/big"
	"net/http"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"

	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
)

// direct returns a config for the primary server itself, bypassing
// kube-apiserver, that forges the front-proxy headers of system:admin.
func direct(certPEM, keyPEM []byte) *rest.Config {
	return &rest.Config{
		Host:            fmt.Sprintf("https://127.0.0.1:%d", primary.Port),
		TLSClientConfig: rest.TLSClientConfig{CAData: primary.CABundle, CertData: certPEM, KeyData: keyPEM},
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
			return transport.NewAuthProxyRoundTripper("system:admin", "", []string{"system:masters"}, nil, rt)
		},
	}
}

// foreignClientCert is a client certificate named like kube-apiserver's
// front-proxy client, signed by a CA the server does not trust.
func foreignClientCert() (certPEM, keyPEM []byte) {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	ca, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: "front-proxy-ca"}, caKey)
	Expect(err).NotTo(HaveOccurred())
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      ca.Subject,
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	tmpl.Subject.CommonName = "front-proxy-client"
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	keyPEM, err = keyutil.MarshalPrivateKeyToPEM(key)
	Expect(err).NotTo(HaveOccurred())
	certPEM, err = certutil.EncodeCertificates(&x509.Certificate{Raw: der})
	Expect(err).NotTo(HaveOccurred())
	return certPEM, keyPEM
}

var _ = Describe("Direct access to the server", func() {
	It("rejects forged front-proxy headers without a client certificate with 401", func(ctx SpecContext) {
		s := newSignal("default")
		_, err := versioned.NewForConfigOrDie(direct(nil, nil)).SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(apierrors.IsUnauthorized(err)).To(BeTrue(), "got %v", err)
		Expect(rrsOf(ctx, "default", fingerprintOf(s))).To(BeEmpty())
	})

	It("rejects a client certificate from another CA with 401", func(ctx SpecContext) {
		s := newSignal("default")
		_, err := versioned.NewForConfigOrDie(direct(foreignClientCert())).SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(apierrors.IsUnauthorized(err)).To(BeTrue(), "got %v", err)
		Expect(rrsOf(ctx, "default", fingerprintOf(s))).To(BeEmpty())
	})

	It("still answers health probes without credentials", func(ctx SpecContext) {
		rc, err := rest.RESTClientFor(restConfigFor(rest.AnonymousClientConfig(direct(nil, nil))))
		Expect(err).NotTo(HaveOccurred())
		for _, path := range []string{"/healthz", "/livez", "/readyz"} {
			var code int
			rc.Get().AbsPath(path).Do(ctx).StatusCode(&code)
			Expect(code).To(Equal(http.StatusOK), path)
		}
	})
})
