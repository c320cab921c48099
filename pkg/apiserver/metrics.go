package apiserver

import (
	"k8s.io/component-base/metrics"
)

var cacheSynced = metrics.NewGauge(&metrics.GaugeOpts{
	Namespace:      "signal_apiserver",
	Name:           "remediationrequest_cache_synced",
	Help:           "1 once the RemediationRequest informer cache has synced, 0 before; the server is not ready before.",
	StabilityLevel: metrics.ALPHA,
})

// registerServerMetrics registers the server's metrics with register, such as
// legacyregistry.Register for the /metrics the process serves.
func registerServerMetrics(register func(metrics.Registerable) error) error {
	for _, m := range []metrics.Registerable{cacheSynced} {
		if err := register(m); err != nil {
			return err
		}
	}
	return nil
}
