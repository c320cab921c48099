package bench

import (
	"context"
	"fmt"
	"sync"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
)

// limitStatusUpdate counts each signal with one resourceVersion-preconditioned
// status update of an existing RemediationRequest of its fingerprint,
// straight to kube-apiserver: the floor of any intake that acknowledges a
// signal after its own durable write. One write per RemediationRequest is in
// flight at a time (clients of one fingerprint wait for each other), so no
// write conflicts and nothing is read: exactly one UPDATE per signal.
type limitStatusUpdate struct {
	cs versioned.Interface

	mu sync.Mutex
	// rrs holds, per namespace and fingerprint, the RemediationRequest as
	// last written.
	rrs map[string]*countedRR
}

type countedRR struct {
	mu sync.Mutex
	rr *remediationv1alpha1.RemediationRequest
}

// prepare creates one RemediationRequest per fingerprint of w, counted
// once, with the spec signal-apiserver would give it.
func (c *limitStatusUpdate) prepare(ctx context.Context, w *workload) error {
	rrs := c.cs.RemediationV1alpha1().RemediationRequests(w.namespace)
	created := make(map[string]*countedRR, len(w.fingerprints))
	for j, fp := range w.fingerprints {
		now := time.Now()
		rr, err := rrs.Create(ctx, &remediationv1alpha1.RemediationRequest{
			ObjectMeta: metav1.ObjectMeta{Namespace: w.namespace, Name: remediationv1alpha1.NameFor(fp)},
			Spec:       remediationSpec(w.signals[j], fp, now),
		}, metav1.CreateOptions{FieldManager: serverFieldManager})
		if err != nil {
			return fmt.Errorf("creating a RemediationRequest for %s: %w", fp, err)
		}
		at := metav1.NewTime(now)
		rr.Status.Deduplication = &remediationv1alpha1.DeduplicationStatus{FirstSeenAt: at, LastSeenAt: at, OccurrenceCount: 1}
		counted, err := rrs.UpdateStatus(ctx, rr, metav1.UpdateOptions{FieldManager: serverFieldManager})
		if err != nil {
			return fmt.Errorf("counting RemediationRequest %s/%s: %w", rr.Namespace, rr.Name, err)
		}
		created[w.namespace+"/"+fp] = &countedRR{rr: counted}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.rrs == nil {
		c.rrs = map[string]*countedRR{}
	}
	for k, v := range created {
		c.rrs[k] = v
	}
	return nil
}

func (c *limitStatusUpdate) send(ctx context.Context, w *workload, i int) result {
	_, fp := w.request(i)
	c.mu.Lock()
	counted := c.rrs[w.namespace+"/"+fp]
	c.mu.Unlock()
	if counted == nil {
		return result{err: fmt.Errorf("no RemediationRequest prepared for %s", fp)}
	}

	counted.mu.Lock()
	defer counted.mu.Unlock()
	next := counted.rr.DeepCopy()
	next.Status.Deduplication.OccurrenceCount++
	next.Status.Deduplication.LastSeenAt = metav1.Now()
	updated, err := c.cs.RemediationV1alpha1().RemediationRequests(w.namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{FieldManager: serverFieldManager})
	if err != nil {
		return result{err: err}
	}
	counted.rr = updated
	return result{}
}
