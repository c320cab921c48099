package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// Phase is the stage of a remediation, set by the remediation controller.
// +kubebuilder:validation:Enum=Pending;Processing;Analyzing;Executing;Verifying;Completed;Failed;TimedOut;Skipped;Cancelled
type Phase string

// Phases of a RemediationRequest. Completed, Failed, TimedOut, Skipped and
// Cancelled are terminal; every other phase, and no phase, is active.
const (
	PhasePending    Phase = "Pending"
	PhaseProcessing Phase = "Processing"
	PhaseAnalyzing  Phase = "Analyzing"
	PhaseExecuting  Phase = "Executing"
	PhaseVerifying  Phase = "Verifying"
	PhaseCompleted  Phase = "Completed"
	PhaseFailed     Phase = "Failed"
	PhaseTimedOut   Phase = "TimedOut"
	PhaseSkipped    Phase = "Skipped"
	PhaseCancelled  Phase = "Cancelled"
)

// IsTerminal reports whether a RemediationRequest in phase p is finished for
// good: the API server refuses to move it to any other phase.
func (p Phase) IsTerminal() bool {
	switch p {
	case PhaseCompleted, PhaseFailed, PhaseTimedOut, PhaseSkipped, PhaseCancelled:
		return true
	}
	return false
}

// NamePrefixLength is how many hex digits of the fingerprint name a
// RemediationRequest: rr-<fingerprint[:60]>, 63 characters, so the name fits
// a label value. 240 bits: two fingerprints sharing a name would take a
// SHA-256 collision on 240 bits.
const NamePrefixLength = 60

// NameFor returns the name of the RemediationRequests of fingerprint fp
// (64 lowercase hex digits). It is the only name the API server accepts for
// a new RemediationRequest of fp, so one fingerprint has at most one
// RemediationRequest in a namespace at any moment.
func NameFor(fp string) string {
	return "rr-" + fp[:NamePrefixLength]
}

// ConditionIdempotencyKeysEvicted is the type of the condition
// signal-apiserver sets when the idempotency-key window of a
// RemediationRequest overflowed: a redelivery of an evicted key would be
// counted again.
const ConditionIdempotencyKeysEvicted = "IdempotencyKeysEvicted"

// MaxIdempotencyKeys bounds the idempotency-key window of one
// RemediationRequest (status.deduplication.idempotencyKeys).
const MaxIdempotencyKeys = 1024

// IdempotencyKeyDigestSize is the size in bytes of one digest in the window.
const IdempotencyKeyDigestSize = 8

// RemediationRequest is one problem, identified by its signal fingerprint,
// that a remediation controller works through. signal-apiserver creates it
// for the first firing signal of a fingerprint and counts every later one in
// status.deduplication.
//
// The rules on the object hold for every client: a new RemediationRequest
// must be named rr-<the first 60 hex digits of its fingerprint>, so the API
// server itself refuses a second one of a fingerprint while one exists in the
// namespace; a terminal phase is final and occurrenceCount never decreases,
// whatever a status update leaves out.
//
// +genclient
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Namespaced,shortName=rr,categories=remediation
// +kubebuilder:selectablefield:JSONPath=`.spec.signalFingerprint`
// +kubebuilder:printcolumn:name="#",type=integer,JSONPath=`.spec.remediationNumber`,description="How many RemediationRequests this fingerprint has had at this name, this one included"
// +kubebuilder:printcolumn:name="Phase",type=string,JSONPath=`.status.overallPhase`
// +kubebuilder:printcolumn:name="Target Kind",type=string,JSONPath=`.spec.targetResource.kind`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.spec.targetResource.name`
// +kubebuilder:printcolumn:name="Severity",type=string,JSONPath=`.status.signalSummary.highestSeverity`,description="The highest severity of the signals counted on it"
// +kubebuilder:printcolumn:name="Occurrences",type=integer,JSONPath=`.status.deduplication.occurrenceCount`
// +kubebuilder:printcolumn:name="Last Seen",type=date,JSONPath=`.status.deduplication.lastSeenAt`
// +kubebuilder:printcolumn:name="Hold",type=string,JSONPath=`.status.recurrence.hold`,description="Held or Blocked: a finished RemediationRequest whose problem keeps firing, and why the next one is not opened yet"
// +kubebuilder:printcolumn:name="Next",type=string,JSONPath=`.status.recurrence.nextRemediationAt`,description="When a held problem's next RemediationRequest may open",priority=1
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
// +kubebuilder:validation:XValidation:rule="oldSelf.hasValue() || self.metadata.name == 'rr-' + self.spec.signalFingerprint.substring(0, 60)",optionalOldSelf=true,message="a new RemediationRequest must be named rr-<first 60 hex digits of spec.signalFingerprint>"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.overallPhase) || !(oldSelf.status.overallPhase in ['Completed', 'Failed', 'TimedOut', 'Skipped', 'Cancelled']) || (has(self.status) && has(self.status.overallPhase) && self.status.overallPhase == oldSelf.status.overallPhase)",message="a terminal overallPhase is final"
// +kubebuilder:validation:XValidation:rule="!has(oldSelf.status) || !has(oldSelf.status.deduplication) || (has(self.status) && has(self.status.deduplication) && self.status.deduplication.occurrenceCount >= oldSelf.status.deduplication.occurrenceCount)",message="status.deduplication.occurrenceCount never decreases and is never removed"
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type RemediationRequest struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec describes the signal that opened this remediation. It never changes.
	// +required
	Spec RemediationRequestSpec `json:"spec"`

	// status is written by signal-apiserver (deduplication) and by the
	// remediation controller (overallPhase, conditions).
	// +optional
	Status RemediationRequestStatus `json:"status,omitempty"`
}

