package frontproxy

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

// Results of a chain verification, the label of verifications.
const (
	resultCached   = "cached"
	resultVerified = "verified"
	resultFailed   = "failed"
)

var (
	verifications = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "front_proxy_verifications_total",
		Help:           "Front-proxy client certificate chains checked against the request-header CA, by result: cached (verified before against the same CA bundle and still valid), verified (verified now and remembered), failed (did not verify; the request went to the uncached authenticators).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	caReloads = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "front_proxy_ca_reloads_total",
		Help:           "Reloads of the request-header CA bundle; each drops every remembered verification.",
		StabilityLevel: metrics.ALPHA,
	})
)

var registerOnce sync.Once

// RegisterMetrics registers the metrics of the verification cache with the
// legacy registry, which the server's /metrics serves.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(verifications, caReloads)
	})
}
