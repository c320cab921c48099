package signal

import (
	"strings"
	"sync"
	"time"

	"k8s.io/component-base/metrics"

	"github.com/signal-apiserver/signal-apiserver/pkg/apistatus"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
)

// Outcomes of a signal in metrics besides the dedup outcomes.
const (
	outcomeRejected = "rejected" // the sender's request: 4xx
	outcomeFailed   = "failed"   // the server could not record it: 5xx
)

// maxSources bounds the source label: senders choose spec.source freely,
// and a metric must not grow a series per typo.
const maxSources = 64

var (
	signalsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "signals_total",
		Help:           "Signals by source and outcome: created, deduplicated, alreadycounted (idempotency key counted before), held and blocked (counted on a finished RemediationRequest whose next one is held back), resolved, rejected (4xx), failed (5xx). Sources beyond the first 64 seen are counted as 'other'.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"source", "outcome"})
	intakeDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace:      "signal_apiserver",
		Name:           "signal_intake_duration_seconds",
		Help:           "Time from decoding a signal to answering it, by outcome.",
		Buckets:        metrics.ExponentialBuckets(0.0005, 2, 16),
		StabilityLevel: metrics.ALPHA,
	}, []string{"outcome"})
)

// RegisterMetrics registers the storage's metrics with register, such as
// legacyregistry.Register for the /metrics the process serves.
func RegisterMetrics(register func(metrics.Registerable) error) error {
	for _, m := range []metrics.Registerable{signalsTotal, intakeDuration} {
		if err := register(m); err != nil {
			return err
		}
	}
	return nil
}

// sources remembers which source label values are in use.
type sources struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

// label is source's label value. Only a signal that passed validation and
// authorization (claim) takes one of the maxSources slots: a refused
// request cannot fill them.
func (s *sources) label(source string, claim bool) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[source]; ok {
		return source
	}
	if !claim || len(s.seen) >= maxSources {
		return "other"
	}
	if s.seen == nil {
		s.seen = map[string]struct{}{}
	}
	s.seen[source] = struct{}{}
	return source
}

// observe records one answered signal.
func (r *REST) observe(source string, began time.Time, res *dedup.Result, err error) {
	var outcome string
	switch apistatus.Of(err) {
	case apistatus.Success:
		outcome = strings.ToLower(string(res.Outcome))
	case apistatus.Denied, apistatus.Rejected:
		outcome = outcomeRejected
	default:
		outcome = outcomeFailed
	}
	signalsTotal.WithLabelValues(r.sources.label(source, outcome != outcomeRejected), outcome).Inc()
	intakeDuration.WithLabelValues(outcome).Observe(time.Since(began).Seconds())
}
