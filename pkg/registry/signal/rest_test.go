package signal

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/types"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
	"github.com/signal-apiserver/signal-apiserver/pkg/owner"
	"github.com/signal-apiserver/signal-apiserver/pkg/registry"
	"github.com/signal-apiserver/signal-apiserver/pkg/signalkey"
)

// recorder is a Deduplicator that remembers what it was given.
type recorder struct {
	got []dedup.Signal
	err error
}

func (r *recorder) Submit(_ context.Context, s dedup.Signal) (*dedup.Result, error) {
	r.got = append(r.got, s)
	if r.err != nil {
		return nil, r.err
	}
	return &dedup.Result{
		RemediationRequest: &remediationv1alpha1.RemediationRequest{ObjectMeta: metav1.ObjectMeta{Name: remediationv1alpha1.NameFor(s.Fingerprint), Namespace: s.Namespace}},
		Outcome:            dedup.OutcomeDeduplicated,
	}, nil
}

var received = time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC)

// options are the settings of a storage under test.
type options struct {
	ClusterID, ClusterScopedNamespace string
	Owners                            signalkey.OwnerResolver
	Authorizer                        registry.Authorizer
	Namespaces                        registry.NamespaceGate
	Now                               func() time.Time
}

func newREST(d Deduplicator, o options) *REST {
	keys := &signalkey.Policy{ClusterID: o.ClusterID, ClusterScopedNamespace: o.ClusterScopedNamespace, Owners: o.Owners, Now: o.Now}
	return NewREST(keys, &registry.Gate{Authorizer: o.Authorizer, Namespaces: o.Namespaces}, d)
}

func newStorage(d Deduplicator) *REST {
	return newREST(d, options{ClusterID: "eu-1", ClusterScopedNamespace: "remediations", Now: func() time.Time { return received }})
}

func signal(mutate func(*signals.SignalSpec)) *signals.Signal {
	s := &signals.Signal{Spec: signals.SignalSpec{
		Source: "alertmanager", Name: "NodeNotReady", Status: signals.SignalStatusFiring,
		Target: signals.TargetReference{APIVersion: "v1", Kind: "Node", Name: "worker-1"},
	}}
	if mutate != nil {
		mutate(&s.Spec)
	}
	return s
}

func TestCreateMapsTheSignal(t *testing.T) {
	started := metav1.NewTime(received.Add(-time.Minute))
	tests := []struct {
		name          string
		spec          func(*signals.SignalSpec)
		wantNamespace string
		wantFP        string
		wantFiring    metav1.Time
		wantResolved  bool
	}{
		{
			name:          "cluster-scoped target goes to the configured namespace",
			wantNamespace: "remediations",
			wantFP:        fingerprint.ForObject("eu-1", remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Node", Name: "worker-1"}),
			wantFiring:    metav1.NewTime(received),
		},
		{
			name: "namespaced target with startsAt",
			spec: func(s *signals.SignalSpec) {
				s.Target = signals.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "cart"}
				s.StartsAt = &started
			},
			wantNamespace: "shop",
			wantFP:        fingerprint.ForObject("eu-1", remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "cart"}),
			wantFiring:    started,
		},
		{
			name:          "own key, resolved",
			spec:          func(s *signals.SignalSpec) { s.Fingerprint, s.Status = "incident-42", signals.SignalStatusResolved },
			wantNamespace: "remediations",
			wantFP:        fingerprint.ForKey("incident-42"),
			wantFiring:    metav1.NewTime(received),
			wantResolved:  true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &recorder{}
			obj, err := newStorage(d).Create(context.Background(), signal(tt.spec), nil, &metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got := d.got[0]
			wantLegacy := ""
			if got.Spec.TargetResource.Name != "" && tt.wantFP != fingerprint.ForKey("incident-42") {
				r := got.Spec.TargetResource
				wantLegacy = fingerprint.LegacyForObject("eu-1", r)
			}
			if got.LegacyFingerprint != wantLegacy {
				t.Errorf("legacy fingerprint %q, want %q", got.LegacyFingerprint, wantLegacy)
			}
			if got.Namespace != tt.wantNamespace || got.Fingerprint != tt.wantFP || got.Spec.SignalFingerprint != tt.wantFP ||
				got.Resolved != tt.wantResolved || !got.Spec.FiringTime.Equal(&tt.wantFiring) || !got.ReceivedAt.Equal(received) {
				t.Errorf("submitted %+v", got)
			}
			rr := obj.(runtime.CacheableObject).GetObject().(*remediationv1alpha1.RemediationRequest)
			if rr.APIVersion != "remediation.io/v1alpha1" || rr.Kind != "RemediationRequest" || rr.Annotations[signalsv1.AnnotationOutcome] != "Deduplicated" {
				t.Errorf("answer %s/%s annotations %v", rr.APIVersion, rr.Kind, rr.Annotations)
			}
		})
	}
}

