package dedup

import (
	"context"
	"fmt"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// Policy is the recurrence policy: how long the next RemediationRequest of
// a finished problem is held back. A zero duration or count turns that hold
// off; the zero Policy opens the next one at once, as earlier versions did.
type Policy struct {
	// Cooldown holds the next one after Completed, Skipped or Cancelled.
	Cooldown time.Duration
	// Backoff holds the next one after the first of consecutive Failed or
	// TimedOut remediations, doubling with each further one up to
	// BackoffMax.
	Backoff    time.Duration
	BackoffMax time.Duration
	// BlockAfter consecutive Failed or TimedOut remediations block the
	// problem until a person unblocks it.
	BlockAfter int
	// FlapThreshold remediations opened within FlapWindow make a problem
	// flapping: a resolution no longer ends its hold.
	FlapThreshold int
	FlapWindow    time.Duration
}

// DefaultPolicy is the policy of the server's flags' defaults
// (docs/dedup.md argues them).
var DefaultPolicy = Policy{
	Cooldown:      5 * time.Minute,
	Backoff:       time.Minute,
	BackoffMax:    time.Hour,
	BlockAfter:    3,
	FlapThreshold: 3,
	FlapWindow:    time.Hour,
}

// decision is what the policy says about a finished RemediationRequest at
// one moment.
type decision struct {
	hold     remediationv1alpha1.Hold // empty: the next one may open
	until    time.Time                // end of a Held hold
	failures int64
	reason   string
	message  string
}

// history returns the records of rr's predecessors, newest first, reading
// an earlier version's spec.previous where there is no history.
func history(rr *remediationv1alpha1.RemediationRequest) []remediationv1alpha1.RemediationRecord {
	if len(rr.Spec.History) > 0 || rr.Spec.Previous == nil {
		return rr.Spec.History
	}
	return []remediationv1alpha1.RemediationRecord{recordFromPrevious(rr.Spec.Previous)}
}

// record is what remains of the finished rr in the one that replaces it.
func record(rr *remediationv1alpha1.RemediationRequest) remediationv1alpha1.RemediationRecord {
	r := remediationv1alpha1.RemediationRecord{
		UID:               rr.UID,
		RemediationNumber: rr.Spec.RemediationNumber,
		Phase:             rr.Status.OverallPhase,
		OpenedAt:          rr.Spec.ReceivedTime.DeepCopy(),
		Unblocked:         rr.Annotations[remediationv1alpha1.AnnotationUnblock] != "",
	}
	if r.RemediationNumber == 0 {
		r.RemediationNumber = legacyNumber(rr.Name)
	}
	if d := rr.Status.Deduplication; d != nil {
		r.OccurrenceCount = d.OccurrenceCount
		r.OpenedAt = d.FirstSeenAt.DeepCopy()
	}
	if rc := rr.Status.Recurrence; rc != nil {
		r.FinishedAt = rc.FinishedAt.DeepCopy()
		r.Resolved = rc.ResolvedAt != nil
	}
	return r
}

// decide applies p to the finished rr at now. rr's finish time must be
// stamped (status.recurrence.finishedAt).
func (p Policy) decide(rr *remediationv1alpha1.RemediationRequest, now time.Time) decision {
	rc := rr.Status.Recurrence
	finished := rc.FinishedAt.Time
	records := append([]remediationv1alpha1.RemediationRecord{record(rr)}, history(rr)...)
	var d decision
	d.failures = consecutiveFailures(records, p)
	switch {
	case records[0].Unblocked:
		d.reason, d.message = "Unblocked", "a person released the hold; the next firing signal opens the next RemediationRequest"
		return d
	case p.BlockAfter > 0 && d.failures >= int64(p.BlockAfter):
		d.hold, d.reason = remediationv1alpha1.HoldBlocked, "Blocked"
		d.message = fmt.Sprintf("%d remediations in a row failed; no new RemediationRequest until a person acts: kubectl annotate rr %s %s=now (or deletes it)",
			d.failures, rr.Name, remediationv1alpha1.AnnotationUnblock)
		return d
	}
	var wait time.Duration
	switch rr.Status.OverallPhase {
	case remediationv1alpha1.PhaseFailed, remediationv1alpha1.PhaseTimedOut:
		wait, d.reason = p.Backoff, "Backoff"
		for i := int64(1); i < d.failures && wait < p.BackoffMax; i++ {
			wait *= 2
		}
		wait = min(wait, p.BackoffMax)
		if p.BackoffMax == 0 {
			wait = 0
		}
	default:
		wait, d.reason = p.Cooldown, "Cooldown"
	}
	if rc.ResolvedAt != nil {
		if !p.flapping(records, now) {
			d.reason, d.message = "Resolved", "the problem resolved after the remediation finished; the next firing signal opens the next RemediationRequest"
			return d
		}
		d.reason = "Flapping"
	}
	d.until = finished.Add(wait)
	if !now.Before(d.until) {
		d.reason, d.message = "HoldOver", "the hold is over; the next firing signal opens the next RemediationRequest"
		return d
	}
	d.hold = remediationv1alpha1.HoldHeld
	switch d.reason {
	case "Backoff":
		d.message = fmt.Sprintf("%d remediations in a row failed; the next one opens after a backoff of %s, at %s", d.failures, wait, d.until.UTC().Format(time.RFC3339))
	case "Flapping":
		d.message = fmt.Sprintf("the problem fired and resolved %d times within %s; the next remediation opens at %s", p.FlapThreshold, p.FlapWindow, d.until.UTC().Format(time.RFC3339))
	default:
		d.message = fmt.Sprintf("the remediation finished %s; the next one opens after a cooldown of %s, at %s", rr.Status.OverallPhase, wait, d.until.UTC().Format(time.RFC3339))
	}
	return d
}

// consecutiveFailures counts the Failed and TimedOut records from the
// newest back, passing over Skipped and Cancelled ones, up to a Completed
// one, an unblocked one, or a quiet gap of twice BackoffMax between a
// finish and the next opening (kubelet resets a crash loop's backoff after
// a quiet period too).
func consecutiveFailures(records []remediationv1alpha1.RemediationRecord, p Policy) int64 {
	var n int64
	for i, r := range records {
		if i > 0 && r.Unblocked {
			break
		}
		if i > 0 && p.BackoffMax > 0 && r.FinishedAt != nil && records[i-1].OpenedAt != nil &&
			records[i-1].OpenedAt.Sub(r.FinishedAt.Time) > 2*p.BackoffMax {
			break
		}
		switch r.Phase {
		case remediationv1alpha1.PhaseFailed, remediationv1alpha1.PhaseTimedOut:
			n++
		case remediationv1alpha1.PhaseSkipped, remediationv1alpha1.PhaseCancelled:
		default:
			return n
		}
	}
	return n
}

// flapping reports whether FlapThreshold or more of the records opened
// within FlapWindow before now.
func (p Policy) flapping(records []remediationv1alpha1.RemediationRecord, now time.Time) bool {
	if p.FlapThreshold <= 0 {
		return false
	}
	n := 0
	for _, r := range records {
		if r.OpenedAt != nil && now.Sub(r.OpenedAt.Time) <= p.FlapWindow {
			n++
		}
	}
	return n >= p.FlapThreshold
}

// settle stamps the finished rr's finish time if it has none, applies the
// policy at now and records the decision in status.recurrence and the Held
// condition. It reports the decision and whether rr became Blocked.
func (p Policy) settle(rr *remediationv1alpha1.RemediationRequest, now time.Time) (decision, bool) {
	rc := rr.Status.Recurrence
	if rc == nil {
		rc = &remediationv1alpha1.RecurrenceStatus{}
		rr.Status.Recurrence = rc
	}
	if rc.FinishedAt == nil {
		t := metav1.NewTime(now)
		rc.FinishedAt = &t
	}
	was := rc.Hold
	d := p.decide(rr, now)
	rc.Hold, rc.ConsecutiveFailures = d.hold, d.failures
	rc.NextRemediationAt = nil
	if d.hold == remediationv1alpha1.HoldHeld {
		t := metav1.NewTime(d.until)
		rc.NextRemediationAt = &t
	}
	status := metav1.ConditionFalse
	if d.hold != "" {
		status = metav1.ConditionTrue
	}
	meta.SetStatusCondition(&rr.Status.Conditions, metav1.Condition{
		Type:               remediationv1alpha1.ConditionHeld,
		Status:             status,
		Reason:             d.reason,
		Message:            d.message,
		ObservedGeneration: rr.Generation,
	})
	return d, d.hold == remediationv1alpha1.HoldBlocked && was != remediationv1alpha1.HoldBlocked
}

// needsSettling reports whether a finished rr lacks its finish stamp.
func needsSettling(rr *remediationv1alpha1.RemediationRequest) bool {
	return rr.Status.OverallPhase.IsTerminal() && (rr.Status.Recurrence == nil || rr.Status.Recurrence.FinishedAt == nil)
}

// onFinished applies ops to rr, a copy of a finished RemediationRequest, as
// the policy says at the engine's now: Resolved ops are recorded; while the
// next RemediationRequest is held back, firing ops are counted on rr (hold
// says how); once it may open, firing ops whose key rr counted already are
// answered AlreadyCounted and the others move on to open it. write reports
// whether rr changed; blocked, that this write makes the problem Blocked.
// ops come undecided (write clears them before every attempt).
func (e *Engine) onFinished(rr *remediationv1alpha1.RemediationRequest, ops []*op) (hold remediationv1alpha1.Hold, blocked, write bool, evicted int) {
	write = needsSettling(rr)
	var resolved, firing []*op
	for _, o := range ops {
		if o.resolved {
			resolved = append(resolved, o)
		} else {
			firing = append(firing, o)
		}
	}
	if len(resolved) > 0 {
		apply(rr, resolved)
		if rr.Status.Recurrence == nil {
			rr.Status.Recurrence = &remediationv1alpha1.RecurrenceStatus{}
		}
		if rr.Status.Recurrence.ResolvedAt == nil {
			at := metav1.NewTime(resolved[0].at)
			rr.Status.Recurrence.ResolvedAt = &at
		}
		write = true
	}
	d, blocked := e.policy.settle(rr, e.now())
	if d.hold == "" {
		var w *window
		if rr.Status.Deduplication != nil {
			w = loadWindow(rr.Status.Deduplication)
		}
		for _, o := range firing {
			o.alreadyCounted = o.keyed && w != nil && w.touch(o.key)
			o.moves = !o.alreadyCounted
		}
		return "", false, write, 0
	}
	var before int64
	if rr.Status.Deduplication != nil {
		before = rr.Status.Deduplication.OccurrenceCount
	}
	evicted = apply(rr, firing)
	rr.Status.Recurrence.HeldCount += rr.Status.Deduplication.OccurrenceCount - before
	return d.hold, blocked, true, evicted
}

// recordBlocked records the Event of rr's problem becoming Blocked.
func (e *Engine) recordBlocked(rr *remediationv1alpha1.RemediationRequest) {
	blockedTotal.Inc()
	if e.recorder == nil {
		return
	}
	msg := ""
	if c := meta.FindStatusCondition(rr.Status.Conditions, remediationv1alpha1.ConditionHeld); c != nil {
		msg = c.Message
	}
	e.recorder.Eventf(rr, corev1.EventTypeWarning, "Blocked", "%s", msg)
}

// Observe is the informer's add and update handler: a finished
// RemediationRequest without a finish stamp is queued for Run to stamp, so
// that its hold is measured from close to when it finished rather than from
// the next signal.
func (e *Engine) Observe(rr *remediationv1alpha1.RemediationRequest) {
	if !e.holds() || !needsSettling(rr) || rr.DeletionTimestamp != nil {
		return
	}
	e.queue().Add(cache.ObjectName{Namespace: rr.Namespace, Name: rr.Name})
}

// queue returns the queue of finished RemediationRequests to stamp, made on
// first use (its goroutines would outlive an engine that never stamps).
func (e *Engine) queue() workqueue.TypedRateLimitingInterface[cache.ObjectName] {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.finished == nil {
		e.finished = workqueue.NewTypedRateLimitingQueueWithConfig(workqueue.DefaultTypedControllerRateLimiter[cache.ObjectName](),
			workqueue.TypedRateLimitingQueueConfig[cache.ObjectName]{Name: "finished_remediationrequests"})
	}
	return e.finished
}

// Run stamps the finished RemediationRequests Observe queued until ctx
// ends. Every replica runs it; the write carries the resourceVersion it was
// computed from, so the first stamp wins and the others find it.
func (e *Engine) Run(ctx context.Context) {
	if !e.holds() {
		return
	}
	q := e.queue()
	go func() {
		<-ctx.Done()
		q.ShutDown()
	}()
	for {
		key, shutdown := q.Get()
		if shutdown {
			return
		}
		if err := e.stamp(ctx, key); err != nil {
			klog.ErrorS(err, "Recording when a RemediationRequest finished", "rr", klog.KRef(key.Namespace, key.Name))
			q.AddRateLimited(key)
		} else {
			q.Forget(key)
		}
		q.Done(key)
	}
}

func (e *Engine) stamp(ctx context.Context, key cache.ObjectName) error {
	rr, ok := e.cache.Get(key.Namespace, key.Name)
	if !ok || !needsSettling(rr) || rr.DeletionTimestamp != nil {
		return nil
	}
	next := rr.DeepCopy()
	_, blocked := e.policy.settle(next, e.now())
	ctx, cancel := context.WithTimeout(ctx, e.writeTimeout)
	defer cancel()
	updated, err := e.client.RemediationRequests(key.Namespace).UpdateStatus(ctx, next, metav1.UpdateOptions{FieldManager: FieldManager})
	switch {
	case err == nil:
		statusWrites.WithLabelValues(writeSuccess).Inc()
		if blocked {
			e.recordBlocked(updated)
		}
		return nil
	case apierrors.IsNotFound(err):
		return nil
	case apierrors.IsConflict(err):
		// Stamped by another replica or a signal, or changed: the cache
		// brings the news, and Observe queues it again if need be.
		statusWrites.WithLabelValues(writeConflict).Inc()
		return nil
	}
	statusWrites.WithLabelValues(writeError).Inc()
	return fmt.Errorf("stamping the finish of RemediationRequest %s/%s: %w", key.Namespace, key.Name, err)
}
