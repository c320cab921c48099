package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/apistatus"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/owner"
	"github.com/signal-apiserver/signal-apiserver/pkg/registry"
	"github.com/signal-apiserver/signal-apiserver/pkg/signalkey"
	"github.com/signal-apiserver/signal-apiserver/pkg/targets"
)

func TestParseTargetRules(t *testing.T) {
	rules, err := ParseTargetRules(DefaultTargetRules)
	if err != nil {
		t.Fatal(err)
	}
	if got, want := rules[1], (TargetRule{Label: "deployment", APIVersion: "apps/v1", Kind: "Deployment"}); got != want {
		t.Errorf("rules[1] = %+v, want %+v", got, want)
	}
	if got, want := rules[len(rules)-1], (TargetRule{Label: "namespace", APIVersion: "v1", Kind: "Namespace", ClusterScoped: true}); got != want {
		t.Errorf("last rule = %+v, want %+v", got, want)
	}
	for _, bad := range []string{"pod", "=v1/Pod", "pod=Pod", "pod=v1/", "pod=/Pod", "node=v1/Node:Namespaced", "x=a/b/c/Kind"} {
		if _, err := ParseTargetRules([]string{bad}); err == nil {
			t.Errorf("ParseTargetRules(%q) accepted", bad)
		}
	}
}

func TestTarget(t *testing.T) {
	rules, err := ParseTargetRules(DefaultTargetRules)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name   string
		labels map[string]string
		want   signals.TargetReference
		label  string
	}{
		{"pod before deployment", map[string]string{"namespace": "a", "pod": "p", "deployment": "d"},
			signals.TargetReference{APIVersion: "v1", Kind: "Pod", Namespace: "a", Name: "p"}, "pod"},
		{"namespaced kind without namespace is skipped", map[string]string{"pod": "p", "node": "n1"},
			signals.TargetReference{APIVersion: "v1", Kind: "Node", Name: "n1"}, "node"},
		{"node ignores the namespace label", map[string]string{"namespace": "monitoring", "node": "n1"},
			signals.TargetReference{APIVersion: "v1", Kind: "Node", Name: "n1"}, "node"},
		{"job_name, not Prometheus' job", map[string]string{"namespace": "a", "job": "kube-state-metrics", "job_name": "backup"},
			signals.TargetReference{APIVersion: "batch/v1", Kind: "Job", Namespace: "a", Name: "backup"}, "job_name"},
		{"namespace alone", map[string]string{"namespace": "a"},
			signals.TargetReference{APIVersion: "v1", Kind: "Namespace", Name: "a"}, "namespace"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, label, ok := target(rules, tt.labels)
			if !ok || got != tt.want || label != tt.label {
				t.Errorf("target = %+v, %q, %v; want %+v, %q", got, label, ok, tt.want, tt.label)
			}
		})
	}
	if _, _, ok := target(rules, map[string]string{"alertname": "Watchdog"}); ok {
		t.Error("an alert without target labels matched a rule")
	}
}

// denyKubeSystem lets every user signal about every namespace but
// kube-system.
type denyKubeSystem struct{}

func (denyKubeSystem) Authorize(_ context.Context, a authorizer.Attributes) (authorizer.Decision, string, error) {
	if a.GetNamespace() == "kube-system" {
		return authorizer.DecisionNoOpinion, "", nil
	}
	return authorizer.DecisionAllow, "", nil
}

// lookupFails fails to look up the owner of targets named "lookup-fails";
// every other target is its own top-level controller.
type lookupFails struct{}

func (lookupFails) Resolve(_ context.Context, target remediationv1alpha1.ResourceReference, _ types.UID) owner.Result {
	if target.Name == "lookup-fails" {
		return owner.Result{Target: target, FallbackReason: owner.ReasonLookupFailed, Message: "etcd is slow"}
	}
	return owner.Result{Target: target}
}

// sender is the context of a request from the user "am".
func sender() context.Context {
	return genericapirequest.WithUser(context.Background(), &user.DefaultInfo{Name: "am"})
}

// fakeDedup answers from a table by the name of the signal's target.
type fakeDedup struct {
	errs map[string]error

	mu        sync.Mutex
	submitted []dedup.Signal
}

