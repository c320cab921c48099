package frontproxy

import (
	"k8s.io/component-base/metrics"
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

// RegisterMetrics registers the verification cache's metrics with register, such as
// legacyregistry.Register for the /metrics the process serves.
func RegisterMetrics(register func(metrics.Registerable) error) error {
	for _, m := range []metrics.Registerable{verifications, caReloads} {
		if err := register(m); err != nil {
			return err
		}
	}
	return nil
}
