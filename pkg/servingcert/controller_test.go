package servingcert

import (
	"context"
	"crypto/x509"
	"errors"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	certutil "k8s.io/client-go/util/cert"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	aggregatorfake "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/fake"
	clocktesting "k8s.io/utils/clock/testing"
)

const (
	testNamespace  = "signal-apiserver"
	testSecret     = "signal-apiserver-serving-ca"
	testAPIService = "v1.signals.remediation.io"
	testHost       = "signal-apiserver.signal-apiserver.svc"
)

var testOptions = Options{
	SecretNamespace:   testNamespace,
	SecretName:        testSecret,
	APIServices:       []string{testAPIService},
	Validity:          time.Hour,
	CARotateBefore:    365 * 24 * time.Hour,
	CAActivationDelay: 10 * time.Minute,
	SyncPeriod:        time.Minute,
}

type fixture struct {
	core       *fake.Clientset
	aggregator *aggregatorfake.Clientset
	clock      *clocktesting.FakeClock
}

func newFixture(t *testing.T, secret *corev1.Secret, insecure bool) *fixture {
	t.Helper()
	apiService := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: testAPIService},
		Spec: apiregistrationv1.APIServiceSpec{
			Group: "signals.remediation.io", Version: "v1",
			Service:               &apiregistrationv1.ServiceReference{Namespace: testNamespace, Name: "signal-apiserver"},
			InsecureSkipTLSVerify: insecure,
		},
	}
	core := fake.NewClientset()
	if secret != nil {
		core = fake.NewClientset(secret)
	}
	return &fixture{
		core:       core,
		aggregator: aggregatorfake.NewClientset(apiService),
		clock:      clocktesting.NewFakeClock(time.Now()),
	}
}

func emptySecret() *corev1.Secret {
	return &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testSecret}}
}

func (f *fixture) controller(opts Options) *Controller {
	return newWithClock(f.core.CoreV1(), f.aggregator.ApiregistrationV1(), opts, f.clock)
}

