package dedup

import (
	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// StripForCache is the transform of the RemediationRequest informer
// (cache.TransformFunc): it drops from each RemediationRequest what the
// engine never reads, before the informer stores it.
//
// Dropped: metadata.managedFields, about a third of a cached
// RemediationRequest (BenchmarkLargeCache). The engine reads names,
// resourceVersions, spec.signalFingerprint and status; it sends a cached
// RemediationRequest as the base of a status update, for which
// kube-apiserver takes the managed fields from the stored object and
// ignores those of the request; and it answers signals with what its writes
// return. Only a dry-run on an existing RemediationRequest answers from the
// cache, and so shows no managed fields.
//
// Other objects, such as cache.DeletedFinalStateUnknown, pass unchanged.
func StripForCache(obj any) (any, error) {
	if rr, ok := obj.(*remediationv1alpha1.RemediationRequest); ok {
		rr.ManagedFields = nil
	}
	return obj, nil
}
