package eventsource

import (
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/sets"
)

// Reasons an Event may not speak about its involved object, as the reason
// label of the events_refused_total metric.
const (
	// RefusedOtherNamespace: the involved object is in another namespace
	// than the Event. kube-apiserver lets an Event with eventTime name an
	// object in any namespace, so whoever may create Events in one
	// namespace could otherwise open RemediationRequests in all of them
	// through the event source, a sender allowed everywhere.
	RefusedOtherNamespace = "other_namespace"
	// RefusedNoNamespace: the involved object has no namespace and its
	// kind is not one of ClusterScopedKinds.
	RefusedNoNamespace = "no_namespace"
	// RefusedUIDMismatch: the server refused the Signal (422 on
	// spec.target.uid) because the involved object's UID is not the live
	// object's: it was deleted and its name reused.
	RefusedUIDMismatch = "uid_mismatch"
)

// ClusterScopedKinds are the only kinds an Event may name without a
// namespace: the core cluster-scoped objects Kubernetes' own components
// report Warning Events about and a remediation controller can act on
// (kubelet and the node controllers about Nodes, the volume controllers
// about PersistentVolumes, the namespace controller about Namespaces). Any
// other kind without a namespace is either namespaced (the namespace was
// left out, and the Signal would land in --cluster-scoped-namespace) or a
// cluster-scoped object the event source has no business signalling about.
var ClusterScopedKinds = sets.New(
	schema.GroupKind{Kind: "Node"},
	schema.GroupKind{Kind: "PersistentVolume"},
	schema.GroupKind{Kind: "Namespace"},
)

// clusterEventNamespaces are the namespaces kube-apiserver lets hold an
// Event about a cluster-scoped object: default, and kube-system for
// Events with eventTime. Checked here too, so that the rule the event
// source relies on is its own.
var clusterEventNamespaces = sets.New(metav1.NamespaceDefault, metav1.NamespaceSystem)

// Refuse returns why ev may not become a Signal about its involved object,
// or "" if it may: a namespaced object must be in the Event's own
// namespace, and an object without a namespace must be of one of
// ClusterScopedKinds, named by an Event in default or kube-system.
func Refuse(ev *corev1.Event) string {
	o := ev.InvolvedObject
	if o.Namespace != "" {
		if o.Namespace != ev.Namespace {
			return RefusedOtherNamespace
		}
		return ""
	}
	gv, err := schema.ParseGroupVersion(o.APIVersion)
	if err != nil || !ClusterScopedKinds.Has(gv.WithKind(o.Kind).GroupKind()) {
		return RefusedNoNamespace
	}
	if !clusterEventNamespaces.Has(ev.Namespace) {
		return RefusedOtherNamespace
	}
	return ""
}

// targetNamespace is the namespace ev speaks about, which the namespace
// filters match: its involved object's, or the Event's own for a
// cluster-scoped object. Once Refuse lets ev through the two agree, so the
// watch's field selector on the Event's namespace filters the same.
func targetNamespace(ev *corev1.Event) string {
	if ev.InvolvedObject.Namespace != "" {
		return ev.InvolvedObject.Namespace
	}
	return ev.Namespace
}

// reporter names who wrote ev, for the once-per-reporter log of refused
// Events: its namespace and reporting component.
func reporter(ev *corev1.Event) string {
	component := ev.ReportingController
	if component == "" {
		component = ev.Source.Component
	}
	return ev.Namespace + "/" + component
}
