// Package eventsource turns Kubernetes Warning Events into Signals: it
// watches core/v1 Events and submits one Signal per observed Event version
// through kube-apiserver, like any other sender. See docs/event-source.md.
package eventsource

import (
	"strconv"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals/validation"
)

// SignalSource is the spec.source of every Signal the event source submits.
const SignalSource = "kubernetes-event"

// Count is the occurrence number of the latest version of ev: series.count
// for events.k8s.io-style series (which start at 2), else count, and 1 for
// an Event that carries neither.
func Count(ev *corev1.Event) int32 {
	switch {
	case ev.Series != nil && ev.Series.Count > 0:
		return ev.Series.Count
	case ev.Count > 0:
		return ev.Count
	default:
		return 1
	}
}

// IdempotencyKey names one version of ev: its UID and occurrence number.
// The server counts a key at most once per RemediationRequest, so
// submitting a version again, after a retry or a restart, counts nothing.
func IdempotencyKey(ev *corev1.Event) string {
	return SignalSource + "/" + string(ev.UID) + "/" + strconv.FormatInt(int64(Count(ev)), 10)
}

// LastObserved is when ev last occurred, from whichever of its timestamps
// is set.
func LastObserved(ev *corev1.Event) metav1.Time {
	switch {
	case ev.Series != nil && !ev.Series.LastObservedTime.IsZero():
		return metav1.Time{Time: ev.Series.LastObservedTime.Time}
	case !ev.LastTimestamp.IsZero():
		return ev.LastTimestamp
	case !ev.EventTime.IsZero():
		return metav1.Time{Time: ev.EventTime.Time}
	case !ev.FirstTimestamp.IsZero():
		return ev.FirstTimestamp
	default:
		return ev.CreationTimestamp
	}
}

// firstObserved is when ev first occurred.
func firstObserved(ev *corev1.Event) metav1.Time {
	switch {
	case !ev.FirstTimestamp.IsZero():
		return ev.FirstTimestamp
	case !ev.EventTime.IsZero():
		return metav1.Time{Time: ev.EventTime.Time}
	default:
		return ev.CreationTimestamp
	}
}

// SignalFor is the Signal for the current version of a Warning Event: the
// reason as its name, the involved object as its target (its UID
// included, which the server compares with the live object where it reads
// it), the message (cut to the allowed length) as its description.
func SignalFor(ev *corev1.Event) *signalsv1.Signal {
	startsAt := firstObserved(ev)
	return &signalsv1.Signal{Spec: signalsv1.SignalSpec{
		Source:      SignalSource,
		Name:        ev.Reason,
		Severity:    "warning",
		Description: description(ev.Message),
		Target: signalsv1.TargetReference{
			APIVersion: ev.InvolvedObject.APIVersion,
			Kind:       ev.InvolvedObject.Kind,
			Namespace:  ev.InvolvedObject.Namespace,
			Name:       ev.InvolvedObject.Name,
			UID:        ev.InvolvedObject.UID,
		},
		StartsAt:       &startsAt,
		IdempotencyKey: IdempotencyKey(ev),
	}}
}

// description cuts an Event message, on a rune boundary, to the length a
// Signal description may have, marking the cut with an ellipsis.
func description(msg string) string {
	if len(msg) <= validation.MaxDescriptionLength {
		return msg
	}
	const ellipsis = "..."
	return validation.Truncate(msg, validation.MaxDescriptionLength-len(ellipsis)) + ellipsis
}
