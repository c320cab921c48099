package integration

import (
	"fmt"
	"net/http"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"

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
	ca := newTestCA("front-proxy-ca")
	return ca.clientPEM, ca.clientKey
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
