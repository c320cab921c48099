package eventsource

import (
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signal-apiserver/signal-apiserver/apis/signals/validation"
)

func TestIdempotencyKey(t *testing.T) {
	tests := []struct {
		name string
		ev   corev1.Event
		want string
	}{
		{name: "no count", ev: corev1.Event{}, want: "kubernetes-event/u/1"},
		{name: "legacy count", ev: corev1.Event{Count: 7}, want: "kubernetes-event/u/7"},
		{name: "series wins", ev: corev1.Event{Count: 1, Series: &corev1.EventSeries{Count: 3}}, want: "kubernetes-event/u/3"},
		{name: "empty series", ev: corev1.Event{Count: 4, Series: &corev1.EventSeries{}}, want: "kubernetes-event/u/4"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.ev.UID = "u"
			if got := IdempotencyKey(&tt.ev); got != tt.want {
				t.Errorf("IdempotencyKey() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestSignalFor(t *testing.T) {
	first := metav1.NewTime(time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC))
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{UID: "u", Namespace: "ns"},
		InvolvedObject: corev1.ObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "app", UID: "app-uid"},
		Reason:         "BackOff",
		Message:        "restarting",
		Type:           corev1.EventTypeWarning,
		Count:          2,
		FirstTimestamp: first,
	}
	s := SignalFor(ev).Spec
	if s.Source != "kubernetes-event" || s.Name != "BackOff" || s.Severity != "warning" || s.Description != "restarting" {
		t.Errorf("SignalFor() = %+v", s)
	}
	if s.Target.APIVersion != "apps/v1" || s.Target.Kind != "Deployment" || s.Target.Namespace != "ns" || s.Target.Name != "app" || s.Target.UID != "app-uid" {
		t.Errorf("target = %+v", s.Target)
	}
	if !s.StartsAt.Equal(&first) {
		t.Errorf("startsAt = %v, want %v", s.StartsAt, first)
	}
	if s.IdempotencyKey != "kubernetes-event/u/2" {
		t.Errorf("idempotencyKey = %q", s.IdempotencyKey)
	}
}

func TestDescription(t *testing.T) {
	for _, msg := range []string{
		strings.Repeat("a", validation.MaxDescriptionLength),
		strings.Repeat("a", validation.MaxDescriptionLength+1),
		strings.Repeat("é", validation.MaxDescriptionLength),
		strings.Repeat("€", validation.MaxDescriptionLength),
	} {
		got := description(msg)
		switch {
		case len(got) > validation.MaxDescriptionLength:
			t.Errorf("description(%d bytes) has %d bytes", len(msg), len(got))
		case !utf8.ValidString(got):
			t.Errorf("description(%d bytes) is not valid UTF-8", len(msg))
		case len(msg) <= validation.MaxDescriptionLength && got != msg:
			t.Errorf("description(%d bytes) changed a message that fits", len(msg))
		case len(msg) > validation.MaxDescriptionLength && !strings.HasSuffix(got, "..."):
			t.Errorf("description(%d bytes) = ...%q, want an ellipsis", len(msg), got[len(got)-8:])
		}
	}
}
