package dedup

import (
	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// recordFromPrevious reads the spec.previous that earlier versions wrote
// instead of spec.history, so that a problem's failures before the upgrade
// still count. It can go once no RemediationRequest of those versions is
// left.
func recordFromPrevious(p *remediationv1alpha1.PreviousRemediation) remediationv1alpha1.RemediationRecord {
	r := remediationv1alpha1.RemediationRecord{
		UID:               p.UID,
		RemediationNumber: p.RemediationNumber,
		Phase:             p.Phase,
		OccurrenceCount:   p.OccurrenceCount,
		OpenedAt:          p.FirstSeenAt.DeepCopy(),
		// Earlier versions did not record when it finished: its last
		// signal is the closest they knew.
		FinishedAt: p.LastSeenAt.DeepCopy(),
	}
	if r.RemediationNumber == 0 {
		r.RemediationNumber = legacyNumber(p.Name)
	}
	return r
}
