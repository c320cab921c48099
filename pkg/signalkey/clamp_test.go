package signalkey

import (
	"context"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
)

// TestKeyClampsImplausibleStartsAt: a startsAt far in the future or before
// 2000 becomes the time received, annotated; a plausible one is kept.
func TestKeyClampsImplausibleStartsAt(t *testing.T) {
	now := time.Date(2026, 12, 7, 12, 0, 0, 0, time.UTC)
	p := &Policy{ClusterScopedNamespace: "signals", Now: func() time.Time { return now }}
	tests := []struct {
		name     string
		startsAt time.Time
		clamped  bool
	}{
		{"an hour ago", now.Add(-time.Hour), false},
		{"within the skew", now.Add(4 * time.Minute), false},
		{"a year ahead", now.AddDate(1, 0, 0), true},
		{"1970", time.Unix(0, 0), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			startsAt := metav1.NewTime(tt.startsAt)
			sig := &signals.Signal{Spec: signals.SignalSpec{
				Source: "test", Name: "X", Status: signals.SignalStatusFiring, StartsAt: &startsAt,
				Target: signals.TargetReference{APIVersion: "v1", Kind: "Node", Name: "n"},
			}}
			s, err := p.Key(context.Background(), sig, sig.Spec.Target, false)
			if err != nil {
				t.Fatal(err)
			}
			want := tt.startsAt
			if tt.clamped {
				want = now
			}
			if !s.Spec.FiringTime.Time.Equal(want) || (s.Annotations[signalsv1.AnnotationFiringTimeClamped] != "") != tt.clamped {
				t.Errorf("firingTime %v, annotations %v; want %v, clamped %t", s.Spec.FiringTime, s.Annotations, want, tt.clamped)
			}
		})
	}
}
