package dedup

import (
	"errors"
	"fmt"
	"io"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	utilnet "k8s.io/apimachinery/pkg/util/net"
)

// The engine's errors. Submit returns one of these (wrapped, with the
// details), a context error when its caller gave up, or an error it has no
// name for: a failure of the server itself.
var (
	// ErrNotSynced means the cache has not been filled yet; try later.
	ErrNotSynced = errors.New("the RemediationRequest cache has not synced yet")
	// ErrNoActiveRemediation means a Resolved signal found nothing to resolve.
	ErrNoActiveRemediation = errors.New("no active RemediationRequest for this fingerprint")
	// ErrNameCollision means the RemediationRequest at the fingerprint's name
	// carries another fingerprint. Nothing is merged; the signal is refused.
	ErrNameCollision = errors.New("another fingerprint holds this RemediationRequest name")
	// ErrContention means the signal gave up after maxAttempts.
	ErrContention = errors.New("RemediationRequests of this fingerprint kept changing")
	// ErrNamespaceNotFound means the RemediationRequest's namespace does not
	// exist, so none can be opened there.
	ErrNamespaceNotFound = errors.New("the namespace does not exist")
	// ErrNamespaceTerminating means the RemediationRequest's namespace is
	// being deleted, so none can be opened there.
	ErrNamespaceTerminating = errors.New("the namespace is being deleted")
	// ErrUnavailable means kube-apiserver could not take one of the
	// engine's requests now: unreachable, restarting, overloaded, or
	// refusing the server while its authorizer starts after a restart. A
	// retry will likely succeed; a write cut off this way may have landed.
	ErrUnavailable = errors.New("kube-apiserver is unavailable")
	// ErrPreviousBeingDeleted means the RemediationRequest at the
	// fingerprint's name, finished or not, is being deleted but still exists
	// (a finalizer holds it): nothing is counted on it, and the next one
	// cannot be opened yet; try later.
	ErrPreviousBeingDeleted = errors.New("the RemediationRequest of this fingerprint is still being deleted")
)

// classifyCreate wraps the errors of a create that say the namespace cannot
// take RemediationRequests: kube-apiserver answers 404 for a missing
// namespace and 403 with cause NamespaceTerminating for one being deleted.
func classifyCreate(err error) error {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err
	}
	st := status.Status()
	switch {
	case apierrors.IsNotFound(err) && st.Details != nil && st.Details.Kind == "namespaces":
		return fmt.Errorf("%w: %w", ErrNamespaceNotFound, err)
	case apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return fmt.Errorf("%w: %w", ErrNamespaceTerminating, err)
	}
	return err
}

// upstream wraps err, the error of a request to kube-apiserver, in
// ErrUnavailable if a retry is likely to succeed. A 403 is among those:
// kube-apiserver denies the server while its authorizer is still starting
// (seen on every kube-apiserver restart), and a broken RBAC binding, which
// looks the same, is not the sender's to fix either; the message names it.
func upstream(err error) error {
	if err == nil || errors.Is(err, ErrUnavailable) || errors.Is(err, ErrNamespaceNotFound) || errors.Is(err, ErrNamespaceTerminating) {
		return err
	}
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		if apierrors.IsTooManyRequests(err) || apierrors.IsServiceUnavailable(err) || apierrors.IsTimeout(err) ||
			apierrors.IsServerTimeout(err) || apierrors.IsForbidden(err) {
			return fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return err
	}
	if utilnet.IsConnectionRefused(err) || utilnet.IsConnectionReset(err) || utilnet.IsProbableEOF(err) ||
		utilnet.IsTimeout(err) || utilnet.IsHTTP2ConnectionLost(err) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	return err
}
