// Package signal is the REST face of the create-only signals resource:
// decoding concerns, validation, admission and API errors. The work is
// done by a Deduplicator.
package signal

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	utilnet "k8s.io/apimachinery/pkg/util/net"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/util/dryrun"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	"github.com/signal-apiserver/signal-apiserver/apis/signals/validation"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
	"github.com/signal-apiserver/signal-apiserver/pkg/owner"
)

// OutcomeAnnotation is set on the RemediationRequest returned for a signal,
// never stored: Created, Deduplicated, AlreadyCounted or Resolved.
const OutcomeAnnotation = "signals.remediation.io/outcome"

// OwnerResolutionAnnotation is set on a RemediationRequest created for a
// signal whose target could not be resolved to its top-level controller:
// "<reason>: <message>". The RemediationRequest is then about the target
// itself.
const OwnerResolutionAnnotation = "signals.remediation.io/owner-resolution"

// Options configure the storage.
type Options struct {
	// ClusterID goes into default fingerprints; see package fingerprint.
	ClusterID string
	// ClusterScopedNamespace holds the RemediationRequests of signals about
	// cluster-scoped objects.
	ClusterScopedNamespace string
	// Owners resolves the targets of signals without their own fingerprint;
	// nil leaves every target as its sender named it.
	Owners OwnerResolver
	// Authorizer decides whether the requesting user may signal about a
	// namespace (SignalVerb); nil allows every user, for tests only.
	Authorizer Authorizer
	// Namespaces are the namespaces RemediationRequests may be opened in;
	// nil means all.
	Namespaces NamespaceGate
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// REST is the storage of signals: create-only, nothing stored.
type REST struct {
	dedup   Deduplicator
	opts    Options
	sources sources
	answers answers
}

var (
	_ rest.Storage              = &REST{}
	_ rest.Creater              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.SingularNameProvider = &REST{}
	_ rest.StorageMetadata      = &REST{}
)

// NewREST returns the signals storage.
func NewREST(d Deduplicator, opts Options) *REST {
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &REST{dedup: d, opts: opts, answers: newAnswers()}
}

// New returns an empty Signal.
func (r *REST) New() runtime.Object { return &signals.Signal{} }

// Destroy releases nothing: the storage holds no resources.
func (r *REST) Destroy() {}

// NamespaceScoped is false: a Signal names its target's namespace itself.
func (r *REST) NamespaceScoped() bool { return false }

// GetSingularName is used by kubectl and discovery.
func (r *REST) GetSingularName() string { return "signal" }

// ProducesMIMETypes adds nothing to the defaults.
func (r *REST) ProducesMIMETypes(string) []string { return nil }

// ProducesObject tells OpenAPI that creating a Signal answers with a
// RemediationRequest.
func (r *REST) ProducesObject(verb string) any {
	if verb == "POST" {
		return remediationv1alpha1.RemediationRequest{}
	}
	return nil
}

// Create validates the signal, authorizes the sender for the namespace
// where its RemediationRequest would live, runs admission, and counts it.
// It answers with the RemediationRequest the signal was counted on.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	sig, ok := obj.(*signals.Signal)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a Signal: %T", obj))
	}
	began := r.opts.Now()
	res, err := r.create(ctx, sig, createValidation, options)
	r.observe(sig.Spec.Source, began, res, err)
	if err != nil {
		return nil, err
	}
	if dryrun.IsDryRun(options.DryRun) {
		// Computed for this signal alone: nothing to share.
		return annotated(res), nil
	}
	return r.answers.of(res), nil
}