// RemediationRequestSpec is the signal that opened a RemediationRequest.
// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="spec is immutable"
type RemediationRequestSpec struct {
	// signalFingerprint identifies the problem: lowercase hex SHA-256, see
	// docs/dedup.md. Signals with the same fingerprint and namespace are
	// counted on one active RemediationRequest.
	// +required
	// +kubebuilder:validation:Pattern=`^[0-9a-f]{64}$`
	SignalFingerprint string `json:"signalFingerprint"`

	// signalName is the alert name or event reason of the first signal.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SignalName string `json:"signalName"`

	// signalSource names the sender of the first signal, e.g. alertmanager.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	SignalSource string `json:"signalSource"`

	// severity of the first signal, as its sender put it.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	Severity string `json:"severity,omitempty"`

	// targetResource is the object the remediation is about: the top-level
	// controller of the signal's target (Pod → ReplicaSet → Deployment, Pod →
	// StatefulSet, DaemonSet or Job, Job → CronJob) when signal-apiserver
	// resolved it, else the signal's target itself.
	// +required
	TargetResource ResourceReference `json:"targetResource"`

	// signalTarget is the object the first signal named, when it differs
	// from targetResource.
	// +optional
	SignalTarget *ResourceReference `json:"signalTarget,omitempty"`

	// signalLabels are the labels of the first signal.
	// +optional
	SignalLabels map[string]string `json:"signalLabels,omitempty"`

	// signalAnnotations are the annotations of the first signal.
	// +optional
	SignalAnnotations map[string]string `json:"signalAnnotations,omitempty"`

	// firingTime is when the first signal started firing, by its sender.
	// +required
	FiringTime metav1.Time `json:"firingTime"`

	// receivedTime is when signal-apiserver received the first signal.
	// +required
	ReceivedTime metav1.Time `json:"receivedTime"`

	// remediationNumber is how many RemediationRequests signal-apiserver has
	// opened for this fingerprint in a row, this one included: 1 for the
	// first, one more than the finished one it followed (history[0]); it
	// starts again at 1 when the previous one had been deleted before
	// the problem came back. Absent on RemediationRequests of earlier
	// versions.
	// +optional
	// +kubebuilder:validation:Minimum=1
	RemediationNumber int64 `json:"remediationNumber,omitempty"`

	// history is what the problem's earlier RemediationRequests at this
	// name did, newest first, at most 10: carried from each finished
	// RemediationRequest to the one that follows it, so consecutive
	// failures, flapping and what was tried already survive the
	// replacement. It starts empty when the previous one had been deleted
	// before the problem came back.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=10
	History []RemediationRecord `json:"history,omitempty"`

	// previous summarizes the finished RemediationRequest this one followed,
	// as earlier versions recorded it; signal-apiserver now writes history
	// instead, and reads previous only on RemediationRequests of earlier
	// versions.
	// +optional
	Previous *PreviousRemediation `json:"previous,omitempty"`
}

// MaxHistory bounds spec.history.
const MaxHistory = 10

