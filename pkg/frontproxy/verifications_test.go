package frontproxy

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"
)

// fileCA is k8s.io/apiserver's file-based CA provider over a file the test
// rewrites; reload loads it as the provider's own controller would.
type fileCA struct {
	*dynamiccertificates.DynamicFileCAContent
	path string
}

func newFileCA(t *testing.T, pem []byte) *fileCA {
	t.Helper()
	path := filepath.Join(t.TempDir(), "ca.crt")
	if err := os.WriteFile(path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	p, err := dynamiccertificates.NewDynamicCAContentFromFile("request-header", path)
	if err != nil {
		t.Fatal(err)
	}
	return &fileCA{DynamicFileCAContent: p, path: path}
}

// reload makes the provider load pem, notifying its listeners if it
// changed.
func (c *fileCA) reload(t *testing.T, pem []byte) {
	t.Helper()
	if err := os.WriteFile(c.path, pem, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := c.RunOnce(context.Background()); err != nil {
		t.Fatal(err)
	}
}

// silentCA is a CA provider that changes its bundle without telling its
// listeners.
type silentCA struct {
	current atomic.Pointer[dynamiccertificates.DynamicFileCAContent]
}

func newSilentCA(t *testing.T, pem []byte) *silentCA {
	c := &silentCA{}
	c.set(t, pem)
	return c
}

func (c *silentCA) set(t *testing.T, pem []byte) {
	c.current.Store(newFileCA(t, pem).DynamicFileCAContent)
}

func (c *silentCA) Name() string                             { return "silent" }
func (c *silentCA) AddListener(dynamiccertificates.Listener) {}
func (c *silentCA) CurrentCABundleContent() []byte           { return c.current.Load().CurrentCABundleContent() }
func (c *silentCA) VerifyOptions() (x509.VerifyOptions, bool) {
	return c.current.Load().VerifyOptions()
}

// at sets the clock of v to t.
func (v *Verifications) at(t time.Time) *Verifications {
	v.now = func() time.Time { return t }
	return v
}

// counted reads the verifications counter of result.
func counted(t *testing.T, result string) float64 {
	t.Helper()
	n, err := testutil.GetCounterMetricValue(verifications.WithLabelValues(result))
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// results returns how the verifications counter grew since before.
func results(t *testing.T, before map[string]float64) map[string]float64 {
	t.Helper()
	out := map[string]float64{}
	for _, r := range []string{resultCached, resultVerified, resultFailed} {
		if d := counted(t, r) - before[r]; d != 0 {
			out[r] = d
		}
	}
	return out
}

func snapshot(t *testing.T) map[string]float64 {
	return map[string]float64{
		resultCached:   counted(t, resultCached),
		resultVerified: counted(t, resultVerified),
		resultFailed:   counted(t, resultFailed),
	}
}

func expectResults(t *testing.T, before map[string]float64, want map[string]float64) {
	t.Helper()
	got := results(t, before)
	if len(got) != len(want) {
		t.Fatalf("verification results %v, want %v", got, want)
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("verification results %v, want %v", got, want)
		}
	}
}

func TestMain(m *testing.M) {
	if err := RegisterMetrics(legacyregistry.Register); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

func TestVerificationsRemembersAVerifiedChain(t *testing.T) {
	ca := newRootCA(t, "front-proxy-ca")
	leaf := ca.issue(t, certSpec{commonName: "front-proxy-client"})
	v := NewVerifications(newFileCA(t, bundle(t, ca)), DefaultCacheSize)

	before := snapshot(t)
	for range 3 {
		if !v.Verify(chain(leaf)) {
			t.Fatal("a chain of the CA did not verify")
		}
	}
	expectResults(t, before, map[string]float64{resultVerified: 1, resultCached: 2})
}

func TestVerificationsRefuseWhatX509Refuses(t *testing.T) {
	ca := newRootCA(t, "front-proxy-ca")
	foreign := newRootCA(t, "front-proxy-ca")
	now := time.Now()
	intermediate := ca.issue(t, certSpec{commonName: "intermediate", isCA: true})
	tests := []struct {
		name  string
		chain []*x509.Certificate
	}{
		{"another CA with the same name", chain(foreign.issue(t, certSpec{commonName: "front-proxy-client"}))},
		{"expired", chain(ca.issue(t, certSpec{commonName: "front-proxy-client", notBefore: now.Add(-2 * time.Hour), notAfter: now.Add(-time.Hour)}))},
		{"not yet valid", chain(ca.issue(t, certSpec{commonName: "front-proxy-client", notBefore: now.Add(time.Hour)}))},
		{"server certificate", chain(ca.issue(t, certSpec{commonName: "front-proxy-client", usage: x509.ExtKeyUsageServerAuth}))},
		{"intermediate not presented", chain(intermediate.issue(t, certSpec{commonName: "front-proxy-client"}))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := NewVerifications(newFileCA(t, bundle(t, ca)), DefaultCacheSize)
			before := snapshot(t)
			for range 2 {
				if v.Verify(tt.chain) {
					t.Fatal("accepted")
				}
			}
			if _, err := tt.chain[0].Verify(x509.VerifyOptions{Roots: poolOf(ca), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}}); err == nil {
				t.Fatal("crypto/x509 accepts the chain: the case tests nothing")
			}
			expectResults(t, before, map[string]float64{resultFailed: 2})
			if v.Len() != 0 {
				t.Fatalf("%d chains remembered, want 0", v.Len())
			}
		})
	}
}

func poolOf(cas ...*issuer) *x509.CertPool {
	pool := x509.NewCertPool()
	for _, ca := range cas {
		pool.AddCert(ca.cert)
	}
	return pool
}

func TestVerificationsIntermediates(t *testing.T) {
	ca := newRootCA(t, "front-proxy-ca")
	intermediate := ca.issue(t, certSpec{commonName: "intermediate", isCA: true})
	leaf := intermediate.issue(t, certSpec{commonName: "front-proxy-client"})
	v := NewVerifications(newFileCA(t, bundle(t, ca)), DefaultCacheSize)

	before := snapshot(t)
	if !v.Verify(chain(leaf, intermediate)) {
		t.Fatal("leaf and intermediate did not verify")
	}
	if !v.Verify(chain(leaf, intermediate)) {
		t.Fatal("leaf and intermediate did not verify from the cache")
	}
	// The leaf alone is another chain: it is not answered from the entry of
	// the longer one, and fails.
	if v.Verify(chain(leaf)) {
		t.Fatal("the leaf without its intermediate verified")
	}
	expectResults(t, before, map[string]float64{resultVerified: 1, resultCached: 1, resultFailed: 1})
}

func TestVerificationsFollowValidity(t *testing.T) {
	ca := newRootCA(t, "front-proxy-ca")
	now := time.Now().Truncate(time.Second)
	// The intermediate expires before the leaf: the chain's window ends
	// with the intermediate.
	intermediate := ca.issue(t, certSpec{commonName: "intermediate", isCA: true, notBefore: now.Add(-time.Hour), notAfter: now.Add(time.Hour)})
	leaf := intermediate.issue(t, certSpec{commonName: "front-proxy-client", notBefore: now.Add(-30 * time.Minute), notAfter: now.Add(2 * time.Hour)})
	v := NewVerifications(newFileCA(t, bundle(t, ca)), DefaultCacheSize)
	c := chain(leaf, intermediate)

	steps := []struct {
		at   time.Time
		want bool
		// result is how the answer was found.
		result string
	}{
		{now, true, resultVerified},
		{now.Add(time.Hour), true, resultCached},                          // the last instant crypto/x509 accepts
		{now.Add(time.Hour + time.Nanosecond), false, resultFailed},       // the intermediate has expired
		{now.Add(-30 * time.Minute), true, resultCached},                  // the leaf's first instant (the clock went back)
		{now.Add(-30*time.Minute - time.Nanosecond), false, resultFailed}, // before it
	}
	for _, s := range steps {
		before := snapshot(t)
		if got := v.at(s.at).Verify(c); got != s.want {
			t.Fatalf("at %s: Verify = %v, want %v", s.at, got, s.want)
		}
		expectResults(t, before, map[string]float64{s.result: 1})
	}
}

func TestVerificationsForgetOnReload(t *testing.T) {
	frontProxyCA := newRootCA(t, "front-proxy-ca")
	otherCA := newRootCA(t, "other-front-proxy-ca")
	ours := frontProxyCA.issue(t, certSpec{commonName: "front-proxy-client"})
	theirs := otherCA.issue(t, certSpec{commonName: "front-proxy-client"})
	ca := newFileCA(t, bundle(t, frontProxyCA, otherCA))
	v := NewVerifications(ca, DefaultCacheSize)

	for range 2 {
		if !v.Verify(chain(ours)) || !v.Verify(chain(theirs)) {
			t.Fatal("chains of both CAs in the bundle did not verify")
		}
	}
	reloads, _ := testutil.GetCounterMetricValue(caReloads)

	ca.reload(t, bundle(t, frontProxyCA))
	if got, _ := testutil.GetCounterMetricValue(caReloads); got != reloads+1 {
		t.Fatalf("%v reloads seen, want %v", got, reloads+1)
	}
	if v.Len() != 0 {
		t.Fatalf("%d chains remembered after the reload, want 0", v.Len())
	}
	before := snapshot(t)
	if v.Verify(chain(theirs)) {
		t.Fatal("a chain of the removed CA verified after the reload")
	}
	if !v.Verify(chain(ours)) {
		t.Fatal("a chain of the remaining CA did not verify after the reload")
	}
	expectResults(t, before, map[string]float64{resultFailed: 1, resultVerified: 1})
}

func TestVerificationsCompareTheBundleToo(t *testing.T) {
	frontProxyCA := newRootCA(t, "front-proxy-ca")
	otherCA := newRootCA(t, "other-front-proxy-ca")
	theirs := otherCA.issue(t, certSpec{commonName: "front-proxy-client"})
	ca := newSilentCA(t, bundle(t, frontProxyCA, otherCA))
	v := NewVerifications(ca, DefaultCacheSize)
	if !v.Verify(chain(theirs)) {
		t.Fatal("did not verify")
	}
	if !v.Verify(chain(theirs)) {
		t.Fatal("did not verify from the cache")
	}

	// A provider that does not tell its listeners is still followed: the
	// remembered bundle differs from the current one.
	ca.set(t, bundle(t, frontProxyCA))
	before := snapshot(t)
	if v.Verify(chain(theirs)) {
		t.Fatal("a chain of the removed CA verified")
	}
	expectResults(t, before, map[string]float64{resultFailed: 1})
}

func TestVerificationsForgetOnEveryReload(t *testing.T) {
	// A bundle that changes and changes back: the verification against the
	// first copy is not reused, though the bytes are equal again.
	frontProxyCA := newRootCA(t, "front-proxy-ca")
	otherCA := newRootCA(t, "other-front-proxy-ca")
	leaf := frontProxyCA.issue(t, certSpec{commonName: "front-proxy-client"})
	original := bundle(t, frontProxyCA)
	ca := newFileCA(t, original)
	v := NewVerifications(ca, DefaultCacheSize)
	if !v.Verify(chain(leaf)) {
		t.Fatal("did not verify")
	}
	ca.reload(t, bundle(t, frontProxyCA, otherCA))
	ca.reload(t, original)
	before := snapshot(t)
	if !v.Verify(chain(leaf)) {
		t.Fatal("did not verify")
	}
	expectResults(t, before, map[string]float64{resultVerified: 1})
}

func TestVerificationsAreBounded(t *testing.T) {
	ca := newRootCA(t, "front-proxy-ca")
	v := NewVerifications(newFileCA(t, bundle(t, ca)), 2)
	for i := range 5 {
		if !v.Verify(chain(ca.issue(t, certSpec{commonName: "front-proxy-client"}))) {
			t.Fatalf("chain %d did not verify", i)
		}
	}
	if v.Len() != 2 {
		t.Fatalf("%d chains remembered, want 2", v.Len())
	}
}

func TestVerificationsWithoutCA(t *testing.T) {
	// A ConfigMap-based provider answers no verify options until it loaded
	// the ConfigMap.
	ca := newRootCA(t, "front-proxy-ca")
	v := NewVerifications(emptyCA{}, DefaultCacheSize)
	if v.Verify(chain(ca.issue(t, certSpec{commonName: "front-proxy-client"}))) {
		t.Fatal("verified without a CA bundle")
	}
	if v.Verify(nil) {
		t.Fatal("verified an empty chain")
	}
}

type emptyCA struct{}

func (emptyCA) Name() string                              { return "empty" }
func (emptyCA) AddListener(dynamiccertificates.Listener)  {}
func (emptyCA) CurrentCABundleContent() []byte            { return nil }
func (emptyCA) VerifyOptions() (x509.VerifyOptions, bool) { return x509.VerifyOptions{}, false }

func TestChainKey(t *testing.T) {
	ca := newRootCA(t, "front-proxy-ca")
	a := ca.issue(t, certSpec{commonName: "a"})
	b := ca.issue(t, certSpec{commonName: "b"})
	keys := map[string]string{}
	for name, c := range map[string][]*x509.Certificate{
		"a": chain(a), "b": chain(b), "a+b": chain(a, b), "b+a": chain(b, a), "a+ca": chain(a, ca),
	} {
		k := chainKey(c)
		if other, ok := keys[k]; ok {
			t.Fatalf("chains %s and %s share a key", name, other)
		}
		keys[k] = name
	}
	if chainKey(chain(a)) != string(a.cert.Raw) {
		t.Fatal("the key of one certificate is not its DER bytes")
	}
}