func TestCreateRejectsBeforeSubmitting(t *testing.T) {
	d := &recorder{}
	_, err := newStorage(d).Create(context.Background(), signal(func(s *signals.SignalSpec) { s.Source = "" }), nil, &metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("got %v, want 422 Invalid", err)
	}
	denied := errors.New("denied by policy")
	_, err = newStorage(d).Create(context.Background(), signal(nil), func(context.Context, runtime.Object) error { return denied }, &metav1.CreateOptions{})
	if !errors.Is(err, denied) {
		t.Fatalf("got %v, want the admission error", err)
	}
	if len(d.got) != 0 {
		t.Errorf("submitted %d signals, want 0", len(d.got))
	}
}

func TestCreateCleansTheMetadataBeforeAdmission(t *testing.T) {
	sig := signal(nil)
	sig.ObjectMeta = metav1.ObjectMeta{
		Name: "mine", Namespace: "somewhere", UID: "0c2f", CreationTimestamp: metav1.NewTime(received),
		Labels: map[string]string{"team": "platform"},
	}
	var admitted metav1.ObjectMeta
	admit := func(_ context.Context, obj runtime.Object) error {
		admitted = obj.(*signals.Signal).ObjectMeta
		return nil
	}
	if _, err := newStorage(&recorder{}).Create(context.Background(), sig, admit, &metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	want := metav1.ObjectMeta{Name: "mine", Labels: map[string]string{"team": "platform"}}
	if !equality.Semantic.DeepEqual(admitted, want) {
		t.Fatalf("admission saw metadata %+v, want %+v", admitted, want)
	}
}

func TestCreateDryRun(t *testing.T) {
	d := &recorder{}
	if _, err := newStorage(d).Create(context.Background(), signal(nil), nil, &metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}); err != nil {
		t.Fatal(err)
	}
	if !d.got[0].DryRun {
		t.Error("dry run not passed on")
	}
}