// RemediationRecord is what remains of a finished RemediationRequest in the
// ones that followed it.
type RemediationRecord struct {
	// uid of the RemediationRequest.
	// +required
	UID types.UID `json:"uid"`

	// remediationNumber of the RemediationRequest, if it had one.
	// +optional
	RemediationNumber int64 `json:"remediationNumber,omitempty"`

	// phase the RemediationRequest finished in.
	// +required
	Phase Phase `json:"phase"`

	// openedAt is when its first signal was received.
	// +optional
	OpenedAt *metav1.Time `json:"openedAt,omitempty"`

	// finishedAt is when signal-apiserver first saw it finished
	// (status.recurrence.finishedAt).
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`

	// occurrenceCount of the RemediationRequest when it was replaced.
	// +optional
	OccurrenceCount int64 `json:"occurrenceCount,omitempty"`

	// resolved: a Resolved signal came after it finished.
	// +optional
	Resolved bool `json:"resolved,omitempty"`

	// unblocked: a person released its hold (the unblock annotation).
	// +optional
	Unblocked bool `json:"unblocked,omitempty"`
}

// PreviousRemediation is what remained of a finished RemediationRequest in
// the one that followed it, in earlier versions.
type PreviousRemediation struct {
	// name of the previous RemediationRequest.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`

	// uid of the previous RemediationRequest.
	// +required
	UID types.UID `json:"uid"`

	// remediationNumber of the previous RemediationRequest, if it had one.
	// +optional
	RemediationNumber int64 `json:"remediationNumber,omitempty"`

	// phase the previous RemediationRequest finished in.
	// +required
	Phase Phase `json:"phase"`

	// occurrenceCount of the previous RemediationRequest.
	// +optional
	OccurrenceCount int64 `json:"occurrenceCount,omitempty"`

	// firstSeenAt of the previous RemediationRequest.
	// +optional
	FirstSeenAt *metav1.Time `json:"firstSeenAt,omitempty"`

	// lastSeenAt of the previous RemediationRequest.
	// +optional
	LastSeenAt *metav1.Time `json:"lastSeenAt,omitempty"`
}

// ResourceReference names a Kubernetes object.
type ResourceReference struct {
	// apiVersion of the object, e.g. apps/v1.
	// +required
	// +kubebuilder:validation:MinLength=1
	APIVersion string `json:"apiVersion"`

	// kind of the object, e.g. Deployment.
	// +required
	// +kubebuilder:validation:MinLength=1
	Kind string `json:"kind"`

	// namespace of the object; empty for cluster-scoped kinds.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// name of the object.
	// +required
	// +kubebuilder:validation:MinLength=1
	Name string `json:"name"`
}