func (f *fakeDedup) Submit(_ context.Context, s dedup.Signal) (*dedup.Result, error) {
	f.mu.Lock()
	f.submitted = append(f.submitted, s)
	f.mu.Unlock()
	name := s.Spec.TargetResource.Name
	if err := f.errs[name]; err != nil {
		return nil, err
	}
	if s.Resolved {
		return nil, dedup.ErrNoActiveRemediation
	}
	rr := &remediationv1alpha1.RemediationRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: "rr-" + name}}
	return &dedup.Result{RemediationRequest: rr, Outcome: dedup.OutcomeCreated}, nil
}

func alert(status, pod, fp string) signals.Alert {
	return signals.Alert{
		Status:      status,
		Labels:      map[string]string{"alertname": "KubePodCrashLooping", "namespace": "ns", "pod": pod},
		StartsAt:    metav1.NewTime(time.Date(2026, 11, 28, 1, 2, 3, 456789000, time.UTC)),
		Fingerprint: fp,
	}
}

func newStorage(t *testing.T, d *fakeDedup) *REST {
	t.Helper()
	rules, err := ParseTargetRules(DefaultTargetRules)
	if err != nil {
		t.Fatal(err)
	}
	return NewREST(&signalkey.Policy{Owners: lookupFails{}}, &registry.Gate{Authorizer: denyKubeSystem{}}, d, rules)
}

func TestCreate(t *testing.T) {
	d := &fakeDedup{}
	n := &signals.AlertmanagerNotification{Version: "4", Alerts: []signals.Alert{
		alert("firing", "a", "f1"), alert("resolved", "b", "f2"),
	}}
	obj, err := newStorage(t, d).Create(sender(), n, nil, &metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*signals.AlertmanagerNotification)
	want := []signals.AlertResult{
		{Index: 0, Fingerprint: "f1", Outcome: "Created", Namespace: "ns", Name: "rr-a"},
		{Index: 1, Fingerprint: "f2", Outcome: OutcomeNoActive},
	}
	if len(got.Alerts) != 0 || len(got.Results) != 2 || got.Results[0] != want[0] || got.Results[1] != want[1] {
		t.Errorf("answer = %+v, want results %+v and no alerts", got, want)
	}
}

func TestCreateIdempotencyKey(t *testing.T) {
	r := newStorage(t, &fakeDedup{})
	sig, adjusted, errs := r.toSignal(ptr(alert("firing", "a", "f1")), field.NewPath("alerts").Index(0))
	if len(errs) != 0 || len(adjusted) != 0 {
		t.Fatal(errs, adjusted)
	}
	spec := sig.Spec
	if want := "alertmanager/f1/2026-11-28T01:02:03.456789Z"; spec.IdempotencyKey != want {
		t.Errorf("idempotencyKey = %q, want %q", spec.IdempotencyKey, want)
	}
	if spec.Source != "alertmanager" || spec.Name != "KubePodCrashLooping" || spec.Fingerprint != "" {
		t.Errorf("spec = %+v", spec)
	}
}

func ptr[T any](v T) *T { return &v }

func TestCreateFallbackTarget(t *testing.T) {
	r := newStorage(t, &fakeDedup{})
	a := alert("firing", "", "f9")
	a.Labels = map[string]string{"alertname": "Watchdog"}
	sig, _, errs := r.toSignal(&a, field.NewPath("alerts").Index(0))
	if len(errs) != 0 {
		t.Fatal(errs)
	}
	spec := sig.Spec
	if want := (signals.TargetReference{APIVersion: FallbackAPIVersion, Kind: FallbackKind, Name: "f9"}); spec.Target != want || spec.Fingerprint != "alertmanager/f9" {
		t.Errorf("target %+v fingerprint %q", spec.Target, spec.Fingerprint)
	}
}

// TestCreateRefusesUnusableBody: only the notification's own fields fail it
// whole.
func TestCreateRefusesUnusableBody(t *testing.T) {
	d := &fakeDedup{}
	n := &signals.AlertmanagerNotification{Version: "3", Alerts: []signals.Alert{alert("firing", "a", "f1")}}
	_, err := newStorage(t, d).Create(sender(), n, nil, &metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) || len(d.submitted) != 0 {
		t.Fatalf("err = %v, submitted %d; want 422 and nothing submitted", err, len(d.submitted))
	}
}