func TestEngineErrorsBecomeAPIErrors(t *testing.T) {
	tests := []struct {
		err  error
		code int32
	}{
		{dedup.ErrNoActiveRemediation, http.StatusNotFound},
		{dedup.ErrNotSynced, http.StatusServiceUnavailable},
		{fmt.Errorf("x: %w", dedup.ErrNameCollision), http.StatusConflict},
		{dedup.ErrContention, http.StatusTooManyRequests},
		{fmt.Errorf("waiting: %w", context.DeadlineExceeded), http.StatusGatewayTimeout},
		// The engine wraps kube-apiserver's retryable answers (its 403 while
		// its authorizer starts among them) in ErrUnavailable: never the
		// sender's 403 or 422 (pkg/dedup's TestUpstream).
		{fmt.Errorf("creating: %w", dedup.ErrUnavailable), http.StatusServiceUnavailable},
		{fmt.Errorf("deleting: %w", dedup.ErrPreviousBeingDeleted), http.StatusServiceUnavailable},
		{fmt.Errorf("owner: %w", signalkey.ErrOwnerLookupFailed), http.StatusServiceUnavailable},
		{errors.New("boom"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(tt.err.Error(), func(t *testing.T) {
			_, err := newStorage(&recorder{err: tt.err}).Create(context.Background(), signal(nil), nil, &metav1.CreateOptions{})
			status, ok := err.(apierrors.APIStatus)
			if !ok || status.Status().Code != tt.code {
				t.Fatalf("got %v, want code %d", err, tt.code)
			}
			// Retryable answers carry Retry-After (from RetryAfterSeconds).
			retryable := tt.code == http.StatusTooManyRequests || tt.code == http.StatusServiceUnavailable || tt.code == http.StatusGatewayTimeout
			if d := status.Status().Details; retryable && (d == nil || d.RetryAfterSeconds <= 0) {
				t.Errorf("%d without RetryAfterSeconds: %+v", tt.code, status.Status())
			}
		})
	}
}

// TestNamespaceErrors: a target namespace that cannot hold RemediationRequests
// is the sender's input (422 naming the field); the namespace of
// cluster-scoped targets is the server's configuration (503).
func TestNamespaceErrors(t *testing.T) {
	onDeployment := func(s *signals.SignalSpec) {
		s.Target = signals.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "gone", Name: "cart"}
	}
	for _, sentinel := range []error{dedup.ErrNamespaceNotFound, dedup.ErrNamespaceTerminating} {
		t.Run(sentinel.Error(), func(t *testing.T) {
			_, err := newStorage(&recorder{err: fmt.Errorf("creating: %w", sentinel)}).Create(context.Background(), signal(onDeployment), nil, &metav1.CreateOptions{})
			if !apierrors.IsInvalid(err) {
				t.Fatalf("got %v, want 422", err)
			}
			causes := err.(apierrors.APIStatus).Status().Details.Causes
			if len(causes) != 1 || causes[0].Field != "spec.target.namespace" {
				t.Errorf("causes %+v, want one on spec.target.namespace", causes)
			}
			_, err = newStorage(&recorder{err: fmt.Errorf("creating: %w", sentinel)}).Create(context.Background(), signal(nil), nil, &metav1.CreateOptions{})
			if !apierrors.IsServiceUnavailable(err) {
				t.Errorf("cluster-scoped target: got %v, want 503", err)
			}
		})
	}
}

// TestKeyedSignalIsNotCountedOnAFallback: a keyed signal whose owner lookup
// failed transiently gets 503, so that its retry, which may resolve, cannot
// count it a second time on another RemediationRequest.
func TestKeyedSignalIsNotCountedOnAFallback(t *testing.T) {
	pod := remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: "cart-5d8f-a1"}
	failed := &stubOwners{result: owner.Result{Target: pod, FallbackReason: owner.ReasonLookupFailed, Message: "timeout"}}
	notFound := &stubOwners{result: owner.Result{Target: pod, FallbackReason: owner.ReasonNotFound, Message: "gone"}}
	onPod := func(key string) *signals.Signal {
		return signal(func(s *signals.SignalSpec) {
			s.Target = signals.TargetReference{APIVersion: pod.APIVersion, Kind: pod.Kind, Namespace: pod.Namespace, Name: pod.Name}
			s.IdempotencyKey = key
		})
	}
	d := &recorder{}
	storage := newREST(d, options{Owners: failed, Now: func() time.Time { return received }})
	if _, err := storage.Create(context.Background(), onPod("am/1"), nil, &metav1.CreateOptions{}); !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("keyed, lookup failed: got %v, want 503", err)
	}
	if len(d.got) != 0 {
		t.Fatalf("submitted %d signals, want 0", len(d.got))
	}
	if _, err := storage.Create(context.Background(), onPod(""), nil, &metav1.CreateOptions{}); err != nil {
		t.Fatalf("unkeyed, lookup failed: %v (an unkeyed signal falls back)", err)
	}
	storage = newREST(d, options{Owners: notFound, Now: func() time.Time { return received }})
	if _, err := storage.Create(context.Background(), onPod("am/1"), nil, &metav1.CreateOptions{}); err != nil {
		t.Fatalf("keyed, owner not found: %v (a definite answer falls back)", err)
	}
	if len(d.got) != 2 {
		t.Errorf("submitted %d signals, want 2", len(d.got))
	}
}

// stubOwners answers every target with result, and counts its calls.
type stubOwners struct {
	result owner.Result
	calls  int
	uid    types.UID // the UID of the last call
}

func (s *stubOwners) Resolve(_ context.Context, _ remediationv1alpha1.ResourceReference, uid types.UID) owner.Result {
	s.calls++
	s.uid = uid
	return s.result
}

