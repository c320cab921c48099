package dedup

import (
	"errors"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/fake"
)

func TestPolicyDecide(t *testing.T) {
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *metav1.Time { m := metav1.NewTime(t0.Add(d)); return &m }
	rec := func(phase remediationv1alpha1.Phase, opened, finished time.Duration) remediationv1alpha1.RemediationRecord {
		return remediationv1alpha1.RemediationRecord{Phase: phase, OpenedAt: at(opened), FinishedAt: at(finished)}
	}
	finished := func(phase remediationv1alpha1.Phase, hist ...remediationv1alpha1.RemediationRecord) *remediationv1alpha1.RemediationRequest {
		rr := &remediationv1alpha1.RemediationRequest{}
		rr.Name = "rr-x"
		rr.Spec.ReceivedTime = *at(-time.Minute)
		rr.Spec.History = hist
		rr.Status.OverallPhase = phase
		rr.Status.Recurrence = &remediationv1alpha1.RecurrenceStatus{FinishedAt: at(0)}
		return rr
	}
	resolved := func(rr *remediationv1alpha1.RemediationRequest) *remediationv1alpha1.RemediationRequest {
		rr.Status.Recurrence.ResolvedAt = at(time.Second)
		return rr
	}
	unblocked := func(rr *remediationv1alpha1.RemediationRequest) *remediationv1alpha1.RemediationRequest {
		rr.Annotations = map[string]string{remediationv1alpha1.AnnotationUnblock: "now"}
		return rr
	}
	failed, completed := remediationv1alpha1.PhaseFailed, remediationv1alpha1.PhaseCompleted
	for _, tc := range []struct {
		name     string
		policy   Policy
		rr       *remediationv1alpha1.RemediationRequest
		now      time.Duration
		hold     remediationv1alpha1.Hold
		until    time.Duration
		failures int64
		reason   string
	}{
		{"completed: cooldown", DefaultPolicy, finished(completed), time.Minute, remediationv1alpha1.HoldHeld, 5 * time.Minute, 0, "Cooldown"},
		{"completed: cooldown over", DefaultPolicy, finished(completed), 5 * time.Minute, "", 0, 0, "HoldOver"},
		{"skipped: cooldown", DefaultPolicy, finished(remediationv1alpha1.PhaseSkipped), time.Minute, remediationv1alpha1.HoldHeld, 5 * time.Minute, 0, "Cooldown"},
		{"cancelled: cooldown", DefaultPolicy, finished(remediationv1alpha1.PhaseCancelled), time.Minute, remediationv1alpha1.HoldHeld, 5 * time.Minute, 0, "Cooldown"},
		{"cooldown off", Policy{Backoff: time.Minute, BackoffMax: time.Hour}, finished(completed), 0, "", 0, 0, "HoldOver"},
		{"first failure: 1m", DefaultPolicy, finished(failed), 0, remediationv1alpha1.HoldHeld, time.Minute, 1, "Backoff"},
		{"timed out after a failure: 2m", DefaultPolicy, finished(remediationv1alpha1.PhaseTimedOut, rec(failed, -10*time.Minute, -5*time.Minute)), 0, remediationv1alpha1.HoldHeld, 2 * time.Minute, 2, "Backoff"},
		{"skipped passed over in the streak", DefaultPolicy, finished(failed, rec(remediationv1alpha1.PhaseSkipped, -10*time.Minute, -5*time.Minute), rec(failed, -20*time.Minute, -15*time.Minute)), 0, remediationv1alpha1.HoldHeld, 2 * time.Minute, 2, "Backoff"},
		{"completed ends the streak", DefaultPolicy, finished(failed, rec(completed, -10*time.Minute, -5*time.Minute), rec(failed, -20*time.Minute, -15*time.Minute)), 0, remediationv1alpha1.HoldHeld, time.Minute, 1, "Backoff"},
		{"third failure: blocked", DefaultPolicy, finished(failed, rec(failed, -10*time.Minute, -5*time.Minute), rec(failed, -20*time.Minute, -15*time.Minute)), 10 * time.Hour, remediationv1alpha1.HoldBlocked, 0, 3, "Blocked"},
		{"blocking off: capped backoff", Policy{Backoff: time.Minute, BackoffMax: 3 * time.Minute}, finished(failed, rec(failed, -10*time.Minute, -5*time.Minute), rec(failed, -20*time.Minute, -15*time.Minute)), 0, remediationv1alpha1.HoldHeld, 3 * time.Minute, 3, "Backoff"},
		{"a quiet gap restarts the streak", DefaultPolicy, finished(failed, rec(failed, -5*time.Hour, -4*time.Hour), rec(failed, -6*time.Hour, -5*time.Hour)), 0, remediationv1alpha1.HoldHeld, time.Minute, 1, "Backoff"},
		{"unblocked", DefaultPolicy, unblocked(finished(failed, rec(failed, -10*time.Minute, -5*time.Minute), rec(failed, -20*time.Minute, -15*time.Minute))), 0, "", 0, 3, "Unblocked"},
		{"after an unblock the streak starts afresh", DefaultPolicy, finished(failed, remediationv1alpha1.RemediationRecord{Phase: failed, Unblocked: true}, rec(failed, -20*time.Minute, -15*time.Minute)), 0, remediationv1alpha1.HoldHeld, time.Minute, 1, "Backoff"},
		{"resolved ends the cooldown", DefaultPolicy, resolved(finished(completed)), time.Minute, "", 0, 0, "Resolved"},
		{"resolved does not end a block", DefaultPolicy, resolved(finished(failed, rec(failed, -10*time.Minute, -5*time.Minute), rec(failed, -20*time.Minute, -15*time.Minute))), time.Minute, remediationv1alpha1.HoldBlocked, 0, 3, "Blocked"},
		{"flapping: resolved does not end the cooldown", DefaultPolicy, resolved(finished(completed, rec(completed, -20*time.Minute, -19*time.Minute), rec(completed, -40*time.Minute, -39*time.Minute))), time.Minute, remediationv1alpha1.HoldHeld, 5 * time.Minute, 0, "Flapping"},
		{"episodes outside the window are not flapping", DefaultPolicy, resolved(finished(completed, rec(completed, -20*time.Minute, -19*time.Minute), rec(completed, -2*time.Hour, -119*time.Minute))), time.Minute, "", 0, 0, "Resolved"},
		{"earlier version's spec.previous counts", DefaultPolicy, func() *remediationv1alpha1.RemediationRequest {
			rr := finished(failed)
			rr.Spec.Previous = &remediationv1alpha1.PreviousRemediation{Name: "rr-x", Phase: failed, FirstSeenAt: at(-20 * time.Minute), LastSeenAt: at(-15 * time.Minute)}
			return rr
		}(), 0, remediationv1alpha1.HoldHeld, 2 * time.Minute, 2, "Backoff"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := tc.policy.decide(tc.rr, t0.Add(tc.now))
			if d.hold != tc.hold || d.failures != tc.failures || d.reason != tc.reason {
				t.Errorf("got hold %q failures %d reason %s (%s), want %q %d %s", d.hold, d.failures, d.reason, d.message, tc.hold, tc.failures, tc.reason)
			}
			if tc.hold == remediationv1alpha1.HoldHeld && !d.until.Equal(t0.Add(tc.until)) {
				t.Errorf("until %s, want %s", d.until, t0.Add(tc.until))
			}
		})
	}
}