// TestCreateRejectsMalformedAlertsAlone: each alert's own problem rejects
// that alert alone, with the path of the field that carried it; what can be
// cut or left out is, and said so.
func TestCreateRejectsMalformedAlertsAlone(t *testing.T) {
	d := &fakeDedup{}
	badNS := alert("firing", "x", "f5")
	badNS.Labels["namespace"] = "Bad NS"
	oversized := alert("firing", "big", "f6")
	oversized.Labels["severity"] = strings.Repeat("s", 100)
	oversized.Labels["alertname"] = strings.Repeat("n", 300) + "\n"
	oversized.Labels[strings.Repeat("k", 300)] = "v"
	n := &signals.AlertmanagerNotification{Version: "4", Alerts: []signals.Alert{
		alert("firing", "a", "f1"), alert("firing", "Not/A/Name", ""), alert("pending", "c", "f3"),
		alert("firing", "Not/A/Name", "f4"), badNS, oversized,
	}}
	obj, err := newStorage(t, d).Create(sender(), n, nil, &metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*signals.AlertmanagerNotification).Results
	want := []struct{ outcome, message string }{
		{"Created", ""},
		{OutcomeRejected, "alerts[1].fingerprint: Required value"},
		{OutcomeRejected, "alerts[2].status: Unsupported value"},
		{OutcomeRejected, "alerts[3].labels[pod]: Invalid value"},
		{OutcomeRejected, `alerts[4].labels[namespace]: Invalid value: "Bad NS"`},
		{"Created", "labels[alertname]: control characters replaced by spaces; labels[alertname]: cut to 253 bytes; labels[severity]: left out"},
	}
	if len(got) != len(want) {
		t.Fatalf("results = %+v", got)
	}
	for i, w := range want {
		if got[i].Outcome != w.outcome || !strings.HasPrefix(got[i].Message, w.message) || (w.message == "") != (got[i].Message == "") {
			t.Errorf("results[%d] = %+v, want %s with message %q...", i, got[i], w.outcome, w.message)
		}
	}
	if len(d.submitted) != 2 {
		t.Fatalf("submitted %d signals, want 2", len(d.submitted))
	}
	s := d.submitted[0]
	if s.Spec.TargetResource.Name != "big" {
		s = d.submitted[1]
	}
	if s.Spec.Severity != "" || len(s.Spec.SignalName) != 253 || len(s.Spec.SignalLabels) != 4 || s.Annotations[signalsv1.AnnotationAlertAdjusted] == "" {
		t.Errorf("oversized alert submitted as %+v", s)
	}
}

