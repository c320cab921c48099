package eventsource

import (
	"context"
	"slices"
	"sync"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	kubefake "k8s.io/client-go/kubernetes/fake"
	clienttesting "k8s.io/client-go/testing"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/component-base/metrics/testutil"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	signalsfake "github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/fake"
)

// newTestSource returns a Source whose submissions answer with err, or
// succeed if err is nil, and the idempotency keys it submitted.
func newTestSource(t *testing.T, qps float64, burst int, err error) (*Source, *[]string) {
	t.Helper()
	var keys []string
	signals := signalsfake.NewSimpleClientset()
	signals.PrependReactor("create", "signals", func(a clienttesting.Action) (bool, runtime.Object, error) {
		keys = append(keys, a.(clienttesting.CreateAction).GetObject().(*signalsv1.Signal).Spec.IdempotencyKey)
		if err != nil {
			return true, nil, err
		}
		return true, &remediationv1alpha1.RemediationRequest{ObjectMeta: metav1.ObjectMeta{
			Annotations: map[string]string{signalsv1.AnnotationOutcome: "Deduplicated"},
		}}, nil
	})
	s, newErr := New(Config{
		Kube:           kubefake.NewClientset(),
		Signals:        signals,
		PerObjectQPS:   qps,
		PerObjectBurst: burst,
		Workers:        1,
		RetryBaseDelay: time.Hour,
		RetryMaxDelay:  time.Hour,
	})
	if newErr != nil {
		t.Fatal(newErr)
	}
	t.Cleanup(s.queue.ShutDown)
	return s, &keys
}

// store puts version count of an Event about app into the informer's cache.
func store(t *testing.T, s *Source, name string, count int32) {
	t.Helper()
	ev := &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: "ns", Name: name, UID: types.UID("uid-" + name)},
		InvolvedObject: corev1.ObjectReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "ns", Name: "app"},
		Type:           corev1.EventTypeWarning,
		Reason:         "BackOff",
		Count:          count,
	}
	if err := s.informer.GetStore().Update(ev); err != nil {
		t.Fatal(err)
	}
}

func TestProcessSubmitsEachVersionOnce(t *testing.T) {
	s, keys := newTestSource(t, 1000, 1000, nil)
	ctx := context.Background()
	store(t, s, "e", 1)
	s.process(ctx, "ns/e")
	s.process(ctx, "ns/e") // an update that did not bump the count
	store(t, s, "e", 4)
	s.process(ctx, "ns/e")
	if want := []string{"kubernetes-event/uid-e/1", "kubernetes-event/uid-e/4"}; !slices.Equal(*keys, want) {
		t.Errorf("submitted %q, want %q", *keys, want)
	}
}

func TestProcessDelaysBeyondThePerObjectLimit(t *testing.T) {
	s, keys := newTestSource(t, 0.001, 1, nil)
	ctx := context.Background()
	store(t, s, "a", 1)
	store(t, s, "b", 1) // another Event about the same object
	s.process(ctx, "ns/a")
	s.process(ctx, "ns/b")
	if want := []string{"kubernetes-event/uid-a/1"}; !slices.Equal(*keys, want) {
		t.Errorf("submitted %q, want %q", *keys, want)
	}
	// Delayed, not dropped and not a retry: it waits in the queue.
	if n := s.queue.NumRequeues("ns/b"); n != 0 {
		t.Errorf("NumRequeues = %d, want 0", n)
	}
	if v, ok := s.submitted["ns/b"]; ok {
		t.Errorf("ns/b recorded as submitted: %+v", v)
	}
}

// registerMetrics registers the metrics once for the tests that read them:
// unregistered, they count nothing.
var registerMetrics sync.Once

// A 422 on spec.target.uid (the involved object was deleted and its name
// reused) is dropped, not retried, and counted as refused for uid_mismatch;
// another 422 is not.
func TestProcessRefusesUIDMismatch(t *testing.T) {
	registerMetrics.Do(func() {
		if err := RegisterMetrics(legacyregistry.Register); err != nil {
			t.Fatal(err)
		}
	})
	gk := schema.GroupKind{Group: "signals.remediation.io", Kind: "Signal"}
	for _, tt := range []struct {
		name        string
		field       *field.Path
		wantRefused float64
	}{
		{"on spec.target.uid", field.NewPath("spec", "target", "uid"), 1},
		{"on another field", field.NewPath("spec", "target", "kind"), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := apierrors.NewInvalid(gk, "", field.ErrorList{field.Invalid(tt.field, "x", "no")})
			s, keys := newTestSource(t, 1000, 1000, err)
			store(t, s, "e", 1)
			before, _ := testutil.GetCounterMetricValue(eventsRefused.WithLabelValues(RefusedUIDMismatch))
			s.process(context.Background(), "ns/e")
			after, _ := testutil.GetCounterMetricValue(eventsRefused.WithLabelValues(RefusedUIDMismatch))
			if len(*keys) != 1 || s.queue.NumRequeues("ns/e") != 0 {
				t.Errorf("submitted %q, %d requeues; want one submission, not retried", *keys, s.queue.NumRequeues("ns/e"))
			}
			if got := after - before; got != tt.wantRefused {
				t.Errorf("refused for uid_mismatch %v times, want %v", got, tt.wantRefused)
			}
		})
	}
}

func TestProcessRetriesOrDrops(t *testing.T) {
	gk := schema.GroupKind{Group: "signals.remediation.io", Kind: "Signal"}
	tests := []struct {
		name        string
		err         error
		wantRetries int
	}{
		{"unavailable is retried", apierrors.NewServiceUnavailable("down"), 1},
		{"invalid is dropped", apierrors.NewInvalid(gk, "", nil), 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s, keys := newTestSource(t, 1000, 1000, tt.err)
			store(t, s, "e", 1)
			s.process(context.Background(), "ns/e")
			if len(*keys) != 1 {
				t.Fatalf("submitted %q, want one", *keys)
			}
			if n := s.queue.NumRequeues("ns/e"); n != tt.wantRetries {
				t.Errorf("NumRequeues = %d, want %d", n, tt.wantRetries)
			}
			_, recorded := s.submitted["ns/e"]
			if recorded != (tt.wantRetries == 0) {
				t.Errorf("recorded as submitted = %v", recorded)
			}
		})
	}
}