// TestMovedOnThenCountedIsCountedOnce: a write finds the finished
// RemediationRequest with its hold over, so its firing signal is to move on
// and open the next one; the write (it records a resolution) loses to a
// replica that has replaced the finished one already; on the fresh read the
// signal is counted on the new, active one. It must be answered as counted
// there, not sent on to open another one: that would count it twice and
// delete the active one as if it were finished.
func TestMovedOnThenCountedIsCountedOnce(t *testing.T) {
	s := testSignal()
	finishedAt := metav1.NewTime(s.ReceivedAt.Add(-time.Hour))
	done := finishedRR(s, "uid-1")
	done.Status.Recurrence = &remediationv1alpha1.RecurrenceStatus{FinishedAt: &finishedAt}
	client := fake.NewSimpleClientset(activeRR(s, "uid-2"))
	deletes := checkDeletePreconditions(client)
	client.PrependReactor("update", "remediationrequests", func(action clienttesting.Action) (bool, runtime.Object, error) {
		obj := action.(clienttesting.UpdateAction).GetObject().(*remediationv1alpha1.RemediationRequest)
		stored, err := client.Tracker().Get(action.GetResource(), obj.Namespace, obj.Name)
		if err == nil && stored.(*remediationv1alpha1.RemediationRequest).UID != obj.UID {
			return true, nil, apierrors.NewConflict(remediationv1alpha1.Resource("remediationrequests"), obj.Name, errors.New("Precondition failed: UID"))
		}
		return false, nil, nil
	})
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{rrs: []*remediationv1alpha1.RemediationRequest{done}},
		WithPolicy(DefaultPolicy), WithClock(func() time.Time { return s.ReceivedAt }))

	resolved := s
	resolved.Resolved = true
	ops := []*op{newOp(resolved), newOp(s)}
	c := e.counterOn(s, testName, done.DeepCopy(), false)
	b := &batch{ops: ops}
	b.rr, b.hold, b.err = c.write(c.base, ops)
	rr, alreadyCounted, hold, err := b.result(ops[1])
	if err != nil {
		t.Fatalf("firing signal: %v, want it counted on uid-2", err)
	}
	if rr.UID != "uid-2" || alreadyCounted || hold != "" {
		t.Errorf("counted on %s alreadyCounted %t hold %q, want uid-2, false, no hold", rr.UID, alreadyCounted, hold)
	}
	if got := storedCount(t, client, testName); got != 4 {
		t.Errorf("stored occurrenceCount = %d, want 4", got)
	}
	if len(*deletes) != 0 {
		t.Errorf("deletes %v, want none", *deletes)
	}
}
