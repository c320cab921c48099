package signal

import (
	"errors"
	"strings"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
)

// Outcomes of a signal in metrics: the dedup outcomes, plus rejected (the
// client's mistake, 4xx) and failed (the server could not record it).
const (
	outcomeRejected = "rejected"
	outcomeFailed   = "failed"
)

// Reasons a signal was denied before anything was read or written.
const (
	denialForbidden  = "forbidden"
	denialNotManaged = "namespace_not_managed"
)

// maxSources bounds the source label: senders choose spec.source freely,
// and a metric must not grow a series per typo.
const maxSources = 64

var (
	signalsTotal = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "signals_total",
		Help:           "Signals by source and outcome: created, deduplicated, alreadycounted (idempotency key counted before), resolved, rejected (4xx), failed (5xx). Sources beyond the first 64 seen are counted as 'other'.",
		StabilityLevel: metrics.ALPHA,
	}, []string{"source", "outcome"})
	denials = metrics.NewCounterVec(&metrics.CounterOpts{
		Namespace:      "signal_apiserver",
		Name:           "signal_denials_total",
		Help:           "Signals and Alertmanager alerts denied before anything was read or written, by reason: forbidden (the sender may not signal about the namespace, 403), namespace_not_managed (outside --namespace-selector, 422).",
		StabilityLevel: metrics.ALPHA,
	}, []string{"reason"})
	intakeDuration = metrics.NewHistogramVec(&metrics.HistogramOpts{
		Namespace:      "signal_apiserver",
		Name:           "signal_intake_duration_seconds",
		Help:           "Time from decoding a signal to answering it, by outcome.",
		Buckets:        metrics.ExponentialBuckets(0.0005, 2, 16),
		StabilityLevel: metrics.ALPHA,
	}, []string{"outcome"})
)

var registerOnce sync.Once

// RegisterMetrics registers the storage's metrics with the legacy registry,
// which the server's /metrics serves.
func RegisterMetrics() {
	registerOnce.Do(func() {
		legacyregistry.MustRegister(signalsTotal, denials, intakeDuration)
	})
}

// sources remembers which source label values are in use.
type sources struct {
	mu   sync.Mutex
	seen map[string]struct{}
}

func (s *sources) label(source string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.seen[source]; ok {
		return source
	}
	if len(s.seen) >= maxSources {
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
	outcome := outcomeFailed
	switch {
	case err == nil:
		outcome = strings.ToLower(string(res.Outcome))
	case isClientError(err):
		outcome = outcomeRejected
	}
	signalsTotal.WithLabelValues(r.sources.label(source), outcome).Inc()
	intakeDuration.WithLabelValues(outcome).Observe(time.Since(began).Seconds())
}

func isClientError(err error) bool {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return false
	}
	code := status.Status().Code
	return code >= 400 && code < 500 && code != 429
}