// RemediationRequestStatus is the progress of a remediation and the count of
// its signals.
// +kubebuilder:validation:XValidation:rule="!has(self.signalSummary) || (has(self.deduplication) && (has(self.signalSummary.signals) ? self.signalSummary.signals.map(s, s.count).sum() : 0) + (has(self.signalSummary.otherSignals) ? self.signalSummary.otherSignals.count : 0) == self.deduplication.occurrenceCount)",message="the counts of status.signalSummary sum to status.deduplication.occurrenceCount"
type RemediationRequestStatus struct {
	// overallPhase is set by the remediation controller. Empty means Pending.
	// +optional
	OverallPhase Phase `json:"overallPhase,omitempty"`

	// deduplication counts the signals of this remediation.
	// +optional
	Deduplication *DeduplicationStatus `json:"deduplication,omitempty"`

	// recurrence is signal-apiserver's record of a finished
	// RemediationRequest whose problem may come back: when it finished, and
	// whether the next one is held back.
	// +optional
	Recurrence *RecurrenceStatus `json:"recurrence,omitempty"`

	// signalSummary is what the signals counted on this RemediationRequest
	// were: one entry per distinct signal, the highest severity, and which
	// still fire. Written by signal-apiserver in the same write as
	// deduplication.
	// +optional
	SignalSummary *SignalSummary `json:"signalSummary,omitempty"`

	// conditions are the observations of the remediation controller and of
	// signal-apiserver (Held, Escalated, SignalsResolved,
	// IdempotencyKeysEvicted).
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// DeduplicationStatus counts the firing signals that signal-apiserver
// acknowledged for a RemediationRequest.
type DeduplicationStatus struct {
	// firstSeenAt is when the first signal was received.
	// +required
	FirstSeenAt metav1.Time `json:"firstSeenAt"`

	// lastSeenAt is when the latest counted signal was received.
	// +required
	LastSeenAt metav1.Time `json:"lastSeenAt"`

	// occurrenceCount is the number of firing signals acknowledged for this
	// RemediationRequest, the first one included.
	// +required
	// +kubebuilder:validation:Minimum=0
	OccurrenceCount int64 `json:"occurrenceCount"`

	// lastResolvedAt is when the latest Resolved signal was received.
	// +optional
	LastResolvedAt *metav1.Time `json:"lastResolvedAt,omitempty"`

	// idempotencyKeys is the window of idempotency keys counted on this
	// RemediationRequest: the first 8 bytes of the SHA-256 of each key,
	// concatenated, least recently seen first (base64 in JSON). A firing
	// signal whose key is here is not counted again, and moves its key to
	// the end. At most 1024 keys; when a new key would exceed that, the least
	// recently seen one is evicted (evictedIdempotencyKeys, and the
	// IdempotencyKeysEvicted condition).
	// +optional
	// +kubebuilder:validation:MaxLength=10924
	IdempotencyKeys []byte `json:"idempotencyKeys,omitempty"`

	// evictedIdempotencyKeys counts the keys evicted from idempotencyKeys. A
	// redelivery of an evicted key is counted again.
	// +optional
	// +kubebuilder:validation:Minimum=0
	EvictedIdempotencyKeys int64 `json:"evictedIdempotencyKeys,omitempty"`

	// recentIdempotencyKeys is the key window of earlier versions (32 hex
	// digits per key, at most 256). signal-apiserver still honours it, and
	// moves it into idempotencyKeys on its next write.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:Pattern=`^[0-9a-f]{32}$`
	RecentIdempotencyKeys []string `json:"recentIdempotencyKeys,omitempty"`
}

// Hold says why a finished RemediationRequest's problem gets no next one yet.
// +kubebuilder:validation:Enum=Held;Blocked
type Hold string

// Holds of a finished RemediationRequest.
const (
	// HoldHeld: the next RemediationRequest opens at nextRemediationAt.
	HoldHeld Hold = "Held"
	// HoldBlocked: the problem's remediations failed too often in a row;
	// the next RemediationRequest opens only once a person unblocks it.
	HoldBlocked Hold = "Blocked"
)

// AnnotationUnblock is the annotation a person sets, to any value, on a
// finished RemediationRequest to end its hold, Held or Blocked: the
// problem's next firing signal opens the next RemediationRequest at once,
// with a fresh count of consecutive failures.
//
//	kubectl annotate rr NAME signals.remediation.io/unblock=now
const AnnotationUnblock = "signals.remediation.io/unblock"

// ConditionHeld is the type of the condition signal-apiserver sets on a
// finished RemediationRequest: True while the problem's next
// RemediationRequest is held back (reason Cooldown, Backoff, Flapping or
// Blocked), False once it may open (reason Resolved, Unblocked or
// HoldOver).
const ConditionHeld = "Held"

// RecurrenceStatus is signal-apiserver's record of a finished
// RemediationRequest.
type RecurrenceStatus struct {
	// finishedAt is when signal-apiserver first saw the RemediationRequest
	// in a terminal phase; the first replica to record it wins, and holds
	// are measured from it.
	// +optional
	FinishedAt *metav1.Time `json:"finishedAt,omitempty"`

	// hold is Held or Blocked while the problem's next RemediationRequest
	// is held back, as of the last write; empty once it may open.
	// +optional
	Hold Hold `json:"hold,omitempty"`

	// nextRemediationAt is when a Held problem's next RemediationRequest
	// may open. Absent while Blocked.
	// +optional
	NextRemediationAt *metav1.Time `json:"nextRemediationAt,omitempty"`

	// consecutiveFailures is how many remediations of the problem in a row,
	// this one included, ended Failed or TimedOut.
	// +optional
	// +kubebuilder:validation:Minimum=0
	ConsecutiveFailures int64 `json:"consecutiveFailures,omitempty"`

	// resolvedAt is when the first Resolved signal after the
	// RemediationRequest finished was received: the problem went away,
	// which ends a hold unless the problem is flapping or blocked.
	// +optional
	ResolvedAt *metav1.Time `json:"resolvedAt,omitempty"`

	// heldCount is how many of the firing signals counted in
	// occurrenceCount arrived after the RemediationRequest finished, held
	// back or blocked.
	// +optional
	// +kubebuilder:validation:Minimum=0
	HeldCount int64 `json:"heldCount,omitempty"`
}

// SignalState says whether a signal still fires.
// +kubebuilder:validation:Enum=Firing;Resolved
type SignalState string

// States of a signal.
const (
	SignalFiring   SignalState = "Firing"
	SignalResolved SignalState = "Resolved"
)

// MaxSignalRecords bounds status.signalSummary.signals; the signals of
// further identities are counted in status.signalSummary.otherSignals.
const MaxSignalRecords = 32

// MaxFiringInstances bounds the firingInstances of one signal record, the
// digest that stands for the instances without one included.
const MaxFiringInstances = 16

// Conditions signal-apiserver sets from the signals it counts.
const (
	// ConditionEscalated is True once a signal more severe than any before
	// it arrived after the RemediationRequest was opened. signal-apiserver
	// only ever sets it True; a remediation controller that has looked
	// again sets it False, and the next rise sets it True again.
	ConditionEscalated = "Escalated"
	// ConditionSignalsResolved is True when every signal that fired on the
	// RemediationRequest has since been resolved, False while one fires.
	ConditionSignalsResolved = "SignalsResolved"
)

// SignalSummary is the bounded record of the distinct signals counted on a
// RemediationRequest. The counts of signals and otherSignals always sum to
// status.deduplication.occurrenceCount.
type SignalSummary struct {
	// highestSeverity is the most severe severity of the signals counted on
	// the RemediationRequest, the first one included: critical, high,
	// warning or info (senders' spellings mapped, e.g. error to high), or a
	// severity outside that order as its sender spelled it, which ranks
	// below info. Empty when no signal had a severity.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	HighestSeverity string `json:"highestSeverity,omitempty"`

	// signals has one entry per distinct signal (source and name), in the
	// order they were first seen, at most 32. Atomic: only signal-apiserver
	// writes it, and managedFields stays one line instead of one per entry.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=32
	Signals []SignalRecord `json:"signals,omitempty"`

	// otherSignals counts the signals that have no entry in signals: those
	// of identities beyond the first 32, and those an earlier version of
	// signal-apiserver counted before it kept a summary.
	// +optional
	OtherSignals *OtherSignals `json:"otherSignals,omitempty"`
}

// SignalRecord is what one distinct signal did on a RemediationRequest.
type SignalRecord struct {
	// source is the signal's spec.source, e.g. alertmanager.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Source string `json:"source"`

	// name is the signal's spec.name: the alert name or event reason.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`

	// count is how many firing signals of this source and name were counted
	// on the RemediationRequest.
	// +required
	// +kubebuilder:validation:Minimum=0
	Count int64 `json:"count"`

	// highestSeverity is the most severe severity these signals had,
	// ordered and spelled as in signalSummary.highestSeverity.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	HighestSeverity string `json:"highestSeverity,omitempty"`

	// state is Firing while firingInstances is not empty, else Resolved.
	// +required
	State SignalState `json:"state"`

	// firingInstances are the instances of this signal that fired and were
	// not resolved since, each the first 8 bytes of the SHA-256 of its
	// idempotency key (Alertmanager's names one alert instance: its
	// fingerprint and startsAt, the same in its firing and its resolved
	// notifications), concatenated (base64 in JSON). Eight zero bytes stand
	// for the instances without a key, and for those beyond the first 15. A
	// Resolved signal removes its own instance; one without a key resolves
	// them all.
	// +optional
	// +kubebuilder:validation:MaxLength=172
	FiringInstances []byte `json:"firingInstances,omitempty"`

	// firstSeenAt is when the first of these signals was received.
	// +required
	FirstSeenAt metav1.Time `json:"firstSeenAt"`

	// lastSeenAt is when the latest counted one was received. Absent if
	// only Resolved ones were.
	// +optional
	LastSeenAt *metav1.Time `json:"lastSeenAt,omitempty"`

	// lastResolvedAt is when the latest Resolved one was received.
	// +optional
	LastResolvedAt *metav1.Time `json:"lastResolvedAt,omitempty"`
}

// OtherSignals counts, as one, the signals of a RemediationRequest that
// have no entry of their own.
type OtherSignals struct {
	// count is how many firing signals without an entry were counted.
	// +required
	// +kubebuilder:validation:Minimum=0
	Count int64 `json:"count"`

	// highestSeverity is the most severe severity among those received
	// since the summary was kept.
	// +optional
	// +kubebuilder:validation:MaxLength=63
	HighestSeverity string `json:"highestSeverity,omitempty"`

	// state is Firing if the latest signal without an entry that was
	// received fired, Resolved if it was resolved; absent if none was
	// received since the summary was kept. The signals here share one
	// state: it cannot tell which of them still fire.
	// +optional
	State SignalState `json:"state,omitempty"`

	// lastSeenAt is when the latest counted one was received, since the
	// summary was kept.
	// +optional
	LastSeenAt *metav1.Time `json:"lastSeenAt,omitempty"`

	// lastResolvedAt is when the latest Resolved one was received.
	// +optional
	LastResolvedAt *metav1.Time `json:"lastResolvedAt,omitempty"`
}

// RemediationRequestList is a list of RemediationRequests.
// +kubebuilder:object:root=true
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type RemediationRequestList struct {
	metav1.TypeMeta `json:",inline"`
	// +optional
	metav1.ListMeta `json:"metadata,omitempty"`

	Items []RemediationRequest `json:"items"`
}
