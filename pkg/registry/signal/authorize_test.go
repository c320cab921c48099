package signal

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/authorization/authorizerfactory"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"
	authorizationv1client "k8s.io/client-go/kubernetes/typed/authorization/v1"
	"k8s.io/client-go/rest"
	"k8s.io/component-base/metrics/legacyregistry"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	"github.com/signal-apiserver/signal-apiserver/pkg/registry"
)

// fakeAuthorizer allows the namespaces in allowed, and remembers what it
// was asked.
type fakeAuthorizer struct {
	allowed map[string]bool
	err     error
	asked   []authorizer.Attributes
}

func (f *fakeAuthorizer) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	f.asked = append(f.asked, a)
	if f.err != nil {
		return authorizer.DecisionNoOpinion, "", f.err
	}
	if f.allowed[a.GetNamespace()] {
		return authorizer.DecisionAllow, "", nil
	}
	return authorizer.DecisionNoOpinion, "", nil
}

// fakeGate manages the namespaces in managed.
type fakeGate struct {
	managed map[string]bool
	err     error
}

func (g fakeGate) Managed(namespace string) (bool, error) { return g.managed[namespace], g.err }
func (g fakeGate) String() string                         { return "kubernaut.ai/managed=true" }

var tenant = &user.DefaultInfo{Name: "system:serviceaccount:team-a:alerts", UID: "u-1", Groups: []string{"system:serviceaccounts"}}

func onDeploymentIn(namespace string) func(*signals.SignalSpec) {
	return func(s *signals.SignalSpec) {
		s.Target = signals.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: namespace, Name: "cart"}
	}
}

func TestCreateAuthorizesTheSenderForTheNamespace(t *testing.T) {
	tests := []struct {
		name          string
		spec          func(*signals.SignalSpec)
		dryRun        bool
		wantNamespace string
		wantCode      int32
	}{
		{name: "own namespace", spec: onDeploymentIn("team-a"), wantNamespace: "team-a"},
		{name: "another namespace", spec: onDeploymentIn("kube-system"), wantNamespace: "kube-system", wantCode: http.StatusForbidden},
		{name: "another namespace, dry run", spec: onDeploymentIn("team-b"), dryRun: true, wantNamespace: "team-b", wantCode: http.StatusForbidden},
		{name: "cluster-scoped target: the namespace of its RemediationRequests", wantNamespace: "remediations", wantCode: http.StatusForbidden},
		{name: "resolved signals too", spec: func(s *signals.SignalSpec) { onDeploymentIn("team-b")(s); s.Status = signals.SignalStatusResolved },
			wantNamespace: "team-b", wantCode: http.StatusForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, owners, authz := &recorder{}, &stubOwners{}, &fakeAuthorizer{allowed: map[string]bool{"team-a": true}}
			storage := newREST(d, options{ClusterScopedNamespace: "remediations", Owners: owners, Authorizer: authz, Now: func() time.Time { return received }})
			admitted := false
			admit := func(context.Context, runtime.Object) error { admitted = true; return nil }
			var opts metav1.CreateOptions
			if tt.dryRun {
				opts.DryRun = []string{metav1.DryRunAll}
			}
			before := denialsOf(t, "forbidden")
			_, err := storage.Create(genericapirequest.WithUser(context.Background(), tenant), signal(tt.spec), admit, &opts)

			if len(authz.asked) != 1 {
				t.Fatalf("asked the authorizer %d times, want 1", len(authz.asked))
			}
			a := authz.asked[0]
			if a.GetUser() != tenant || a.GetVerb() != "signal" || a.GetNamespace() != tt.wantNamespace || a.GetAPIGroup() != "remediation.io" ||
				a.GetResource() != "remediationrequests" || a.GetSubresource() != "" || a.GetName() != "" || !a.IsResourceRequest() {
				t.Errorf("asked %+v", a)
			}
			after := denialsOf(t, "forbidden")
			if tt.wantCode == 0 {
				if err != nil || len(d.got) != 1 || !admitted || after != before {
					t.Fatalf("err %v, %d submitted, admitted %v, denials +%v; want allowed", err, len(d.got), admitted, after-before)
				}
				return
			}
			status, ok := err.(apierrors.APIStatus)
			if !ok || status.Status().Code != tt.wantCode || status.Status().Reason != metav1.StatusReasonForbidden {
				t.Fatalf("got %v, want %d Forbidden", err, tt.wantCode)
			}
			for _, want := range []string{`User "system:serviceaccount:team-a:alerts"`, `cannot signal resource "remediationrequests"`, `in the namespace "` + tt.wantNamespace + `"`} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("message %q does not say %s", err.Error(), want)
				}
			}
			// Nothing read (no owner lookup), nothing admitted, nothing submitted.
			if len(d.got) != 0 || owners.calls != 0 || admitted {
				t.Errorf("%d submitted, %d owner lookups, admitted %v; want none", len(d.got), owners.calls, admitted)
			}
			if after-before != 1 {
				t.Errorf("forbidden denials +%v, want +1", after-before)
			}
		})
	}
}

