package v1

// AnnotationOutcome is set on the RemediationRequest a Signal is answered
// with, and never stored: what the signal did, one of the Outcome values.
const AnnotationOutcome = "signals.remediation.io/outcome"

// The values of AnnotationOutcome.
const (
	// OutcomeCreated: the signal opened a new RemediationRequest.
	OutcomeCreated = "Created"
	// OutcomeDeduplicated: the signal was counted on an active one.
	OutcomeDeduplicated = "Deduplicated"
	// OutcomeAlreadyCounted: a firing signal whose idempotency key was
	// counted before on the active one; it was not counted again.
	OutcomeAlreadyCounted = "AlreadyCounted"
	// OutcomeResolved: a Resolved signal set lastResolvedAt on the active
	// one, or recorded on the finished one that the problem went away.
	OutcomeResolved = "Resolved"
	// OutcomeHeld: the problem's RemediationRequest is finished and its
	// next one is held back until status.recurrence.nextRemediationAt (the
	// Held condition says why); the signal was counted on the finished one.
	OutcomeHeld = "Held"
	// OutcomeBlocked: the problem's remediations failed too often in a
	// row; no new one opens until a person unblocks it. The signal was
	// counted on the finished one.
	OutcomeBlocked = "Blocked"
)

// AnnotationOwnerResolution is set on a RemediationRequest opened by a
// signal whose target could not be resolved to its top-level controller:
// "<reason>: <message>" (reasons NotFound, UIDMismatch, LookupFailed,
// TooDeep). The RemediationRequest is then about the target itself.
const AnnotationOwnerResolution = "signals.remediation.io/owner-resolution"

// AnnotationFiringTimeClamped is set on a RemediationRequest opened by a
// signal whose startsAt was implausible (further in the future than a small
// clock skew, or before 2000): the time received became its firingTime, and
// the annotation keeps the startsAt that was sent.
const AnnotationFiringTimeClamped = "signals.remediation.io/firing-time-clamped"

// AnnotationAlertAdjusted is set on a RemediationRequest opened by an
// Alertmanager alert whose fields did not fit a Signal: what was cut or
// left out, "; "-separated.
const AnnotationAlertAdjusted = "signals.remediation.io/alert-adjusted"