func (f *fixture) apiService(t *testing.T) *apiregistrationv1.APIService {
	t.Helper()
	svc, err := f.aggregator.ApiregistrationV1().APIServices().Get(context.Background(), testAPIService, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return svc
}

func (f *fixture) secret(t *testing.T) *corev1.Secret {
	t.Helper()
	s, err := f.core.CoreV1().Secrets(testNamespace).Get(context.Background(), testSecret, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// verify checks certPEM as kube-apiserver's aggregator does: against the
// APIService's caBundle, for the Service's DNS name, at the fake clock's time.
func (f *fixture) verify(t *testing.T, certPEM []byte) error {
	t.Helper()
	leaf, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(f.apiService(t).Spec.CABundle) {
		t.Fatal("the APIService's caBundle holds no certificate")
	}
	_, err = leaf[0].Verify(x509.VerifyOptions{
		DNSName:     testHost,
		Roots:       roots,
		CurrentTime: f.clock.Now(),
		KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	return err
}

type countingListener struct{ n int }

func (l *countingListener) Enqueue() { l.n++ }

func bundleSize(t *testing.T, bundle []byte) int {
	t.Helper()
	certs, err := certutil.ParseCertsPEM(bundle)
	if err != nil {
		t.Fatal(err)
	}
	return len(certs)
}

func TestFirstSyncFillsTheSecretAndTheCABundle(t *testing.T) {
	f := newFixture(t, emptySecret(), true)
	c := f.controller(testOptions)
	l := &countingListener{}
	c.AddListener(l)
	if cert, key := c.CurrentCertKeyContent(); cert != nil || key != nil {
		t.Fatal("content before the first sync")
	}
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	certPEM, keyPEM := c.CurrentCertKeyContent()
	if len(certPEM) == 0 || len(keyPEM) == 0 {
		t.Fatal("no serving certificate after the first sync")
	}
	if err := f.verify(t, certPEM); err != nil {
		t.Fatalf("kube-apiserver would refuse the serving certificate: %v", err)
	}
	if svc := f.apiService(t); svc.Spec.InsecureSkipTLSVerify || bundleSize(t, svc.Spec.CABundle) != 1 {
		t.Fatalf("APIService: insecureSkipTLSVerify=%v, %d CAs; want false, 1", svc.Spec.InsecureSkipTLSVerify, bundleSize(t, svc.Spec.CABundle))
	}
	if got := f.secret(t).Data; len(got) != 2 || len(got[CACertKey]) == 0 || len(got[CAKeyKey]) == 0 {
		t.Fatalf("secret keys %v; want exactly %s and %s", keys(got), CACertKey, CAKeyKey)
	}
	if l.n != 1 {
		t.Fatalf("listener told %d times; want 1", l.n)
	}

	// A second sync changes nothing.
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	again, _ := c.CurrentCertKeyContent()
	if string(again) != string(certPEM) || l.n != 1 {
		t.Fatalf("a sync with nothing due issued a new certificate (listener told %d times)", l.n)
	}
}

func TestReplicasShareTheCA(t *testing.T) {
	f := newFixture(t, emptySecret(), false)
	a, b := f.controller(testOptions), f.controller(testOptions)
	for _, c := range []*Controller{a, b} {
		if err := c.RunOnce(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for i, c := range []*Controller{a, b} {
		certPEM, _ := c.CurrentCertKeyContent()
		if err := f.verify(t, certPEM); err != nil {
			t.Fatalf("replica %d: %v", i, err)
		}
	}
	if n := bundleSize(t, f.apiService(t).Spec.CABundle); n != 1 {
		t.Fatalf("%d CAs in the bundle; want 1", n)
	}
}

func TestServingCertificateRenewedAfterTwoThirds(t *testing.T) {
	f := newFixture(t, emptySecret(), false)
	c := f.controller(testOptions)
	l := &countingListener{}
	c.AddListener(l)
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	first, _ := c.CurrentCertKeyContent()

	f.clock.Step(testOptions.Validity*2/3 - time.Second)
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := c.CurrentCertKeyContent(); string(got) != string(first) {
		t.Fatal("renewed before two thirds of the validity")
	}
	f.clock.Step(2 * time.Second)
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	renewed, _ := c.CurrentCertKeyContent()
	if string(renewed) == string(first) || l.n != 2 {
		t.Fatalf("not renewed after two thirds of the validity (listener told %d times; want 2)", l.n)
	}
	for _, cert := range [][]byte{first, renewed} {
		if err := f.verify(t, cert); err != nil {
			t.Fatalf("a certificate still in use no longer verifies: %v", err)
		}
	}
}

// TestCARotation walks a CA rotation and checks at every step that every
// certificate a replica may still serve verifies against the caBundle.
func TestCARotation(t *testing.T) {
	f := newFixture(t, emptySecret(), false)
	opts := testOptions
	stable := f.controller(opts)
	if err := stable.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	oldCert, _ := stable.CurrentCertKeyContent()
	oldCA := f.secret(t).Data[CACertKey]

	// Rotation starts when the CA expires within CARotateBefore: make it
	// start now.
	opts.CARotateBefore = 11 * 365 * 24 * time.Hour
	rotating := f.controller(opts)
	if err := rotating.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	data := f.secret(t).Data
	if len(data[NextCACertKey]) == 0 || string(data[CACertKey]) != string(oldCA) {
		t.Fatalf("rotation start: secret keys %v; want the old CA signing and a next CA", keys(data))
	}
	if n := bundleSize(t, f.apiService(t).Spec.CABundle); n != 2 {
		t.Fatalf("%d CAs in the bundle during the rotation; want 2", n)
	}
	newCert, _ := rotating.CurrentCertKeyContent()
	if !signedBy(t, newCert, oldCA) {
		t.Fatal("the next CA signed before its activation delay")
	}

	f.clock.Step(opts.CAActivationDelay)
	if err := rotating.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	data = f.secret(t).Data
	if string(data[PreviousCACertKey]) != string(oldCA) || len(data[NextCACertKey]) != 0 {
		t.Fatalf("after the activation delay: secret keys %v; want the old CA as previous and no next", keys(data))
	}
	promoted, _ := rotating.CurrentCertKeyContent()
	if !signedBy(t, promoted, data[CACertKey]) {
		t.Fatal("the promoted CA does not sign")
	}
	// The replica that has not synced yet still serves its old certificate:
	// both verify.
	for name, cert := range map[string][]byte{"old": oldCert, "promoted": promoted} {
		if err := f.verify(t, cert); err != nil {
			t.Fatalf("%s certificate: %v", name, err)
		}
	}
	if err := stable.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got, _ := stable.CurrentCertKeyContent(); !signedBy(t, got, data[CACertKey]) {
		t.Fatal("a replica kept a certificate of the previous CA after the promotion")
	}
}

func TestMissingOrBrokenSecret(t *testing.T) {
	for name, secret := range map[string]*corev1.Secret{
		"missing": nil,
		"key without certificate": {
			ObjectMeta: metav1.ObjectMeta{Namespace: testNamespace, Name: testSecret},
			Data:       map[string][]byte{CAKeyKey: []byte("x")},
		},
	} {
		t.Run(name, func(t *testing.T) {
			f := newFixture(t, secret, false)
			err := f.controller(testOptions).RunOnce(context.Background())
			if err == nil || !strings.Contains(err.Error(), testSecret) {
				t.Fatalf("got %v; want an error naming the secret", err)
			}
			if svc := f.apiService(t); len(svc.Spec.CABundle) != 0 {
				t.Fatal("wrote a caBundle without a CA")
			}
		})
	}
}

func signedBy(t *testing.T, certPEM, caPEM []byte) bool {
	t.Helper()
	leaf, err := certutil.ParseCertsPEM(certPEM)
	if err != nil {
		t.Fatal(err)
	}
	ca, err := certutil.ParseCertsPEM(caPEM)
	if err != nil {
		t.Fatal(err)
	}
	return leaf[0].CheckSignatureFrom(ca[0]) == nil
}

func keys(m map[string][]byte) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	return ks
}

// TestNoBundleFromAChangedSecret: a replica whose Secret changed while it
// synced (another replica rotated) writes nothing into the APIService.
func TestNoBundleFromAChangedSecret(t *testing.T) {
	f := newFixture(t, emptySecret(), false)
	f.aggregator.PrependReactor("get", "apiservices", func(clienttesting.Action) (bool, runtime.Object, error) {
		s := f.secret(t)
		s.ResourceVersion = "changed-by-another-replica"
		if _, err := f.core.CoreV1().Secrets(testNamespace).Update(context.Background(), s, metav1.UpdateOptions{}); err != nil {
			t.Fatal(err)
		}
		return false, nil, nil
	})
	err := f.controller(testOptions).RunOnce(context.Background())
	if !errors.Is(err, errSecretChanged) {
		t.Fatalf("got %v; want %v", err, errSecretChanged)
	}
	if svc := f.apiService(t); len(svc.Spec.CABundle) != 0 {
		t.Fatal("wrote a caBundle from a Secret that had changed")
	}
}
