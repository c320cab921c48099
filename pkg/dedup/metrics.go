package dedup

import (
	"k8s.io/component-base/metrics"
)

const metricsNamespace = "signal_apiserver"

// Results of a status write, the label of statusWrites.
const (
	writeSuccess  = "success"
	writeConflict = "conflict"
	writeTerminal = "terminal"
	writeDeleted  = "deleted"
	writeError    = "error"
)

var (
	statusWrites = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      metricsNamespace,
		Name:           "status_writes_total",
		Help:           "Status writes to RemediationRequests by result: success, conflict (retried on a fresh read), terminal or deleted (the signals moved on, nothing written), error.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	signalsPerWrite = metrics.NewHistogram(&metrics.HistogramOpts{
		Namespace:      metricsNamespace,
		Name:           "signals_per_status_write",
		Help:           "Signals carried by one successful status write (group commit batch size).",
		Buckets:        metrics.ExponentialBuckets(1, 2, 12),
		StabilityLevel: metrics.ALPHA,
	})
	creates = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      metricsNamespace,
		Name:           "remediationrequest_creates_total",
		Help:           "Creates of RemediationRequests by result: created, already_exists (another request or replica won), error.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	reads = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      metricsNamespace,
		Name:           "remediationrequest_reads_total",
		Help:           "GETs of RemediationRequests from kube-apiserver by reason: no_base (first write after losing a create race or an error), conflict, resolved (a Resolved signal found no active one in the cache), dry_run (a dry-run answers with the stored RemediationRequest).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	deletes = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      metricsNamespace,
		Name:           "remediationrequest_deletes_total",
		Help:           "Deletes of finished RemediationRequests, each to open the next one at its name, by result: deleted, not_found (gone already), replaced (a newer one held the name: the UID precondition failed), error.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"result"})
	blockedTotal = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      metricsNamespace,
		Name:           "remediationrequests_blocked_total",
		Help:           "Problems that became Blocked (hold=Blocked): their remediations failed too often in a row, and no new RemediationRequest opens until a person unblocks them.",
		StabilityLevel: metrics.ALPHA,
	})
	keysEvicted = metrics.NewCounter(&metrics.CounterOpts{
		Namespace:      metricsNamespace,
		Name:           "idempotency_keys_evicted_total",
		Help:           "Idempotency keys evicted from the window of a RemediationRequest because it was full; a redelivery of an evicted key is counted again.",
		StabilityLevel: metrics.ALPHA,
	})
)

// RegisterMetrics registers the engine's metrics with register, such as
// legacyregistry.Register for the /metrics the process serves.
func RegisterMetrics(register func(metrics.Registerable) error) error {
	for _, m := range []metrics.Registerable{statusWrites, signalsPerWrite, creates, reads, deletes, keysEvicted, blockedTotal} {
		if err := register(m); err != nil {
			return err
		}
	}
	return nil
}
