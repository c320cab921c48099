package alertmanager

import (
	"k8s.io/component-base/metrics"
)

var (
	alertsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "alertmanager_alerts_total",
		Help:           "Alerts of Alertmanager notifications by outcome: created, deduplicated, alreadycounted, held, blocked, resolved, noactive, rejected (this alert was Rejected, or the notification was refused whole with 422 or by admission), failed (the notification was answered 5xx for Alertmanager to retry) and truncated (left out by Alertmanager's max_alerts).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"outcome"})
	notificationsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "alertmanager_notifications_total",
		Help:           "Alertmanager notifications by HTTP status code of the answer, including those answered before the storage runs (401, 403, 429, 400, 413, 504).",
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