// TestCreateOrder: alerts about one RemediationRequest are applied in body
// order, whatever the concurrency.
func TestCreateOrder(t *testing.T) {
	for range 50 {
		d := &fakeDedup{}
		resolved := alert("resolved", "a", "f1")
		n := &signals.AlertmanagerNotification{Version: "4", Alerts: []signals.Alert{
			resolved, alert("firing", "a", "f2"), alert("firing", "b", "f3"), alert("firing", "a", "f4"), alert("resolved", "a", "f5"),
		}}
		if _, err := newStorage(t, d).Create(sender(), n, nil, &metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
		var order []string
		for _, s := range d.submitted {
			if s.Spec.TargetResource.Name == "a" {
				order = append(order, s.IdempotencyKey[len("alertmanager/"):][:2])
			}
		}
		if len(order) != 4 || order[0] != "f1" || order[1] != "f2" || order[2] != "f4" || order[3] != "f5" {
			t.Fatalf("alerts about a applied in order %v, want f1 f2 f4 f5", order)
		}
	}
}

// TestCreateAuthorizesEachNamespaceOnce: one authorization per distinct
// namespace, at most MaxNamespaces; alerts past the caps are Rejected.
func TestCreateAuthorizesEachNamespaceOnce(t *testing.T) {
	d := &fakeDedup{}
	authz := &countingAuthorizer{}
	rules, _ := ParseTargetRules(DefaultTargetRules)
	r := NewREST(&signalkey.Policy{}, &registry.Gate{Authorizer: authz}, d, rules)
	var alerts []signals.Alert
	for i := range MaxAlerts + 10 {
		a := alert("firing", fmt.Sprintf("p%d", i), fmt.Sprintf("f%d", i))
		a.Labels["namespace"] = fmt.Sprintf("ns-%d", i/2)
		alerts = append(alerts, a)
	}
	obj, err := r.Create(sender(), &signals.AlertmanagerNotification{Version: "4", Alerts: alerts}, nil, &metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if authz.calls != MaxNamespaces {
		t.Errorf("%d authorizations, want %d", authz.calls, MaxNamespaces)
	}
	rejected := 0
	for _, res := range obj.(*signals.AlertmanagerNotification).Results {
		if res.Outcome == OutcomeRejected {
			if res.Reason != metav1.StatusReasonRequestEntityTooLarge {
				t.Fatalf("rejected %+v", res)
			}
			rejected++
		}
	}
	if want := MaxAlerts + 10 - 2*MaxNamespaces; rejected != want || len(d.submitted) != 2*MaxNamespaces {
		t.Errorf("rejected %d, submitted %d; want %d and %d", rejected, len(d.submitted), want, 2*MaxNamespaces)
	}
}

type countingAuthorizer struct {
	mu    sync.Mutex
	calls int
}

func (c *countingAuthorizer) Authorize(context.Context, authorizer.Attributes) (authorizer.Decision, string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.calls++
	return authorizer.DecisionAllow, "", nil
}

func TestCreatePartialFailureIs5xx(t *testing.T) {
	tests := []struct {
		name string
		err  error
		code int32
	}{
		{"retryable", fmt.Errorf("%w: etcd leader changed", dedup.ErrUnavailable), 503},
		{"the server's own failure", errors.New("boom"), 500},
	}
	t.Run("conversion retryable", func(t *testing.T) {
		n := &signals.AlertmanagerNotification{Version: "4", Alerts: []signals.Alert{alert("firing", "a", "f1"), alert("firing", "lookup-fails", "f2")}}
		_, err := newStorage(t, &fakeDedup{}).Create(sender(), n, nil, &metav1.CreateOptions{})
		if got := apistatus.Code(err); got != 503 {
			t.Fatalf("code = %d (%v), want 503", got, err)
		}
	})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &fakeDedup{errs: map[string]error{"b": tt.err}}
			n := &signals.AlertmanagerNotification{Version: "4", Alerts: []signals.Alert{alert("firing", "a", "f1"), alert("firing", "b", "f2")}}
			_, err := newStorage(t, d).Create(sender(), n, nil, &metav1.CreateOptions{})
			if got := apistatus.Code(err); got != tt.code {
				t.Fatalf("code = %d (%v), want %d", got, err, tt.code)
			}
		})
	}
}

// TestCreateRejectsOneAlert: an alert whose own Signal would get a 4xx is
// Rejected in the answer, and the others are recorded: a resend would get
// the same 4xx, so failing the batch would make Alertmanager retry forever.
func TestCreateRejectsOneAlert(t *testing.T) {
	d := &fakeDedup{errs: map[string]error{"b": dedup.ErrNamespaceNotFound}}
	n := &signals.AlertmanagerNotification{Version: "4", Alerts: []signals.Alert{alert("firing", "a", "f1"), alert("firing", "b", "f2")}}
	obj, err := newStorage(t, d).Create(sender(), n, nil, &metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	want := []signals.AlertResult{
		{Index: 0, Fingerprint: "f1", Outcome: "Created", Namespace: "ns", Name: "rr-a"},
		{Index: 1, Fingerprint: "f2", Outcome: OutcomeRejected, Reason: metav1.StatusReasonInvalid,
			Message: `Signal.signals.remediation.io "" is invalid: spec.target.namespace: Invalid value: "ns": the namespace does not exist: no RemediationRequest can be opened in it`},
	}
	got := obj.(*signals.AlertmanagerNotification).Results
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("results = %+v, want %+v", got, want)
	}
	if len(d.submitted) != 2 {
		t.Errorf("submitted %d signals, want 2", len(d.submitted))
	}
}

