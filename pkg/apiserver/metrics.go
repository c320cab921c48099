package apiserver

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var cacheSynced = metrics.NewGauge(&metrics.GaugeOpts{
	Namespace:      "signal_apiserver",
	Name:           "remediationrequest_cache_synced",
	Help:           "1 once the RemediationRequest informer cache has synced, 0 before; the server is not ready before.",
	StabilityLevel: metrics.ALPHA,
})

var registerOnce sync.Once

func registerMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(cacheSynced)
	})
}
