package bench

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	remediationclient "github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/typed/remediation/v1alpha1"
)

// baseline is the established gateway's deduplication, as a client of
// kube-apiserver, neither tuned nor handicapped:
//
//  1. List the RemediationRequests of the fingerprint (field selector) and
//     take the first one that is not terminal.
//  2. None: create a RemediationRequest. AlreadyExists (a concurrent
//     create won) is success and nothing more is done. Then initialize the
//     count with the status write of step 3; its failure is logged, not
//     returned (the RR exists). The gateway names it
//     rr-<fingerprint[:12]>-<unix seconds>; the CRD admits only
//     rr-<fingerprint[:60]> since the name rule of issue 9, so that is the
//     name here, and only creates of the same second collided before.
//  3. Else count: retry.RetryOnConflict(retry.DefaultBackoff, Get, set or
//     increment status.deduplication, UpdateStatus). An error that is left
//     after the retries is logged and swallowed: the sender still gets 2xx.
type baseline struct{ cs versioned.Interface }

func (c baseline) send(ctx context.Context, w *workload, i int) result {
	sig, fp := w.request(i)
	rrs := c.cs.RemediationV1alpha1().RemediationRequests(w.namespace)
	list, err := rrs.List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.signalFingerprint", fp).String(),
	})
	if err != nil {
		return result{err: fmt.Errorf("listing RemediationRequests of %s: %w", fp, err)}
	}
	for j := range list.Items {
		if rr := &list.Items[j]; !rr.Status.OverallPhase.IsTerminal() {
			return result{swallowed: updateDeduplicationStatus(ctx, rrs, w.namespace, rr.Name)}
		}
	}

	now := time.Now()
	rr := &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.namespace, Name: remediationv1alpha1.NameFor(fp)},
		Spec:       remediationSpec(sig, fp, now),
	}
	if _, err := rrs.Create(ctx, rr, metav1.CreateOptions{}); err != nil {
		if apierrors.IsAlreadyExists(err) {
			return result{swallowed: err}
		}
		return result{err: fmt.Errorf("creating RemediationRequest %s/%s: %w", rr.Namespace, rr.Name, err)}
	}
	return result{swallowed: updateDeduplicationStatus(ctx, rrs, w.namespace, rr.Name)}
}

// updateDeduplicationStatus is the gateway's status write for a new and for
// a duplicate signal alike. It returns the error it logged.
func updateDeduplicationStatus(ctx context.Context, rrs remediationclient.RemediationRequestInterface, namespace, name string) error {
	err := retry.RetryOnConflict(retry.DefaultBackoff, func() error {
		rr, err := rrs.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		now := metav1.Now()
		if rr.Status.Deduplication == nil {
			rr.Status.Deduplication = &remediationv1alpha1.DeduplicationStatus{FirstSeenAt: now, OccurrenceCount: 1}
		} else {
			rr.Status.Deduplication.OccurrenceCount++
		}
		rr.Status.Deduplication.LastSeenAt = now
		_, err = rrs.UpdateStatus(ctx, rr, metav1.UpdateOptions{})
		return err
	})
	if err != nil {
		klog.V(2).InfoS("Failed to update deduplication status", "err", err, "rr", klog.KRef(namespace, name))
	}
	return err
}
