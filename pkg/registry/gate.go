package registry

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/authorization/authorizer"
	"k8s.io/apiserver/pkg/endpoints/handlers/responsewriters"
	genericapirequest "k8s.io/apiserver/pkg/endpoints/request"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	"github.com/signal-apiserver/signal-apiserver/pkg/apistatus"
)

// SignalVerb is the verb the storage authorizes, on remediationrequests in
// the namespace where a signal's RemediationRequest would live, for the
// user who sent it: "may this sender open and count RemediationRequests
// here?". Like CertificateSigningRequest approval (approve on signers), it
// is a second check made by the storage itself, on top of create on
// signals, because the RemediationRequest is written by the server's own
// ServiceAccount and kube-apiserver never sees who asked for it.
const SignalVerb = "signal"

// signalAttributes are the attributes the storage authorizes u for, to
// open RemediationRequests in namespace. `kubectl auth can-i signal
// remediationrequests.remediation.io -n <namespace> --as=<user>` asks
// kube-apiserver the same question.
func signalAttributes(u user.Info, namespace string) authorizer.AttributesRecord {
	return authorizer.AttributesRecord{
		User:            u,
		Verb:            SignalVerb,
		Namespace:       namespace,
		APIGroup:        remediationv1alpha1.GroupName,
		APIVersion:      "*",
		Resource:        "remediationrequests",
		ResourceRequest: true,
	}
}

// Authorizer decides whether a user may do something; the server's
// delegated authorizer (SubjectAccessReview through kube-apiserver, with
// cached decisions) is the implementation.
type Authorizer interface {
	Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error)
}

// NamespaceGate says in which namespaces RemediationRequests may be opened;
// *ManagedNamespaces is the implementation.
type NamespaceGate interface {
	// Managed reports whether namespace is one; an error means the gate
	// cannot tell yet.
	Managed(namespace string) (bool, error)
	// String describes the gate for messages, e.g. the label selector.
	String() string
}

// Gate is what a signal must pass, after validation and before anything is
// read or written: its sender's permission to signal about the namespace
// where its RemediationRequest would live, and that namespace being managed.
type Gate struct {
	// Authorizer decides whether the requesting user may signal about a
	// namespace (SignalVerb); nil allows every user, for tests only.
	Authorizer Authorizer
	// Namespaces are the namespaces RemediationRequests may be opened in;
	// nil means all.
	Namespaces NamespaceGate
}

// Check lets a signal about target, whose RemediationRequest would live in
// namespace, through: 403 Forbidden if the requesting user may not signal
// about namespace, 422 on spec.target.namespace (which senders do not
// retry) if the namespace is not managed.
func (g *Gate) Check(ctx context.Context, namespace string, target signals.TargetReference) error {
	if err := g.Authorize(ctx, namespace, target.Namespace == ""); err != nil {
		return err
	}
	return g.CheckManaged(namespace, target)
}

// Authorize is Check's first half: 403 Forbidden if the requesting user
// may not signal about namespace (one SubjectAccessReview, or a cached
// decision); clusterScoped only words the message. A storage that checks
// many signals of one request calls it once per namespace.
func (g *Gate) Authorize(ctx context.Context, namespace string, clusterScoped bool) error {
	if g.Authorizer == nil {
		return nil
	}
	return g.authorize(ctx, namespace, clusterScoped)
}

// CheckManaged is Check's second half, made without a request: 422 if
// namespace is not managed.
func (g *Gate) CheckManaged(namespace string, target signals.TargetReference) error {
	if g.Namespaces == nil {
		return nil
	}
	managed, err := g.Namespaces.Managed(namespace)
	if err != nil {
		return apistatus.ServiceUnavailable(err)
	}
	if managed {
		return nil
	}
	denials.WithLabelValues(denialNotManaged).Inc()
	return g.notManaged(target, namespace)
}

func (g *Gate) authorize(ctx context.Context, namespace string, clusterScoped bool) error {
	u, ok := genericapirequest.UserFrom(ctx)
	if !ok {
		denials.WithLabelValues(denialForbidden).Inc()
		return apierrors.NewForbidden(remediationv1alpha1.Resource("remediationrequests"), "", errors.New("the request has no user"))
	}
	attrs := signalAttributes(u, namespace)
	decision, reason, err := g.Authorizer.Authorize(ctx, attrs)
	switch {
	case decision == authorizer.DecisionAllow:
		return nil
	case err != nil:
		// No decision: kube-apiserver did not answer the
		// SubjectAccessReview. The server's problem, worth a retry.
		return apistatus.ServiceUnavailable(fmt.Errorf("authorizing user %q to signal about namespace %q: %w", u.GetName(), namespace, err))
	}
	denials.WithLabelValues(denialForbidden).Inc()
	hint := fmt.Sprintf("a signal opens and counts RemediationRequests in namespace %q, which needs verb %q on remediationrequests.remediation.io there (for example a RoleBinding to ClusterRole signal-namespace-sender)", namespace, SignalVerb)
	if clusterScoped {
		hint = fmt.Sprintf("signals about cluster-scoped objects open their RemediationRequests in namespace %q (--cluster-scoped-namespace), which needs verb %q on remediationrequests.remediation.io there", namespace, SignalVerb)
	}
	if reason != "" {
		hint = reason + "; " + hint
	}
	return responsewriters.ForbiddenStatusError(attrs, hint)
}

// notManaged is the answer for a signal about a namespace outside the
// NamespaceGate: the sender's input, like a namespace that does not exist.
func (g *Gate) notManaged(target signals.TargetReference, namespace string) error {
	msg := fmt.Sprintf("namespace %q is not managed by signal-apiserver (its labels do not match --namespace-selector=%s): no RemediationRequest is opened or counted in it", namespace, g.Namespaces)
	err := field.Invalid(field.NewPath("spec", "target", "namespace"), namespace, msg)
	if target.Namespace == "" {
		msg = fmt.Sprintf("signals about cluster-scoped objects open their RemediationRequests in namespace %q (--cluster-scoped-namespace), which is not managed (its labels do not match --namespace-selector=%s)", namespace, g.Namespaces)
		err = field.Invalid(field.NewPath("spec", "target", "kind"), target.Kind, msg)
	}
	return apierrors.NewInvalid(signals.Kind("Signal"), "", field.ErrorList{err})
}