// TestCreateRejectsForbiddenAlert: an alert about a namespace the sender may
// not signal about is Rejected with reason Forbidden, submitted to nothing,
// and the notification still succeeds for the others.
func TestCreateRejectsForbiddenAlert(t *testing.T) {
	d := &fakeDedup{}
	denied := alert("firing", "b", "f2")
	denied.Labels["namespace"] = "kube-system"
	n := &signals.AlertmanagerNotification{Version: "4", Alerts: []signals.Alert{alert("firing", "a", "f1"), denied}}
	obj, err := newStorage(t, d).Create(sender(), n, nil, &metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got := obj.(*signals.AlertmanagerNotification).Results
	want := []signals.AlertResult{
		{Index: 0, Fingerprint: "f1", Outcome: "Created", Namespace: "ns", Name: "rr-a"},
		{Index: 1, Fingerprint: "f2", Outcome: OutcomeRejected, Reason: metav1.StatusReasonForbidden,
			Message: `remediationrequests.remediation.io is forbidden: User "am" cannot signal resource "remediationrequests" in API group "remediation.io" in the namespace "kube-system": ` +
				`a signal opens and counts RemediationRequests in namespace "kube-system", which needs verb "signal" on remediationrequests.remediation.io there (for example a RoleBinding to ClusterRole signal-namespace-sender)`},
	}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("results = %+v, want %+v", got, want)
	}
	if len(d.submitted) != 1 || d.submitted[0].Spec.TargetResource.Name != "a" {
		t.Errorf("submitted %+v, want only the allowed alert", d.submitted)
	}
}

func TestBounded(t *testing.T) {
	m := map[string]string{}
	for i := range 100 {
		m[string(rune('a'+i%26))+string(rune('a'+i/26))] = "v"
	}
	if got, left := bounded(m, 1<<20); len(got) != 64 || left != 36 {
		t.Errorf("kept %d entries, left out %d, want 64 and 36", len(got), left)
	}
	if got, _ := bounded(map[string]string{"a": "12345", "b": "1", "c": "123"}, 8); len(got) != 2 || got["a"] == "" || got["c"] != "" {
		t.Errorf("bounded = %v, want a and b", got)
	}
}

// podKinds is a discovery of Pods (namespaced) and Nodes (cluster-scoped)
// that knows them by their kubectl spellings too.
type podKinds struct{}

func (podKinds) Resolve(_ context.Context, apiVersion, kind string) (targets.Kind, error) {
	switch {
	case apiVersion == "v1" && (kind == "Pod" || kind == "pods"):
		return targets.Kind{GroupVersionKind: schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespaced: true}, nil
	case apiVersion == "v1" && kind == "Node":
		return targets.Kind{GroupVersionKind: schema.GroupVersionKind{Version: "v1", Kind: "Node"}}, nil
	}
	return targets.Kind{}, &targets.UnknownKindError{APIVersion: apiVersion, Kind: kind}
}

// Alerts' targets resolve through discovery like a Signal's: a rule's
// spelling is counted under the canonical kind, a rule whose scope
// contradicts the kind's rejects the alert, and the fallback target is not
// resolved.
func TestCreateResolvesRuleTargets(t *testing.T) {
	rules, err := ParseTargetRules([]string{"pod=v1/pods", "node=v1/Node"})
	if err != nil {
		t.Fatal(err)
	}
	d := &fakeDedup{}
	r := NewREST(&signalkey.Policy{Kinds: podKinds{}, ClusterScopedNamespace: "signal-apiserver"}, &registry.Gate{}, d, rules)
	node := alert("firing", "", "f2")
	node.Labels = map[string]string{"alertname": "NodeDown", "namespace": "payments", "node": "node-1"}
	watchdog := alert("firing", "", "f3")
	watchdog.Labels = map[string]string{"alertname": "Watchdog"}
	n := &signals.AlertmanagerNotification{Version: "4", Alerts: []signals.Alert{alert("firing", "web-1", "f1"), node, watchdog}}
	out, err := r.Create(context.Background(), n, nil, &metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	results := out.(*signals.AlertmanagerNotification).Results
	if got := []string{results[0].Outcome, results[1].Outcome, results[2].Outcome}; !slices.Equal(got, []string{"Created", OutcomeRejected, "Created"}) {
		t.Fatalf("outcomes %v", got)
	}
	if !strings.Contains(results[1].Message, "spec.target.namespace") {
		t.Errorf("the rejected alert's message %q does not name the field", results[1].Message)
	}
	if len(d.submitted) != 2 {
		t.Fatalf("%d signals submitted, want 2", len(d.submitted))
	}
	for _, s := range d.submitted {
		switch s.Spec.TargetResource.Kind {
		case "Pod":
			if s.Spec.SignalTarget == nil || s.Spec.SignalTarget.Kind != "pods" {
				t.Errorf("signalTarget %+v, want the rule's spelling", s.Spec.SignalTarget)
			}
		case FallbackKind:
		default:
			t.Errorf("unexpected target %+v", s.Spec.TargetResource)
		}
	}
}
