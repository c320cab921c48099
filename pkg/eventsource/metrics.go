package eventsource

import (
	"k8s.io/component-base/metrics"
)

// Submission results in metrics besides the lowercased outcomes of the
// server (created, deduplicated, alreadycounted).
const (
	resultRetried = "retried"
	resultDropped = "dropped"
)

var (
	eventsIgnored = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_event_source",
		Name:           "events_ignored_total",
		Help:           "Event versions not submitted, by the filter that ignored them: type, namespace, reason, age.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"filter"})
	eventsRefused = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_event_source",
		Name:           "events_refused_total",
		Help:           "Warning Event versions not counted because the Event may not speak about its involved object: other_namespace (the object is in another namespace than the Event) or no_namespace (no namespace, and not a Node, PersistentVolume or Namespace), both not submitted; uid_mismatch (submitted and refused by the server: the object of the involved object's UID was deleted and its name reused; also counted as dropped in submissions_total).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	submissions = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_event_source",
		Name:           "submissions_total",
		Help:           "Signal submissions by result: the server's outcome (created, deduplicated, alreadycounted, held, blocked, resolved), retried (an error worth retrying) or dropped (a 4xx that cannot succeed).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	delayed = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      "signal_event_source",
		Name:           "rate_limited_total",
		Help:           "Event versions put back in the queue because their involved object had used up its rate limit.",
		StabilityLevel: metrics.ALPHA,
	})
)

// RegisterMetrics registers the event source's metrics with register, such as
// legacyregistry.Register for the /metrics the process serves.
func RegisterMetrics(register func(metrics.Registerable) error) error {
	for _, m := range []metrics.Registerable{eventsIgnored, eventsRefused, submissions, delayed} {
		if err := register(m); err != nil {
			return err
		}
	}
	return nil
}
