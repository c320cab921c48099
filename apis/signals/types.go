package signals

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
)

// SignalStatus says whether the problem a Signal reports is still there.
type SignalStatus string

// Signal statuses.
const (
	SignalStatusFiring   SignalStatus = "Firing"
	SignalStatusResolved SignalStatus = "Resolved"
)

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// Signal is one notification about a problem with an object. It is not
// stored: creating it counts it on the active RemediationRequest of its
// fingerprint, creating that RemediationRequest if there is none.
//
// ObjectMeta is a named field, not embedded: this hub type then has no
// metadata accessor, and k8s.io/apiserver's field manager, which the create
// handler runs on it, builds no managed fields for an object without one.
// The versioned Signal embeds ObjectMeta as every API type does, and
// conversion copies it, so clients, admission and audit see the metadata
// that was sent.
type Signal struct {
	metav1.TypeMeta
	ObjectMeta metav1.ObjectMeta

	Spec SignalSpec
}

// SignalSpec is what a sender says about the problem.
type SignalSpec struct {
	Source      string
	Name        string
	Severity    string
	Description string
	Status      SignalStatus
	Target      TargetReference
	Labels      map[string]string
	Annotations map[string]string
	StartsAt    *metav1.Time
	Fingerprint string

	// IdempotencyKey names this delivery; a key already counted is not
	// counted again.
	IdempotencyKey string
}

// TargetReference names the object a Signal is about.
type TargetReference struct {
	APIVersion string
	Kind       string
	Namespace  string
	Name       string
	// UID, if set, is compared with the live object's where the server
	// reads it; it is not part of the fingerprint.
	UID types.UID
}

// +k8s:deepcopy-gen:interfaces=k8s.io/apimachinery/pkg/runtime.Object

// AlertmanagerNotification is an Alertmanager webhook notification. It is
// not stored: creating it records every alert as a Signal, and the answer
// carries one Result per alert.
type AlertmanagerNotification struct {
	metav1.TypeMeta
	metav1.ObjectMeta

	Version           string
	GroupKey          string
	TruncatedAlerts   int64
	Status            string
	Receiver          string
	GroupLabels       map[string]string
	CommonLabels      map[string]string
	CommonAnnotations map[string]string
	ExternalURL       string
	Alerts            []Alert

	Results []AlertResult
}

// Alert is one alert of an AlertmanagerNotification.
type Alert struct {
	Status       string
	Labels       map[string]string
	Annotations  map[string]string
	StartsAt     metav1.Time
	EndsAt       metav1.Time
	GeneratorURL string
	Fingerprint  string
}

// AlertResult is what became of one alert.
type AlertResult struct {
	Index       int32
	Fingerprint string
	Outcome     string
	Namespace   string
	Name        string
	Reason      metav1.StatusReason
	Message     string
}
