package v1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// SignalStatus says whether the problem a Signal reports is still there.
// +enum
type SignalStatus string

// Signal statuses.
const (
	// SignalStatusFiring means the problem is there; it is counted.
	SignalStatusFiring SignalStatus = "Firing"
	// SignalStatusResolved means the problem went away; it is never counted.
	SignalStatusResolved SignalStatus = "Resolved"
)

// Signal is one notification about a problem with an object. Signals are not
// stored: creating one counts it on the active RemediationRequest of its
// fingerprint, creating that RemediationRequest if there is none, and
// answers with that RemediationRequest.
//
// +genclient
// +genclient:nonNamespaced
// +genclient:skipVerbs=get,list,watch,create,update,patch,delete,deleteCollection,updateStatus,apply,applyStatus
// +genclient:method=Create,verb=create,result=github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1.RemediationRequest
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type Signal struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is ignored: nothing of a Signal is stored.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// spec is the notification.
	// +required
	Spec SignalSpec `json:"spec"`
}

// SignalSpec is what a sender says about a problem.
type SignalSpec struct {
	// source names the sender, e.g. alertmanager, kubernetes-event, manual.
	// +required
	Source string `json:"source"`

	// name is the alert name or event reason.
	// +required
	Name string `json:"name"`

	// severity as the sender puts it, e.g. critical, warning.
	// +optional
	Severity string `json:"severity,omitempty"`

	// description is free text for people.
	// +optional
	Description string `json:"description,omitempty"`

	// status is Firing (the default) or Resolved. A Resolved signal is never
	// counted and never creates a RemediationRequest.
	// +optional
	// +default="Firing"
	Status SignalStatus `json:"status,omitempty"`

	// target is the object the signal is about.
	// +required
	Target TargetReference `json:"target"`

	// labels of the signal, e.g. the alert's labels.
	// +optional
	Labels map[string]string `json:"labels,omitempty"`

	// annotations of the signal, e.g. the alert's annotations.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`

	// startsAt is when the problem started; the time received if unset.
	// +optional
	StartsAt *metav1.Time `json:"startsAt,omitempty"`

	// fingerprint is a deduplication key chosen by the sender (1-255
	// characters), like PagerDuty's dedup_key. Unset, the fingerprint is
	// derived from the target. See docs/dedup.md.
	// +optional
	Fingerprint string `json:"fingerprint,omitempty"`

	// idempotencyKey names this delivery of the signal (1-512 characters),
	// e.g. an Alertmanager alert's fingerprint and startsAt, or an Event's
	// UID and count. A firing signal whose key was already counted on the
	// RemediationRequest is acknowledged without being counted again, so a
	// sender may retry or redeliver freely. See docs/dedup.md.
	// +optional
	IdempotencyKey string `json:"idempotencyKey,omitempty"`
}

// TargetReference names the object a Signal is about.
type TargetReference struct {
	// apiVersion of the object, e.g. apps/v1.
	// +required
	APIVersion string `json:"apiVersion"`

	// kind of the object, e.g. Deployment.
	// +required
	Kind string `json:"kind"`

	// namespace of the object; required for namespaced kinds.
	// +optional
	Namespace string `json:"namespace,omitempty"`

	// name of the object.
	// +required
	Name string `json:"name"`

	// uid of the object, e.g. an Event's involvedObject.uid. Where the
	// server reads the object to resolve its owner (a Pod, ReplicaSet or
	// Job, for a signal without its own fingerprint), a uid other than the
	// live object's is refused (422): the object was deleted and its name
	// reused. For other kinds it is accepted unverified. It is not part of
	// the fingerprint.
	// +optional
	UID types.UID `json:"uid,omitempty"`
}

