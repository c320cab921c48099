package eventsource

import (
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// Reasons an Event is ignored, as the filter label of the
// events_ignored_total metric.
const (
	IgnoredType      = "type"
	IgnoredNamespace = "namespace"
	IgnoredReason    = "reason"
	IgnoredAge       = "age"
)

// Filter decides which Events become Signals. Empty include sets let
// everything through; an exclusion wins over an inclusion.
type Filter struct {
	// Namespaces and ExcludeNamespaces match the namespace the Event
	// speaks about: its involved object's, or the Event's own for a
	// cluster-scoped object.
	Namespaces        sets.Set[string]
	ExcludeNamespaces sets.Set[string]
	// Reasons and ExcludeReasons match the Event's reason exactly.
	Reasons        sets.Set[string]
	ExcludeReasons sets.Set[string]
	// MaxAge ignores an Event whose latest occurrence is older than this
	// when it is seen; 0 never does. It keeps a restart, which sees every
	// stored Event again, from reopening a problem long since remediated.
	MaxAge time.Duration
}

// Ignore returns why ev is not to become a Signal at time now, or "" if it
// is.
func (f *Filter) Ignore(ev *corev1.Event, now time.Time) string {
	switch {
	case ev.Type != corev1.EventTypeWarning:
		return IgnoredType
	case f.Namespaces.Len() > 0 && !f.Namespaces.Has(targetNamespace(ev)), f.ExcludeNamespaces.Has(targetNamespace(ev)):
		return IgnoredNamespace
	case f.Reasons.Len() > 0 && !f.Reasons.Has(ev.Reason), f.ExcludeReasons.Has(ev.Reason):
		return IgnoredReason
	case f.MaxAge > 0 && now.Sub(LastObserved(ev).Time) > f.MaxAge:
		return IgnoredAge
	}
	return ""
}
