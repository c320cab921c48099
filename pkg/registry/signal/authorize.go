package signal

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

// Authorize checks, before anything is read or written, that the requesting
// user may signal about the namespace where the signal's RemediationRequest
// would live (else 403 Forbidden), and that the namespace is managed (else
// 422 on spec.target.namespace, which senders do not retry). The
// Alertmanager storage checks every alert through it.
func (r *REST) Authorize(ctx context.Context, sig *signals.Signal) error {
	namespace := r.namespaceOf(sig.Spec.Target)
	if r.opts.Authorizer != nil {
		if err := r.authorize(ctx, namespace, sig.Spec.Target.Namespace == ""); err != nil {
			return err
		}
	}
	if r.opts.Namespaces == nil {
		return nil
	}
	managed, err := r.opts.Namespaces.Managed(namespace)
	if err != nil {
		return serviceUnavailable(err)
	}
	if managed {
		return nil
	}
	denials.WithLabelValues(denialNotManaged).Inc()
	return r.notManaged(sig, namespace)
}

func (r *REST) authorize(ctx context.Context, namespace string, clusterScoped bool) error {
	u, ok := genericapirequest.UserFrom(ctx)
	if !ok {
		denials.WithLabelValues(denialForbidden).Inc()
		return apierrors.NewForbidden(remediationv1alpha1.Resource("remediationrequests"), "", errors.New("the request has no user"))
	}
	attrs := signalAttributes(u, namespace)
	decision, reason, err := r.opts.Authorizer.Authorize(ctx, attrs)
	switch {
	case decision == authorizer.DecisionAllow:
		return nil
	case err != nil:
		// No decision: kube-apiserver did not answer the
		// SubjectAccessReview. The server's problem, worth a retry.
		return serviceUnavailable(fmt.Errorf("authorizing user %q to signal about namespace %q: %w", u.GetName(), namespace, err))
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
func (r *REST) notManaged(sig *signals.Signal, namespace string) error {
	msg := fmt.Sprintf("namespace %q is not managed by signal-apiserver (its labels do not match --namespace-selector=%s): no RemediationRequest is opened or counted in it", namespace, r.opts.Namespaces)
	err := field.Invalid(field.NewPath("spec", "target", "namespace"), namespace, msg)
	if sig.Spec.Target.Namespace == "" {
		msg = fmt.Sprintf("signals about cluster-scoped objects open their RemediationRequests in namespace %q (--cluster-scoped-namespace), which is not managed (its labels do not match --namespace-selector=%s)", namespace, r.opts.Namespaces)
		err = field.Invalid(field.NewPath("spec", "target", "kind"), sig.Spec.Target.Kind, msg)
	}
	return apierrors.NewInvalid(signals.Kind("Signal"), "", field.ErrorList{err})
}

// namespaceOf is the namespace of the RemediationRequests of signals about
// target: its own, or --cluster-scoped-namespace for cluster-scoped objects.
// Owner resolution never leaves the target's namespace.
func (r *REST) namespaceOf(target signals.TargetReference) string {
	if target.Namespace == "" {
		return r.opts.ClusterScopedNamespace
	}
	return target.Namespace
}