// AlertmanagerNotification is the body of an Alertmanager webhook
// notification (version 4), accepted as Alertmanager sends it: apiVersion
// and kind may be absent. It is not stored: creating it records every alert
// as a Signal (see docs/alertmanager.md) and answers with the notification
// and one entry per alert in results. A batch is recorded whole or answered
// with an error that makes Alertmanager retry; a retry counts nothing twice.
//
// +genclient
// +genclient:nonNamespaced
// +genclient:onlyVerbs=create
// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object
type AlertmanagerNotification struct {
	metav1.TypeMeta `json:",inline"`
	// metadata is ignored: nothing of a notification is stored.
	// +optional
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// version of the webhook payload; "4".
	// +optional
	Version string `json:"version,omitempty"`
	// groupKey identifies the alert group.
	// +optional
	GroupKey string `json:"groupKey,omitempty"`
	// truncatedAlerts is how many alerts Alertmanager left out (max_alerts).
	// +optional
	TruncatedAlerts int64 `json:"truncatedAlerts,omitempty"`
	// status of the group: firing or resolved.
	// +optional
	Status string `json:"status,omitempty"`
	// receiver is the name of the Alertmanager receiver.
	// +optional
	Receiver string `json:"receiver,omitempty"`
	// groupLabels are the labels the alerts are grouped by.
	// +optional
	GroupLabels map[string]string `json:"groupLabels,omitempty"`
	// commonLabels are the labels all alerts share.
	// +optional
	CommonLabels map[string]string `json:"commonLabels,omitempty"`
	// commonAnnotations are the annotations all alerts share.
	// +optional
	CommonAnnotations map[string]string `json:"commonAnnotations,omitempty"`
	// externalURL links back to the Alertmanager.
	// +optional
	ExternalURL string `json:"externalURL,omitempty"`
	// alerts of the notification; each becomes a Signal.
	// +optional
	// +listType=atomic
	Alerts []Alert `json:"alerts,omitempty"`

	// results says what became of each alert, in the order of alerts. Set
	// by the server in its answer; ignored in a request.
	// +optional
	// +listType=atomic
	Results []AlertResult `json:"results,omitempty"`
}

// Alert is one alert of an Alertmanager notification.
type Alert struct {
	// status is firing or resolved.
	// +required
	Status string `json:"status"`
	// labels of the alert; alertname names the Signal, and the target is
	// taken from well-known labels (--alertmanager-target-labels).
	// +optional
	Labels map[string]string `json:"labels,omitempty"`
	// annotations of the alert; description or summary describes the Signal.
	// +optional
	Annotations map[string]string `json:"annotations,omitempty"`
	// startsAt is when the alert started firing; Alertmanager always sends
	// it.
	// +required
	StartsAt metav1.Time `json:"startsAt"`
	// endsAt is when the alert ended; zero while firing.
	// +optional
	EndsAt metav1.Time `json:"endsAt"`
	// generatorURL links to the rule that fired.
	// +optional
	GeneratorURL string `json:"generatorURL,omitempty"`
	// fingerprint is Alertmanager's hash of the alert's labels.
	// +required
	Fingerprint string `json:"fingerprint"`
}

// AlertResult is what became of one alert.
type AlertResult struct {
	// index of the alert in alerts.
	// +required
	Index int32 `json:"index"`
	// fingerprint of the alert, as Alertmanager sent it.
	// +required
	Fingerprint string `json:"fingerprint"`
	// outcome: Created, Deduplicated, AlreadyCounted, Held or Blocked
	// (counted on the finished RemediationRequest, whose
	// status.recurrence says until when the next one is held back, and
	// why), Resolved (the RemediationRequest's lastResolvedAt was set),
	// NoActive (a resolved
	// alert with no active RemediationRequest: nothing to do), or Rejected
	// (the alert cannot be recorded as it is, e.g. its namespace does not
	// exist: a resend would not change that, so the other alerts are
	// recorded and the notification succeeds; reason and message say why).
	// +required
	Outcome string `json:"outcome"`
	// namespace of the RemediationRequest; empty for NoActive and Rejected.
	// +optional
	Namespace string `json:"namespace,omitempty"`
	// name of the RemediationRequest; empty for NoActive and Rejected.
	// +optional
	Name string `json:"name,omitempty"`
	// reason is the Kubernetes status reason a Signal made of this alert
	// would have been refused with (Invalid, Conflict, Forbidden...); set
	// for Rejected only.
	// +optional
	Reason metav1.StatusReason `json:"reason,omitempty"`
	// message says why the alert was Rejected, or what of a recorded
	// alert was cut or left out to fit a Signal.
	// +optional
	Message string `json:"message,omitempty"`
}
