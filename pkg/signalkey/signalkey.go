// Package signalkey decides which signals are the same problem: the
// namespace and fingerprint a Signal is deduplicated under, and the
// RemediationRequest it opens when its problem has none. Both storages
// (Signals and Alertmanager notifications) and the benchmark go through it;
// pkg/dedup then does the counting.
//
// A signal without its own spec.fingerprint is fingerprinted by its
// target's top-level controller (pkg/owner), so that every signal about one
// workload lands on one RemediationRequest; docs/dedup.md has the rules.
package signalkey

import (
	"context"
	"errors"
	"fmt"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
	"github.com/signal-apiserver/signal-apiserver/pkg/owner"
	"github.com/signal-apiserver/signal-apiserver/pkg/targets"
)

// ErrOwnerLookupFailed means the owner of a keyed signal's target could not
// be looked up just now: such a signal is not counted on a fallback
// RemediationRequest about the target, which its retry, resolving, would
// not pick (the key is scoped to one RemediationRequest). Try later.
var ErrOwnerLookupFailed = errors.New("the owner of the target could not be looked up")

// MaxStartsAtSkew and MinStartsAt bound a plausible startsAt: a signal
// that claims to have started later than MaxStartsAtSkew after it was
// received, or before MinStartsAt, has a broken clock behind it, and its
// RemediationRequest's firingTime is the time received instead
// (AnnotationFiringTimeClamped).
const MaxStartsAtSkew = 5 * time.Minute

// MinStartsAt is the earliest plausible startsAt.
var MinStartsAt = time.Date(2000, time.January, 1, 0, 0, 0, 0, time.UTC)

// OwnerResolver resolves a signal's target to its top-level controller;
// *owner.Resolver is the implementation. It never fails: a failed resolution
// answers with the target itself and a fallback reason.
type OwnerResolver interface {
	Resolve(ctx context.Context, target remediationv1alpha1.ResourceReference, uid types.UID) owner.Result
}

// KindResolver resolves the kind a sender wrote to the one kube-apiserver
// serves; *targets.Resolver is the implementation.
type KindResolver interface {
	Resolve(ctx context.Context, apiVersion, kind string) (targets.Kind, error)
}

// Policy is how signals are keyed.
type Policy struct {
	// Kinds resolves target kinds through discovery; nil takes every
	// target as its sender wrote it (for tests of other parts only).
	Kinds KindResolver
	// ClusterID goes into default fingerprints (--cluster-id).
	ClusterID string
	// ClusterScopedNamespace holds the RemediationRequests of signals about
	// cluster-scoped objects (--cluster-scoped-namespace).
	ClusterScopedNamespace string
	// Owners resolves the targets of signals without their own fingerprint;
	// nil leaves every target as its sender named it (--resolve-owners).
	Owners OwnerResolver
	// Now is the clock; time.Now if nil.
	Now func() time.Time
}

// Target returns t, a validated target, named as discovery names it: the
// canonical group and Kind (docs/dedup.md, "What identifies a target"). A
// target discovery does not know, or whose namespace does not fit its
// kind's scope, is the sender's mistake, returned as field errors under
// path; the error, wrapping targets.ErrDiscoveryUnavailable, is the
// server's (retryable). Resolving before the namespace of a signal's
// RemediationRequest is derived keeps a cluster-scoped target from passing
// the gate of a namespace it names.
func (p *Policy) Target(ctx context.Context, t signals.TargetReference, path *field.Path) (signals.TargetReference, field.ErrorList, error) {
	if p.Kinds == nil {
		return t, nil, nil
	}
	k, err := p.Kinds.Resolve(ctx, t.APIVersion, t.Kind)
	var unknown *targets.UnknownKindError
	switch {
	case errors.As(err, &unknown):
		return t, field.ErrorList{field.Invalid(path.Child("kind"), t.Kind, unknown.Error())}, nil
	case err != nil:
		return t, nil, err
	}
	canonical := t
	canonical.APIVersion, canonical.Kind = k.GroupVersion().String(), k.Kind
	switch {
	case k.Namespaced && t.Namespace == "":
		return t, field.ErrorList{field.Required(path.Child("namespace"),
			fmt.Sprintf("%s is namespaced: the namespace of the %s is required", k.GroupKind(), k.Kind))}, nil
	case !k.Namespaced && t.Namespace != "":
		return t, field.ErrorList{field.Invalid(path.Child("namespace"), t.Namespace,
			fmt.Sprintf("%s is cluster-scoped: a %s has no namespace, leave it empty (its RemediationRequests live in the cluster-scoped namespace)", k.GroupKind(), k.Kind))}, nil
	}
	return canonical, nil, nil
}

