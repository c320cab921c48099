package owner

import (
	"k8s.io/component-base/metrics"
)

var (
	resolutions = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "owner_resolutions_total",
		Help:           "Owner resolutions of signal targets by result: owner (a top-level controller), self (the target has none, or is not a Pod, ReplicaSet or Job), fallback (resolution failed; the target itself is used), uid_mismatch (the target is not the object of the UID the signal gives; the signal is refused).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	metadataRequests = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "owner_metadata_requests_total",
		Help:           "Metadata GETs to kube-apiserver for owner resolution, by resource and result (ok, not_found, timeout, error). Cache hits and callers sharing a GET are not counted.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"resource", "result"})
)

// RegisterMetrics registers the resolver's metrics with register, such as
// legacyregistry.Register for the /metrics the process serves.
func RegisterMetrics(register func(metrics.Registerable) error) error {
	for _, m := range []metrics.Registerable{resolutions, metadataRequests} {
		if err := register(m); err != nil {
			return err
		}
	}
	return nil
}