// A target's UID goes to the resolver and not into the fingerprint; a
// target the resolver finds recreated is the sender's 422 on
// spec.target.uid, and nothing is submitted.
func TestCreateTargetUID(t *testing.T) {
	pod := remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: "db-0"}
	statefulSet := remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: "shop", Name: "db"}
	onPod := func(uid types.UID) func(*signals.SignalSpec) {
		return func(s *signals.SignalSpec) {
			s.Target = signals.TargetReference{APIVersion: pod.APIVersion, Kind: pod.Kind, Namespace: pod.Namespace, Name: pod.Name, UID: uid}
		}
	}

	d, owners := &recorder{}, &stubOwners{result: owner.Result{Target: statefulSet}}
	storage := newREST(d, options{ClusterID: "eu-1", Owners: owners})
	for _, uid := range []types.UID{"", "new-uid"} {
		if _, err := storage.Create(context.Background(), signal(onPod(uid)), nil, &metav1.CreateOptions{}); err != nil {
			t.Fatalf("uid %q: %v", uid, err)
		}
		if owners.uid != uid {
			t.Errorf("resolver given UID %q, want %q", owners.uid, uid)
		}
	}
	if fp := fingerprint.ForObject("eu-1", statefulSet); d.got[0].Fingerprint != fp || d.got[1].Fingerprint != fp {
		t.Errorf("fingerprints %s and %s, want %s for both: the UID is not part of it", d.got[0].Fingerprint, d.got[1].Fingerprint, fp)
	}

	d, owners = &recorder{}, &stubOwners{result: owner.Result{Target: pod, Err: &owner.TargetUIDMismatchError{Target: pod, UID: "old-uid", LiveUID: "new-uid"}}}
	storage = newREST(d, options{ClusterID: "eu-1", Owners: owners})
	_, err := storage.Create(context.Background(), signal(onPod("old-uid")), nil, &metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("recreated target: %v, want 422", err)
	}
	causes := err.(apierrors.APIStatus).Status().Details.Causes
	want := "Pod shop/db-0 has UID new-uid, not old-uid: the object the signal is about was deleted and its name reused"
	if len(causes) != 1 || causes[0].Field != "spec.target.uid" || !strings.Contains(causes[0].Message, want) {
		t.Errorf("causes %+v, want one on spec.target.uid saying %q", causes, want)
	}
	if len(d.got) != 0 {
		t.Errorf("submitted %d signals, want 0", len(d.got))
	}
}

func TestCreateResolvesOwners(t *testing.T) {
	pod := remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Pod", Namespace: "shop", Name: "cart-5d8f-a1"}
	deployment := remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "cart"}
	onPod := func(s *signals.SignalSpec) {
		s.Target = signals.TargetReference{APIVersion: pod.APIVersion, Kind: pod.Kind, Namespace: pod.Namespace, Name: pod.Name}
	}
	tests := []struct {
		name            string
		spec            func(*signals.SignalSpec)
		result          owner.Result
		wantCalls       int
		wantTarget      remediationv1alpha1.ResourceReference
		wantSignal      *remediationv1alpha1.ResourceReference
		wantAnnotations map[string]string
	}{
		{
			name: "resolved to the owner", spec: onPod, result: owner.Result{Target: deployment}, wantCalls: 1,
			wantTarget: deployment, wantSignal: &pod,
		},
		{
			name: "its own answer", spec: onPod, result: owner.Result{Target: pod}, wantCalls: 1,
			wantTarget: pod,
		},
		{
			name: "fallback recorded", spec: onPod, wantCalls: 1, wantTarget: pod,
			result:          owner.Result{Target: pod, FallbackReason: owner.ReasonLookupFailed, Message: "reading Pod shop/cart-5d8f-a1: timeout"},
			wantAnnotations: map[string]string{signalsv1.AnnotationOwnerResolution: "LookupFailed: reading Pod shop/cart-5d8f-a1: timeout"},
		},
		{
			name:   "sender's fingerprint: not resolved",
			spec:   func(s *signals.SignalSpec) { onPod(s); s.Fingerprint = "incident-42" },
			result: owner.Result{Target: deployment}, wantTarget: pod,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, owners := &recorder{}, &stubOwners{result: tt.result}
			storage := newREST(d, options{ClusterID: "eu-1", Owners: owners, Now: func() time.Time { return received }})
			if _, err := storage.Create(context.Background(), signal(tt.spec), nil, &metav1.CreateOptions{}); err != nil {
				t.Fatal(err)
			}
			got := d.got[0]
			if owners.calls != tt.wantCalls {
				t.Errorf("%d resolutions, want %d", owners.calls, tt.wantCalls)
			}
			if got.Spec.TargetResource != tt.wantTarget {
				t.Errorf("targetResource %+v, want %+v", got.Spec.TargetResource, tt.wantTarget)
			}
			if !equality.Semantic.DeepEqual(got.Spec.SignalTarget, tt.wantSignal) {
				t.Errorf("signalTarget %+v, want %+v", got.Spec.SignalTarget, tt.wantSignal)
			}
			if !equality.Semantic.DeepEqual(got.Annotations, tt.wantAnnotations) {
				t.Errorf("annotations %v, want %v", got.Annotations, tt.wantAnnotations)
			}
			wantFP := fingerprint.ForKey("incident-42")
			if tt.wantCalls > 0 {
				wantFP = fingerprint.ForObject("eu-1", tt.wantTarget)
			}
			if got.Fingerprint != wantFP || got.Spec.SignalFingerprint != wantFP {
				t.Errorf("fingerprint %s, want %s", got.Fingerprint, wantFP)
			}
		})
	}
}