// Namespace is where the RemediationRequests of signals about target live:
// its own namespace, or ClusterScopedNamespace for a cluster-scoped object.
// Owner resolution never leaves the target's namespace.
func (p *Policy) Namespace(target signals.TargetReference) string {
	if target.Namespace == "" {
		return p.ClusterScopedNamespace
	}
	return target.Namespace
}

// Fingerprint is the fingerprint of signals about target that carry no
// spec.fingerprint of their own, when target is its own top-level
// controller (a Deployment, say): what Key gives them without a lookup.
func (p *Policy) Fingerprint(target signals.TargetReference) string {
	return fingerprint.ForObject(p.ClusterID, reference(target))
}

// reference is target without its UID: a problem is named by the object's
// kind, namespace and name, the same across its recreations (a Pod
// rescheduled by its StatefulSet).
func reference(t signals.TargetReference) remediationv1alpha1.ResourceReference {
	return remediationv1alpha1.ResourceReference{APIVersion: t.APIVersion, Kind: t.Kind, Namespace: t.Namespace, Name: t.Name}
}

// Key returns the engine's signal for sig, a validated Signal whose target
// is target as Target resolved it: where its
// RemediationRequest lives, its fingerprint (and the one versions before the
// API group was part of it gave it), and the RemediationRequest it opens.
// Dry-run resolves owners too, so that it answers with the
// RemediationRequest a real signal would find. The error is
// ErrOwnerLookupFailed, wrapped, or an *owner.TargetUIDMismatchError when
// the target, read for its owner, is not the object of spec.target.uid.
func (p *Policy) Key(ctx context.Context, sig *signals.Signal, target signals.TargetReference, dryRun bool) (dedup.Signal, error) {
	now := time.Now
	if p.Now != nil {
		now = p.Now
	}
	received := metav1.NewTime(now())
	spec := &sig.Spec
	firing := received
	var annotations map[string]string
	if spec.StartsAt != nil {
		firing = *spec.StartsAt
		if firing.After(received.Add(MaxStartsAtSkew)) || firing.Time.Before(MinStartsAt) {
			annotations = map[string]string{signalsv1.AnnotationFiringTimeClamped: fmt.Sprintf(
				"startsAt %s is implausible (later than %s after the time received, or before %s): firingTime is the time received",
				firing.UTC().Format(time.RFC3339Nano), MaxStartsAtSkew, MinStartsAt.Format(time.RFC3339))}
			firing = received
		}
	}
	sent := reference(spec.Target)
	resolved := reference(target)
	fp, legacyFP := fingerprint.ForKey(spec.Fingerprint), ""
	if spec.Fingerprint == "" {
		if p.Owners != nil {
			res := p.Owners.Resolve(ctx, resolved, target.UID)
			if res.Err != nil {
				return dedup.Signal{}, res.Err
			}
			if res.FallbackReason == owner.ReasonLookupFailed && spec.IdempotencyKey != "" {
				return dedup.Signal{}, fmt.Errorf("%w: %s %s/%s: %s", ErrOwnerLookupFailed, resolved.Kind, resolved.Namespace, resolved.Name, res.Message)
			}
			resolved = res.Target
			if res.FallbackReason != "" {
				if annotations == nil {
					annotations = map[string]string{}
				}
				annotations[signalsv1.AnnotationOwnerResolution] = res.FallbackReason + ": " + res.Message
			}
		}
		fp, legacyFP = fingerprint.ForObject(p.ClusterID, resolved), fingerprint.LegacyForObject(p.ClusterID, resolved)
	}
	// The target as its sender wrote it, where the RemediationRequest's
	// differs: another spelling of its kind, or an object it is owned by.
	var signalTarget *remediationv1alpha1.ResourceReference
	if resolved != sent {
		signalTarget = &sent
	}
	return dedup.Signal{
		Namespace:         p.Namespace(target),
		Fingerprint:       fp,
		LegacyFingerprint: legacyFP,
		Resolved:          spec.Status == signals.SignalStatusResolved,
		ReceivedAt:        received.Time,
		DryRun:            dryRun,
		IdempotencyKey:    spec.IdempotencyKey,
		Annotations:       annotations,
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
			ReceivedTime:      received,
		},
	}, nil
}
