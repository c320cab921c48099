package dedup

import (
	"fmt"

	"k8s.io/client-go/tools/cache"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// FingerprintIndex names the informer index of RemediationRequests by
// namespace and spec.signalFingerprint. Only RemediationRequests under
// another name than their fingerprint's (those of versions before the name
// rule) are in it: the others are found by name, and an index of every one
// would cost a third of the cache's memory.
const FingerprintIndex = "namespace/fingerprint"

// Cache is where the engine looks RemediationRequests up. It may lag behind
// the API server; the engine never relies on it for correctness.
type Cache interface {
	// Get returns the cached RemediationRequest of that name, if any.
	// Callers must not modify it.
	Get(namespace, name string) (*remediationv1alpha1.RemediationRequest, bool)
	// ByFingerprint returns the cached RemediationRequests of a fingerprint
	// in a namespace that are not at the fingerprint's name (it may return
	// that one too). Callers must not modify them.
	ByFingerprint(namespace, fingerprint string) ([]*remediationv1alpha1.RemediationRequest, error)
	// HasSynced reports whether the cache has been filled once.
	HasSynced() bool
}

// NewInformerCache indexes the RemediationRequests of informer by
// fingerprint. Call it before the informer starts.
func NewInformerCache(informer cache.SharedIndexInformer) (Cache, error) {
	err := informer.AddIndexers(cache.Indexers{FingerprintIndex: indexByFingerprint})
	if err != nil {
		return nil, fmt.Errorf("adding the fingerprint index: %w", err)
	}
	return &informerCache{informer: informer}, nil
}

type informerCache struct {
	informer cache.SharedIndexInformer
}

func (c *informerCache) Get(namespace, name string) (*remediationv1alpha1.RemediationRequest, bool) {
	obj, ok, err := c.informer.GetIndexer().GetByKey(namespace + "/" + name)
	if err != nil || !ok {
		return nil, false
	}
	rr, ok := obj.(*remediationv1alpha1.RemediationRequest)
	return rr, ok
}

func (c *informerCache) ByFingerprint(namespace, fingerprint string) ([]*remediationv1alpha1.RemediationRequest, error) {
	objs, err := c.informer.GetIndexer().ByIndex(FingerprintIndex, indexKey(namespace, fingerprint))
	if err != nil {
		return nil, err
	}
	rrs := make([]*remediationv1alpha1.RemediationRequest, 0, len(objs))
	for _, obj := range objs {
		if rr, ok := obj.(*remediationv1alpha1.RemediationRequest); ok {
			rrs = append(rrs, rr)
		}
	}
	return rrs, nil
}

func (c *informerCache) HasSynced() bool {
	return c.informer.HasSynced()
}

func indexKey(namespace, fingerprint string) string {
	return namespace + "/" + fingerprint
}

func indexByFingerprint(obj any) ([]string, error) {
	rr, ok := obj.(*remediationv1alpha1.RemediationRequest)
	if !ok || len(rr.Spec.SignalFingerprint) < remediationv1alpha1.NamePrefixLength || rr.Name == remediationv1alpha1.NameFor(rr.Spec.SignalFingerprint) {
		return nil, nil
	}
	return []string{indexKey(rr.Namespace, rr.Spec.SignalFingerprint)}, nil
}
