package alertmanager

import (
	"k8s.io/component-base/metrics"
)

var (
	alertsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "alertmanager_alerts_total",
		Help:           "Alerts of Alertmanager notifications by outcome: created, deduplicated, alreadycounted, held, blocked, resolved, noactive, rejected (a 4xx: the whole batch was invalid, or this alert was refused, e.g. 403 for a namespace the sender may not signal about) and failed (the batch was answered 5xx for Alertmanager to retry).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"outcome"})
	notificationsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "alertmanager_notifications_total",
		Help:           "Alertmanager notifications by HTTP status code of the answer.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"code"})
)

// RegisterMetrics registers the storage's metrics with register, such as
// legacyregistry.Register for the /metrics the process serves.
func RegisterMetrics(register func(metrics.Registerable) error) error {
	for _, m := range []metrics.Registerable{alertsTotal, notificationsTotal} {
		if err := register(m); err != nil {
			return err
		}
	}
	return nil
}
