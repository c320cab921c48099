package alertmanager

import (
	"sync"

	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
)

var (
	alertsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "alertmanager_alerts_total",
		Help:           "Alerts of Alertmanager notifications by outcome: created, deduplicated, alreadycounted, resolved, noactive, rejected (a 4xx: the whole batch was invalid, or this alert was refused, e.g. 403 for a namespace the sender may not signal about) and failed (the batch was answered 5xx for Alertmanager to retry).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"outcome"})
	notificationsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "alertmanager_notifications_total",
		Help:           "Alertmanager notifications by HTTP status code of the answer.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"code"})
)

var registerOnce sync.Once

// RegisterMetrics registers the storage's metrics with the legacy registry,
// which the server's /metrics serves.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(alertsTotal, notificationsTotal)
	})
}