func TestCreateWithoutADecision(t *testing.T) {
	d := &recorder{}
	storage := newREST(d, options{Authorizer: &fakeAuthorizer{err: errors.New("SubjectAccessReview: connection refused")}})
	_, err := storage.Create(genericapirequest.WithUser(context.Background(), tenant), signal(onDeploymentIn("team-a")), nil, &metav1.CreateOptions{})
	if !apierrors.IsServiceUnavailable(err) {
		t.Fatalf("authorizer failed: got %v, want 503", err)
	}
	storage = newREST(d, options{Authorizer: &fakeAuthorizer{allowed: map[string]bool{"team-a": true}}})
	_, err = storage.Create(context.Background(), signal(onDeploymentIn("team-a")), nil, &metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("no user: got %v, want 403", err)
	}
	if len(d.got) != 0 {
		t.Errorf("submitted %d signals, want 0", len(d.got))
	}
}

func TestCreateOnlyInManagedNamespaces(t *testing.T) {
	gate := fakeGate{managed: map[string]bool{"team-a": true}}
	tests := []struct {
		name      string
		spec      func(*signals.SignalSpec)
		gate      registry.NamespaceGate
		wantCode  int32
		wantField string
	}{
		{name: "managed", spec: onDeploymentIn("team-a"), gate: gate},
		{name: "not managed", spec: onDeploymentIn("sandbox"), gate: gate, wantCode: http.StatusUnprocessableEntity, wantField: "spec.target.namespace"},
		{name: "cluster-scoped, its namespace not managed", gate: gate, wantCode: http.StatusUnprocessableEntity, wantField: "spec.target.kind"},
		{name: "not synced yet", spec: onDeploymentIn("team-a"), gate: fakeGate{err: errors.New("the informer of managed namespaces has not synced yet")}, wantCode: http.StatusServiceUnavailable},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, owners := &recorder{}, &stubOwners{}
			storage := newREST(d, options{ClusterScopedNamespace: "remediations", Owners: owners, Namespaces: tt.gate, Now: func() time.Time { return received }})
			before := denialsOf(t, "namespace_not_managed")
			_, err := storage.Create(context.Background(), signal(tt.spec), nil, &metav1.CreateOptions{})
			after := denialsOf(t, "namespace_not_managed")
			if tt.wantCode == 0 {
				if err != nil || len(d.got) != 1 {
					t.Fatalf("err %v, %d submitted; want counted", err, len(d.got))
				}
				return
			}
			status, ok := err.(apierrors.APIStatus)
			if !ok || status.Status().Code != tt.wantCode {
				t.Fatalf("got %v, want %d", err, tt.wantCode)
			}
			if len(d.got) != 0 || owners.calls != 0 {
				t.Errorf("%d submitted, %d owner lookups; want none", len(d.got), owners.calls)
			}
			if tt.wantField == "" {
				return
			}
			causes := status.Status().Details.Causes
			if len(causes) != 1 || causes[0].Field != tt.wantField || !strings.Contains(causes[0].Message, "--namespace-selector=kubernaut.ai/managed=true") {
				t.Errorf("causes %+v, want one on %s naming the selector", causes, tt.wantField)
			}
			if after-before != 1 {
				t.Errorf("namespace_not_managed denials +%v, want +1", after-before)
			}
		})
	}
}

