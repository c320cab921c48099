package registry

import "k8s.io/component-base/metrics"

// Reasons a signal was denied before anything was read or written.
const (
	denialForbidden  = "forbidden"
	denialNotManaged = "namespace_not_managed"
)

var denials = metrics.NewCounterVec(&metrics.CounterOpts{
	Namespace:      "signal_apiserver",
	Name:           "signal_denials_total",
	Help:           "Signals and Alertmanager alerts denied before anything was read or written, by reason: forbidden (the sender may not signal about the namespace, 403), namespace_not_managed (outside --namespace-selector, 422).",
	StabilityLevel: metrics.ALPHA,
}, []string{"reason"})

// RegisterMetrics registers the gate's metrics with register, such as
// legacyregistry.Register for the /metrics the process serves.
func RegisterMetrics(register func(metrics.Registerable) error) error {
	return register(denials)
}
