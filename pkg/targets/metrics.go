package targets

import (
	"k8s.io/component-base/metrics"
)

var (
	misses = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "target_kind_misses_total",
		Help:           "Target kinds that kube-apiserver's cached discovery did not know, each of which asks for a refresh of discovery (rate-limited).",
		StabilityLevel: metrics.ALPHA,
	})
	refreshes = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "target_kind_discovery_refreshes_total",
		Help:           "Refreshes of kube-apiserver's discovery for resolving target kinds, by result: ok, error, limited (asked for within the minimum interval since the previous one, and not done).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
)

// RegisterMetrics registers the resolver's metrics with register, such as
// legacyregistry.Register for the /metrics the process serves.
func RegisterMetrics(register func(metrics.Registerable) error) error {
	for _, m := range []metrics.Registerable{misses, refreshes} {
		if err := register(m); err != nil {
			return err
		}
	}
	return nil
}
