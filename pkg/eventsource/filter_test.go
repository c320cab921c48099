package eventsource

import (
	"errors"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
)

func TestFilterIgnore(t *testing.T) {
	now := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	event := func(typ, namespace, reason string, age time.Duration) *corev1.Event {
		return &corev1.Event{
			ObjectMeta:    metav1.ObjectMeta{Namespace: namespace},
			Type:          typ,
			Reason:        reason,
			LastTimestamp: metav1.NewTime(now.Add(-age)),
		}
	}
	all := Filter{}
	narrow := Filter{
		Namespaces:        sets.New("a", "b"),
		ExcludeNamespaces: sets.New("b"),
		Reasons:           sets.New("BackOff", "Noisy"),
		ExcludeReasons:    sets.New("Noisy"),
		MaxAge:            10 * time.Minute,
	}
	tests := []struct {
		name   string
		filter Filter
		ev     *corev1.Event
		want   string
	}{
		{"warning passes an empty filter", all, event("Warning", "x", "Anything", time.Hour), ""},
		{"normal", all, event("Normal", "x", "Anything", 0), IgnoredType},
		{"included", narrow, event("Warning", "a", "BackOff", time.Minute), ""},
		{"namespace not included", narrow, event("Warning", "c", "BackOff", 0), IgnoredNamespace},
		{"namespace excluded wins", narrow, event("Warning", "b", "BackOff", 0), IgnoredNamespace},
		{"reason not included", narrow, event("Warning", "a", "Failed", 0), IgnoredReason},
		{"reason excluded wins", narrow, event("Warning", "a", "Noisy", 0), IgnoredReason},
		{"too old", narrow, event("Warning", "a", "BackOff", 11*time.Minute), IgnoredAge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.filter.Ignore(tt.ev, now); got != tt.want {
				t.Errorf("Ignore() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLastObservedSeries(t *testing.T) {
	at := time.Date(2026, 1, 1, 12, 0, 0, 0, time.UTC)
	ev := &corev1.Event{
		LastTimestamp: metav1.NewTime(at.Add(-time.Hour)),
		Series:        &corev1.EventSeries{Count: 2, LastObservedTime: metav1.NewMicroTime(at)},
	}
	if got := LastObserved(ev); !got.Time.Equal(at) {
		t.Errorf("LastObserved() = %v, want the series' %v", got, at)
	}
}

func TestFieldSelector(t *testing.T) {
	got := fieldSelector(&Filter{ExcludeNamespaces: sets.New("kube-system", "b")})
	if want := "type=Warning,metadata.namespace!=b,metadata.namespace!=kube-system"; got != want {
		t.Errorf("fieldSelector() = %q, want %q", got, want)
	}
}

func TestRetriable(t *testing.T) {
	gr := schema.GroupResource{Group: "signals.remediation.io", Resource: "signals"}
	tests := []struct {
		err  error
		want bool
	}{
		{errors.New("connection refused"), true},
		{apierrors.NewServiceUnavailable("down"), true},
		{apierrors.NewInternalError(errors.New("boom")), true},
		{apierrors.NewTooManyRequests("slow down", 1), true},
		{apierrors.NewForbidden(gr, "", errors.New("no RBAC yet")), true},
		{apierrors.NewNotFound(gr, ""), true},
		{apierrors.NewConflict(gr, "", errors.New("conflict")), true},
		{apierrors.NewBadRequest("bad"), false},
		{apierrors.NewInvalid(schema.GroupKind{Group: gr.Group, Kind: "Signal"}, "", nil), false},
		{apierrors.NewRequestEntityTooLargeError("large"), false},
	}
	for _, tt := range tests {
		if got := retriable(tt.err); got != tt.want {
			t.Errorf("retriable(%v) = %v, want %v", tt.err, got, tt.want)
		}
	}
}
