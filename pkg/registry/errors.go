// Package registry holds what the two create-only storages, Signals
// (registry/signal) and Alertmanager notifications (registry/alertmanager),
// share: the checks a signal passes before anything is read or written
// (Gate), and the one mapping of the engine's errors to API statuses.
package registry

import (
	"context"
	"errors"
	"fmt"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/util/validation/field"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	"github.com/signal-apiserver/signal-apiserver/pkg/apistatus"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/owner"
	"github.com/signal-apiserver/signal-apiserver/pkg/signalkey"
)

// APIError is the error a client sees for err, an error of keying or
// counting s. What is retryable answers 429, 503 or 504 with Retry-After;
// the sender's own mistakes are 4xx that name the field; the server's own
// failures (its calls to kube-apiserver included) never pass through as
// the sender's 403 or 422, and are 500 only when nothing better is known.
func APIError(err error, s dedup.Signal) error {
	gr := remediationv1alpha1.Resource("remediationrequests")
	var mismatch *owner.TargetUIDMismatchError
	switch {
	case errors.Is(err, dedup.ErrNoActiveRemediation):
		notFound := apierrors.NewNotFound(gr, "")
		notFound.ErrStatus.Message = fmt.Sprintf("no active RemediationRequest with fingerprint %s in namespace %s: a Resolved signal has nothing to resolve", s.Fingerprint, s.Namespace)
		return notFound
	case errors.Is(err, dedup.ErrNameCollision):
		return apierrors.NewConflict(gr, "", err)
	case errors.Is(err, dedup.ErrNamespaceNotFound), errors.Is(err, dedup.ErrNamespaceTerminating):
		if s.Namespace != s.Spec.TargetResource.Namespace {
			// The namespace of cluster-scoped targets' RemediationRequests
			// is the server's own configuration, not the sender's input.
			return apistatus.ServiceUnavailable(fmt.Errorf("--cluster-scoped-namespace: %w", err))
		}
		msg := "the namespace does not exist: no RemediationRequest can be opened in it"
		if errors.Is(err, dedup.ErrNamespaceTerminating) {
			msg = "the namespace is being deleted: no RemediationRequest can be opened in it"
		}
		return apierrors.NewInvalid(signals.Kind("Signal"), "", field.ErrorList{
			field.Invalid(field.NewPath("spec", "target", "namespace"), s.Namespace, msg),
		})
	case errors.As(err, &mismatch):
		return apierrors.NewInvalid(signals.Kind("Signal"), "", field.ErrorList{
			field.Invalid(field.NewPath("spec", "target", "uid"), mismatch.UID, mismatch.Error()),
		})
	case errors.Is(err, dedup.ErrContention):
		return apierrors.NewTooManyRequests(err.Error(), 1)
	case errors.Is(err, dedup.ErrNotSynced), errors.Is(err, dedup.ErrUnavailable),
		errors.Is(err, dedup.ErrPreviousBeingDeleted), errors.Is(err, signalkey.ErrOwnerLookupFailed):
		// A write cut off by kube-apiserver may have landed, so the signal
		// may be counted already (docs/dedup.md: acknowledged <= count <=
		// sent); an idempotency key makes the retry safe.
		return apistatus.ServiceUnavailable(err)
	case errors.Is(err, context.DeadlineExceeded), errors.Is(err, context.Canceled):
		return apierrors.NewTimeoutError(err.Error(), 1)
	}
	return apierrors.NewInternalError(err)
}
