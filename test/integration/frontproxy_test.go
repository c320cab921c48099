package integration

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"math/big"
	"slices"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	utilrand "k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/keyutil"
	"k8s.io/client-go/util/retry"

	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
)

// The ConfigMap from which signal-apiserver's delegated authentication
// reads the request-header CA and allowed names; kube-apiserver writes it
// and keeps whatever else it holds.
const (
	authenticationNamespace = "kube-system"
	authenticationConfigMap = "extension-apiserver-authentication"
	requestHeaderCAKey      = "requestheader-client-ca-file"
	allowedNamesKey         = "requestheader-allowed-names"
)

// frontProxyVerifications reads the primary server's counts of front-proxy
// chain verifications by result.
func frontProxyVerifications(ctx context.Context) map[string]float64 {
	families := scrape(ctx)
	out := map[string]float64{}
	for _, result := range []string{"cached", "verified", "failed"} {
		out[result] = value(families, "signal_apiserver_front_proxy_verifications_total", map[string]string{"result": result})
	}
	return out
}

// discoveryCode sends a discovery request straight to the primary server
// with a client certificate, as system:admin in the front-proxy headers, and
// returns the HTTP status.
func discoveryCode(ctx context.Context, certPEM, keyPEM []byte) int {
	rc, err := rest.RESTClientFor(restConfigFor(direct(certPEM, keyPEM)))
	Expect(err).NotTo(HaveOccurred())
	var code int
	rc.Get().AbsPath("/apis/signals.remediation.io/v1").Do(ctx).StatusCode(&code)
	return code
}

// testCA is a CA of the test's own with a client certificate named like
// kube-apiserver's front proxy.
type testCA struct {
	certPEM              []byte
	clientPEM, clientKey []byte
}

func newTestCA(commonName string) *testCA {
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	ca, err := certutil.NewSelfSignedCACert(certutil.Config{CommonName: commonName}, caKey)
	Expect(err).NotTo(HaveOccurred())
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	Expect(err).NotTo(HaveOccurred())
	der, err := x509.CreateCertificate(rand.Reader, &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "front-proxy-client"},
		NotBefore:    time.Now().Add(-time.Minute),
		NotAfter:     time.Now().Add(time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}, ca, &key.PublicKey, caKey)
	Expect(err).NotTo(HaveOccurred())
	t := &testCA{}
	t.certPEM, err = certutil.EncodeCertificates(ca)
	Expect(err).NotTo(HaveOccurred())
	t.clientPEM, err = certutil.EncodeCertificates(&x509.Certificate{Raw: der})
	Expect(err).NotTo(HaveOccurred())
	t.clientKey, err = keyutil.MarshalPrivateKeyToPEM(key)
	Expect(err).NotTo(HaveOccurred())
	return t
}

// editAuthentication changes the data of the authentication ConfigMap.
func editAuthentication(ctx context.Context, kube kubernetes.Interface, edit func(data map[string]string)) {
	configMaps := kube.CoreV1().ConfigMaps(authenticationNamespace)
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		cm, err := configMaps.Get(ctx, authenticationConfigMap, metav1.GetOptions{})
		if err != nil {
			return err
		}
		edit(cm.Data)
		_, err = configMaps.Update(ctx, cm, metav1.UpdateOptions{})
		return err
	})).To(Succeed())
}

// withCAs returns bundle with add appended and the certificates of remove
// taken out.
func withCAs(bundle string, add, remove []*testCA) string {
	certs, err := certutil.ParseCertsPEM([]byte(bundle))
	Expect(err).NotTo(HaveOccurred())
	var removed [][]byte
	for _, ca := range remove {
		c, err := certutil.ParseCertsPEM(ca.certPEM)
		Expect(err).NotTo(HaveOccurred())
		removed = append(removed, c[0].Raw)
	}
	certs = slices.DeleteFunc(certs, func(c *x509.Certificate) bool {
		return slices.ContainsFunc(removed, func(raw []byte) bool { return bytes.Equal(raw, c.Raw) })
	})
	for _, ca := range add {
		c, err := certutil.ParseCertsPEM(ca.certPEM)
		Expect(err).NotTo(HaveOccurred())
		certs = append(certs, c...)
	}
	pem, err := certutil.EncodeCertificates(certs...)
	Expect(err).NotTo(HaveOccurred())
	return string(pem)
}

