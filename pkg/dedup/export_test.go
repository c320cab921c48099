package dedup

import (
	"time"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// HeldAt reports whether p holds back the next RemediationRequest after the
// finished rr at now, for the simulation's oracle.
func (p Policy) HeldAt(rr *remediationv1alpha1.RemediationRequest, now time.Time) (remediationv1alpha1.Hold, string) {
	if rr.Status.Recurrence == nil || rr.Status.Recurrence.FinishedAt == nil {
		return remediationv1alpha1.HoldHeld, "not stamped"
	}
	d := p.decide(rr, now)
	return d.hold, d.message
}