// TestAuthorizationComesFirst: a sender that may not signal about a
// namespace learns nothing about whether it is managed.
func TestAuthorizationComesFirst(t *testing.T) {
	storage := newREST(&recorder{}, options{Authorizer: &fakeAuthorizer{}, Namespaces: fakeGate{}})
	_, err := storage.Create(genericapirequest.WithUser(context.Background(), tenant), signal(onDeploymentIn("sandbox")), nil, &metav1.CreateOptions{})
	if !apierrors.IsForbidden(err) {
		t.Fatalf("got %v, want 403", err)
	}
}

// sarServer is a kube-apiserver that answers SubjectAccessReviews: allowed
// in namespace team-a, and counts them.
func sarServer(t testing.TB) (*authorizationv1client.AuthorizationV1Client, *atomic.Int64) {
	var reviews atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		reviews.Add(1)
		var sar authorizationv1.SubjectAccessReview
		if err := json.NewDecoder(req.Body).Decode(&sar); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		sar.Status.Allowed = sar.Spec.ResourceAttributes != nil && sar.Spec.ResourceAttributes.Namespace == "team-a"
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(&sar)
	}))
	t.Cleanup(srv.Close)
	client, err := authorizationv1client.NewForConfig(&rest.Config{Host: srv.URL})
	if err != nil {
		t.Fatal(err)
	}
	return client, &reviews
}

// delegatingAuthorizer is the authorizer k8s.io/apiserver builds from
// --authorization-kubeconfig, with cache TTLs long enough that no entry
// expires during a test.
func delegatingAuthorizer(t testing.TB, client *authorizationv1client.AuthorizationV1Client) authorizer.Authorizer {
	a, err := authorizerfactory.DelegatingAuthorizerConfig{
		SubjectAccessReviewClient: client,
		AllowCacheTTL:             time.Hour,
		DenyCacheTTL:              time.Hour,
		WebhookRetryBackoff:       &wait.Backoff{Duration: time.Millisecond, Steps: 1},
	}.New()
	if err != nil {
		t.Fatal(err)
	}
	return a
}

// TestAuthorizationIsCached: a storm from one sender costs one
// SubjectAccessReview per namespace, allowed or denied, in the server's
// delegated authorizer.
func TestAuthorizationIsCached(t *testing.T) {
	client, reviews := sarServer(t)
	storage := newREST(&recorder{}, options{Authorizer: delegatingAuthorizer(t, client)})
	ctx := genericapirequest.WithUser(context.Background(), tenant)
	for range 100 {
		if _, err := storage.Create(ctx, signal(onDeploymentIn("team-a")), nil, &metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := storage.Create(ctx, signal(onDeploymentIn("team-b")), nil, &metav1.CreateOptions{}); !apierrors.IsForbidden(err) {
			t.Fatalf("team-b: got %v, want 403", err)
		}
	}
	if got := reviews.Load(); got != 2 {
		t.Errorf("%d SubjectAccessReviews for 200 signals in 2 namespaces, want 2", got)
	}
}

// BenchmarkAuthorizeCached is the cost the check adds to a signal whose
// decision is cached, as in a storm.
func BenchmarkAuthorizeCached(b *testing.B) {
	client, _ := sarServer(b)
	gate := &registry.Gate{Authorizer: delegatingAuthorizer(b, client)}
	ctx := genericapirequest.WithUser(context.Background(), tenant)
	target := signal(onDeploymentIn("team-a")).Spec.Target
	for b.Loop() {
		if err := gate.Check(ctx, target.Namespace, target); err != nil {
			b.Fatal(err)
		}
	}
}

var registerDenials sync.Once

// denialsOf reads signal_apiserver_signal_denials_total{reason} as
// /metrics serves it.
func denialsOf(t *testing.T, reason string) float64 {
	t.Helper()
	registerDenials.Do(func() {
		if err := registry.RegisterMetrics(legacyregistry.Register); err != nil {
			t.Fatal(err)
		}
	})
	families, err := legacyregistry.DefaultGatherer.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range families {
		if f.GetName() != "signal_apiserver_signal_denials_total" {
			continue
		}
		for _, m := range f.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "reason" && l.GetValue() == reason {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	return 0
}