// withNames returns the JSON list of allowed names with add appended and
// remove taken out.
func withNames(list string, add, remove []string) string {
	var names []string
	Expect(json.Unmarshal([]byte(list), &names)).To(Succeed())
	names = slices.DeleteFunc(names, func(n string) bool { return slices.Contains(remove, n) })
	names = append(names, add...)
	out, err := json.Marshal(names)
	Expect(err).NotTo(HaveOccurred())
	return string(out)
}

var _ = Describe("Front-proxy authentication with cached verifications", Ordered, func() {
	var kube kubernetes.Interface
	BeforeAll(func() {
		kube = kubernetes.NewForConfigOrDie(adminConf)
	})

	It("answers each request through kube-apiserver as the user its headers name, without verifying the aggregator's certificate again", func(ctx SpecContext) {
		// A sender that RBAC allows and a policy in signal-apiserver's own
		// admission refuses: only the identity signal-apiserver read from
		// the headers of that very request tells the two senders apart.
		refused := "refused-sender-" + utilrand.String(5)
		conf, err := cp.AddUser(refused, nil)
		Expect(err).NotTo(HaveOccurred())
		refusedClient := versioned.NewForConfigOrDie(conf)
		_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: refused},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "signal-sender"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: refused}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(kube.RbacV1().ClusterRoleBindings().Delete(ctx, refused, metav1.DeleteOptions{})).To(Succeed())
		})
		signalPolicy(ctx, refused, admissionregistrationv1.Validation{
			Expression: "request.userInfo.username != '" + refused + "'",
			Message:    "signals from " + refused + " are refused",
		})
		// RBAC and the policy reach both servers asynchronously.
		Eventually(func() error {
			_, err := refusedClient.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}).WithContext(ctx).Should(MatchError(ContainSubstring("signals from " + refused + " are refused")))
		_, err = admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		Expect(err).NotTo(HaveOccurred())

		before := frontProxyVerifications(ctx)
		for range 3 {
			s := newSignal("default")
			_, err := refusedClient.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
			Expect(rrsOf(ctx, "default", fingerprintOf(s))).To(BeEmpty())
			_, err = admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}
		after := frontProxyVerifications(ctx)
		// Every one of those requests came with the aggregator's
		// certificate, verified before: none was verified again.
		Expect(after["verified"] - before["verified"]).To(BeZero())
		Expect(after["failed"] - before["failed"]).To(BeZero())
	})

	It("answers each request straight to the server as the user its headers name", func(ctx SpecContext) {
		nobody := "nobody-" + utilrand.String(5)
		asNobody := versioned.NewForConfigOrDie(restConfigFor(cp.FrontProxyClientConfig(primary, nobody, nil)))
		asAdmin := versioned.NewForConfigOrDie(restConfigFor(cp.FrontProxyClientConfig(primary, "system:admin", []string{"system:masters"})))
		for range 3 {
			_, err := asNobody.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{})
			Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)
			_, err = asAdmin.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}
	})

	It("refuses forged headers without a certificate, and a foreign CA's certificate", func(ctx SpecContext) {
		Expect(discoveryCode(ctx, nil, nil)).To(Equal(401))
		foreign := newTestCA("front-proxy-ca")
		for range 2 {
			Expect(discoveryCode(ctx, foreign.clientPEM, foreign.clientKey)).To(Equal(401))
		}
	})

	It("refuses an expired certificate, and one that expires while its verification is cached", func(ctx SpecContext) {
		now := time.Now()
		expired, expiredKey, err := cp.FrontProxyClientCert("front-proxy-client", now.Add(-2*time.Hour), now.Add(-time.Hour))
		Expect(err).NotTo(HaveOccurred())
		Expect(discoveryCode(ctx, expired, expiredKey)).To(Equal(401))

		// Certificates carry whole seconds.
		notAfter := now.Add(3 * time.Second).Truncate(time.Second)
		shortLived, shortLivedKey, err := cp.FrontProxyClientCert("front-proxy-client", now.Add(-time.Minute), notAfter)
		Expect(err).NotTo(HaveOccurred())
		for range 3 {
			Expect(discoveryCode(ctx, shortLived, shortLivedKey)).To(Equal(200))
		}
		time.Sleep(time.Until(notAfter) + time.Second)
		Expect(discoveryCode(ctx, shortLived, shortLivedKey)).To(Equal(401))
	})

	It("refuses a certificate whose CA was removed from the ConfigMap from the first request after the reload", func(ctx SpecContext) {
		added, marker := newTestCA("added-front-proxy-ca"), newTestCA("marker-front-proxy-ca")
		Expect(discoveryCode(ctx, added.clientPEM, added.clientKey)).To(Equal(401))

		editAuthentication(ctx, kube, func(data map[string]string) {
			data[requestHeaderCAKey] = withCAs(data[requestHeaderCAKey], []*testCA{added}, nil)
		})
		DeferCleanup(func(ctx SpecContext) {
			editAuthentication(ctx, kube, func(data map[string]string) {
				data[requestHeaderCAKey] = withCAs(data[requestHeaderCAKey], nil, []*testCA{added, marker})
			})
		})
		Eventually(func() int { return discoveryCode(ctx, added.clientPEM, added.clientKey) }).WithContext(ctx).Should(Equal(200))
		for range 3 {
			Expect(discoveryCode(ctx, added.clientPEM, added.clientKey)).To(Equal(200))
		}

		// One write removes the added CA and adds a marker CA: once the
		// marker's certificate is accepted, the server has loaded a bundle
		// without the added CA.
		editAuthentication(ctx, kube, func(data map[string]string) {
			data[requestHeaderCAKey] = withCAs(data[requestHeaderCAKey], []*testCA{marker}, []*testCA{added})
		})
		Eventually(func() int { return discoveryCode(ctx, marker.clientPEM, marker.clientKey) }).WithContext(ctx).Should(Equal(200))
		Expect(discoveryCode(ctx, added.clientPEM, added.clientKey)).To(Equal(401))
		// kube-apiserver's front proxy is still in.
		_, err := admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		Expect(err).NotTo(HaveOccurred())
	})

	It("checks the allowed names on every request, and refuses a removed name from the first request after the reload", func(ctx SpecContext) {
		now := time.Now()
		extra, extraKey, err := cp.FrontProxyClientCert("extra-proxy", now.Add(-time.Minute), now.Add(time.Hour))
		Expect(err).NotTo(HaveOccurred())
		marker, markerKey, err := cp.FrontProxyClientCert("marker-proxy", now.Add(-time.Minute), now.Add(time.Hour))
		Expect(err).NotTo(HaveOccurred())
		// Signed by the front-proxy CA, named otherwise.
		Expect(discoveryCode(ctx, extra, extraKey)).To(Equal(401))

		editAuthentication(ctx, kube, func(data map[string]string) {
			data[allowedNamesKey] = withNames(data[allowedNamesKey], []string{"extra-proxy"}, nil)
		})
		DeferCleanup(func(ctx SpecContext) {
			editAuthentication(ctx, kube, func(data map[string]string) {
				data[allowedNamesKey] = withNames(data[allowedNamesKey], nil, []string{"extra-proxy", "marker-proxy"})
			})
		})
		Eventually(func() int { return discoveryCode(ctx, extra, extraKey) }).WithContext(ctx).Should(Equal(200))
		for range 3 {
			Expect(discoveryCode(ctx, extra, extraKey)).To(Equal(200))
		}

		editAuthentication(ctx, kube, func(data map[string]string) {
			data[allowedNamesKey] = withNames(data[allowedNamesKey], []string{"marker-proxy"}, []string{"extra-proxy"})
		})
		Eventually(func() int { return discoveryCode(ctx, marker, markerKey) }).WithContext(ctx).Should(Equal(200))
		Expect(discoveryCode(ctx, extra, extraKey)).To(Equal(401))
		_, err = admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		Expect(err).NotTo(HaveOccurred())
	})
})