func (r *REST) create(ctx context.Context, sig *signals.Signal, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (*dedup.Result, error) {
	// The create handler does this to the metadata it can reach; a Signal's
	// is out of its reach (apis/signals/types.go), so it is done here,
	// before admission validates the Signal. Signals are cluster-scoped:
	// the namespace is cleared, never refused.
	rest.WipeObjectMetaSystemFields(&sig.ObjectMeta)
	if err := rest.EnsureObjectNamespaceMatchesRequestNamespace(metav1.NamespaceNone, &sig.ObjectMeta); err != nil {
		return nil, err
	}
	if errs := validation.ValidateSignal(sig); len(errs) > 0 {
		return nil, apierrors.NewInvalid(signals.Kind("Signal"), sig.ObjectMeta.Name, errs)
	}
	if err := r.Authorize(ctx, sig); err != nil {
		return nil, err
	}
	if createValidation != nil {
		if err := createValidation(ctx, sig); err != nil {
			return nil, err
		}
	}
	signal, err := r.ToDedup(ctx, sig, dryrun.IsDryRun(options.DryRun))
	if err != nil {
		return nil, err
	}
	res, err := r.dedup.Submit(ctx, signal)
	if err != nil {
		return nil, toAPIError(err, signal)
	}
	return res, nil
}

// ToAPIError is the error a client sees for an engine error of s.
func (r *REST) ToAPIError(err error, s dedup.Signal) error { return toAPIError(err, s) }

// ToDedup converts a validated signal into the engine's; the Alertmanager
// storage converts each alert through it too. A signal without its own
// fingerprint is fingerprinted by its target's top-level controller; dry-run
// resolves too, so it answers with the RemediationRequest a real signal
// would find. The error is an API error: a signal with an idempotency key
// whose owner lookup failed transiently is refused with 503 rather than
// counted on a fallback RemediationRequest that its retry would not pick.
func (r *REST) ToDedup(ctx context.Context, sig *signals.Signal, dryRun bool) (dedup.Signal, error) {
	now := metav1.NewTime(r.opts.Now())
	spec := &sig.Spec
	firing := now
	if spec.StartsAt != nil {
		firing = *spec.StartsAt
	}
	namespace := r.namespaceOf(spec.Target)
	target := remediationv1alpha1.ResourceReference{
		APIVersion: spec.Target.APIVersion,
		Kind:       spec.Target.Kind,
		Namespace:  spec.Target.Namespace,
		Name:       spec.Target.Name,
	}
	resolved := target
	var annotations map[string]string
	fp, legacyFP := fingerprint.ForKey(spec.Fingerprint), ""
	if spec.Fingerprint == "" {
		if r.opts.Owners != nil {
			res := r.opts.Owners.Resolve(ctx, owner.Reference(target))
			if res.FallbackReason == owner.ReasonLookupFailed && spec.IdempotencyKey != "" {
				return dedup.Signal{}, serviceUnavailable(fmt.Errorf("resolving the owner of %s %s/%s: %s; a signal with an idempotency key is not counted on a fallback RemediationRequest, so that its retry cannot count it on another one", target.Kind, target.Namespace, target.Name, res.Message))
			}
			resolved = remediationv1alpha1.ResourceReference(res.Target)
			if res.FallbackReason != "" {
				annotations = map[string]string{OwnerResolutionAnnotation: res.FallbackReason + ": " + res.Message}
			}
		}
		t := fingerprint.Target{
			ClusterID: r.opts.ClusterID,
			Namespace: resolved.Namespace,
			Group:     groupOf(resolved.APIVersion),
			Kind:      resolved.Kind,
			Name:      resolved.Name,
		}
		fp, legacyFP = fingerprint.ForTarget(t), fingerprint.LegacyForTarget(t)
	}
	var signalTarget *remediationv1alpha1.ResourceReference
	if resolved != target {
		signalTarget = &target
	}
	return dedup.Signal{
		Namespace:         namespace,
		Fingerprint:       fp,
		LegacyFingerprint: legacyFP,
		Resolved:          spec.Status == signals.SignalStatusResolved,
		ReceivedAt:        now.Time,
		DryRun:            dryRun,

		IdempotencyKey: spec.IdempotencyKey,
		Annotations:    annotations,
		Spec: remediationv1alpha1.RemediationRequestSpec{
			SignalFingerprint: fp,
			SignalName:        spec.Name,
			SignalSource:      spec.Source,
			Severity:          spec.Severity,
			TargetResource:    resolved,
			SignalTarget:      signalTarget,
			SignalLabels:      spec.Labels,
			SignalAnnotations: spec.Annotations,
			FiringTime:        firing,
			ReceivedTime:      now,
		},
	}, nil
}

// groupOf returns the API group of apiVersion ("apps/v1" → "apps", "v1" →
// ""); validation has checked its form.
func groupOf(apiVersion string) string {
	group, _, found := strings.Cut(apiVersion, "/")
	if !found {
		return ""
	}
	return group
}

// toAPIError turns an engine error into the error the client sees. Failures
// of the server's own calls to kube-apiserver are the server's problem, not
// the client's: they never pass through as the client's 403 or 422.
func toAPIError(err error, s dedup.Signal) error {
	gr := remediationv1alpha1.Resource("remediationrequests")
	switch {
	case errors.Is(err, dedup.ErrNoActiveRemediation):
		notFound := apierrors.NewNotFound(gr, "")
		notFound.ErrStatus.Message = fmt.Sprintf("no active RemediationRequest with fingerprint %s in namespace %s: a Resolved signal has nothing to resolve", s.Fingerprint, s.Namespace)
		return notFound
	case errors.Is(err, dedup.ErrNotSynced):
		return serviceUnavailable(err)
	case errors.Is(err, dedup.ErrNameCollision):
		return apierrors.NewConflict(gr, "", err)
	case errors.Is(err, dedup.ErrNamespaceNotFound), errors.Is(err, dedup.ErrNamespaceTerminating):
		if s.Namespace != s.Spec.TargetResource.Namespace {
			// The namespace of cluster-scoped targets' RemediationRequests
			// is the server's own configuration, not the sender's input.
			return serviceUnavailable(fmt.Errorf("--cluster-scoped-namespace: %w", err))
		}
		return apierrors.NewInvalid(signals.Kind("Signal"), "", field.ErrorList{
			field.Invalid(field.NewPath("spec", "target", "namespace"), s.Namespace, namespaceMessage(err)),
		})
	case errors.Is(err, dedup.ErrContention):
		return apierrors.NewTooManyRequests(err.Error(), 1)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return apierrors.NewTimeoutError(err.Error(), 1)
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		switch code := status.Status().Code; {
		case code == 429, code == 503, code == 504, apierrors.IsConflict(err), apierrors.IsServerTimeout(err):
			return apierrors.NewTooManyRequests(err.Error(), 1)
		case apierrors.IsForbidden(err):
			// kube-apiserver denies the server while its authorizer is
			// still starting (seen on every kube-apiserver restart), and a
			// broken RBAC binding looks the same: neither is the sender's
			// fault nor, for a 403, theirs to read. Retrying is right for
			// the first; the message names the second.
			return serviceUnavailable(err)
		}
	}
	// kube-apiserver restarting or unreachable: a retry will likely
	// succeed. A write cut off this way may have landed, so the signal may
	// be counted already (docs/dedup.md: acknowledged <= count <= sent);
	// an idempotency key makes the retry safe.
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		utilnet.IsTimeout(err) || utilnet.IsHTTP2ConnectionLost(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return serviceUnavailable(err)
	}
	return apierrors.NewInternalError(err)
}

func namespaceMessage(err error) string {
	if errors.Is(err, dedup.ErrNamespaceTerminating) {
		return "the namespace is being deleted: no RemediationRequest can be opened in it"
	}
	return "the namespace does not exist: no RemediationRequest can be opened in it"
}

// serviceUnavailable is a 503 with Retry-After: 1; k8s.io/apiserver turns
// RetryAfterSeconds into the header.
func serviceUnavailable(err error) error {
	e := apierrors.NewServiceUnavailable(err.Error())
	e.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
	return e
}
