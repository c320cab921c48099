package frontproxy

import (
	"bytes"
	"crypto/x509"
	"encoding/binary"
	"sync/atomic"
	"time"

	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/utils/lru"
)

// DefaultCacheSize bounds the chains a Verifications remembers. kube-apiserver
// presents one front-proxy certificate per instance, two while it rotates;
// a few dozen cover any control plane.
const DefaultCacheSize = 64

// Verifications remembers which client certificate chains verified against
// the current CA bundle of a CA provider, so that an unchanged chain is
// verified once rather than on every request.
//
// An entry is keyed by the exact DER bytes of the presented chain and is
// used only while all of these hold:
//   - the provider's CA bundle has the very bytes the chain was verified
//     against, and no reload was announced since (the provider's listeners);
//   - now lies inside the validity window of every certificate of a chain
//     that the verification found.
//
// Only successful verifications are remembered. Anything else is a miss,
// and a miss verifies exactly as k8s.io/apiserver's x509 verifier does.
type Verifications struct {
	ca  dynamiccertificates.CAContentProvider
	now func() time.Time
	// generation counts the reloads the provider announced.
	generation atomic.Uint64
	entries    *lru.Cache
}

// verified is one remembered verification.
type verified struct {
	generation uint64
	// caBundle is the CA bundle content the chain was verified against.
	caBundle []byte
	// windows are the validity windows of the chains Verify found: the
	// latest NotBefore and the earliest NotAfter of the certificates of
	// each.
	windows []window
}

type window struct{ notBefore, notAfter time.Time }

// covers reports whether crypto/x509 would find every certificate of the
// window's chain valid at t: it refuses t before NotBefore or after NotAfter.
func (w window) covers(t time.Time) bool {
	return !t.Before(w.notBefore) && !t.After(w.notAfter)
}

// NewVerifications returns an empty cache of at most size verifications
// against ca's bundle, and registers it as a listener of ca. Call it before
// ca runs: providers do not guard their listener lists.
func NewVerifications(ca dynamiccertificates.CAContentProvider, size int) *Verifications {
	v := &Verifications{ca: ca, now: time.Now, entries: lru.New(size)}
	ca.AddListener(v)
	return v
}

// Enqueue is called by the CA provider after it loaded a new bundle: every
// remembered verification is dropped.
func (v *Verifications) Enqueue() {
	v.generation.Add(1)
	v.entries.Clear()
	caReloads.Inc()
}

// Verify reports whether chain (a leaf and the intermediates the client
// sent) verifies against the provider's current CA bundle, now. It answers
// from the cache when it can, else verifies as
// k8s.io/apiserver/pkg/authentication/request/x509.Verifier does and
// remembers a success.
func (v *Verifications) Verify(chain []*x509.Certificate) bool {
	if len(chain) == 0 {
		return false
	}
	key := chainKey(chain)
	now := v.now()
	// Read before the verify options: a bundle that changes in between is
	// then seen below, and the result is not remembered.
	generation := v.generation.Load()
	caBundle := v.ca.CurrentCABundleContent()
	if e, ok := v.entries.Get(key); ok {
		if e := e.(*verified); e.generation == generation && bytes.Equal(e.caBundle, caBundle) && covers(e.windows, now) {
			verifications.WithLabelValues(resultCached).Inc()
			return true
		}
	}

	opts, ok := v.ca.VerifyOptions()
	if !ok {
		// No CA bundle yet: nothing can be verified.
		verifications.WithLabelValues(resultFailed).Inc()
		return false
	}
	if opts.Intermediates == nil && len(chain) > 1 {
		opts.Intermediates = x509.NewCertPool()
		for _, intermediate := range chain[1:] {
			opts.Intermediates.AddCert(intermediate)
		}
	}
	opts.CurrentTime = now
	chains, err := chain[0].Verify(opts)
	if err != nil {
		verifications.WithLabelValues(resultFailed).Inc()
		return false
	}
	verifications.WithLabelValues(resultVerified).Inc()
	if v.generation.Load() == generation && bytes.Equal(v.ca.CurrentCABundleContent(), caBundle) {
		v.entries.Add(key, &verified{generation: generation, caBundle: caBundle, windows: windowsOf(chains)})
	}
	return true
}

// Len returns the number of remembered verifications.
func (v *Verifications) Len() int { return v.entries.Len() }

func covers(windows []window, t time.Time) bool {
	for _, w := range windows {
		if w.covers(t) {
			return true
		}
	}
	return false
}

func windowsOf(chains [][]*x509.Certificate) []window {
	windows := make([]window, 0, len(chains))
	for _, chain := range chains {
		w := window{notBefore: chain[0].NotBefore, notAfter: chain[0].NotAfter}
		for _, c := range chain[1:] {
			if c.NotBefore.After(w.notBefore) {
				w.notBefore = c.NotBefore
			}
			if c.NotAfter.Before(w.notAfter) {
				w.notAfter = c.NotAfter
			}
		}
		windows = append(windows, w)
	}
	return windows
}

// chainKey is the DER bytes of chain: a single certificate as it is, a
// longer chain with each certificate preceded by its length. No two chains
// share a key: DER starts with 0x30 (SEQUENCE), a length below 16 MiB with
// 0x00.
func chainKey(chain []*x509.Certificate) string {
	if len(chain) == 1 {
		return string(chain[0].Raw)
	}
	n := 0
	for _, c := range chain {
		n += 4 + len(c.Raw)
	}
	key := make([]byte, 0, n)
	for _, c := range chain {
		key = binary.BigEndian.AppendUint32(key, uint32(len(c.Raw)))
		key = append(key, c.Raw...)
	}
	return string(key)
}
