package owner

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	resolutions = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "owner_resolutions_total",
		Help:           "Owner resolutions of signal targets by result: owner (a top-level controller), self (the target has none, or is not a Pod, ReplicaSet or Job), fallback (resolution failed; the target itself is used).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	metadataRequests = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "owner_metadata_requests_total",
		Help:           "Metadata GETs to kube-apiserver for owner resolution, by resource and result (ok, not_found, timeout, error). Cache hits and callers sharing a GET are not counted.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"resource", "result"})
)

var registerOnce sync.Once

// RegisterMetrics registers the resolver's metrics with the legacy registry.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(resolutions, metadataRequests)
	})
}
