package eventsource

import (
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/sets"
)

// eventAbout is a Warning Event in namespace about an object.
func eventAbout(namespace, apiVersion, kind, objectNamespace string) *corev1.Event {
	return &corev1.Event{
		ObjectMeta:     metav1.ObjectMeta{Namespace: namespace, Name: "e." + kind},
		InvolvedObject: corev1.ObjectReference{APIVersion: apiVersion, Kind: kind, Namespace: objectNamespace, Name: "x"},
		Type:           corev1.EventTypeWarning,
		Reason:         "BackOff",
		Source:         corev1.EventSource{Component: "kubelet"},
	}
}

func TestRefuse(t *testing.T) {
	tests := []struct {
		name string
		ev   *corev1.Event
		want string
	}{
		{"own namespace", eventAbout("tenant-a", "apps/v1", "Deployment", "tenant-a"), ""},
		{"another namespace", eventAbout("tenant-a", "apps/v1", "Deployment", "kube-system"), RefusedOtherNamespace},
		{"another namespace, from default", eventAbout("default", "v1", "Pod", "tenant-a"), RefusedOtherNamespace},
		{"node without apiVersion, as kubelet writes it", eventAbout("default", "", "Node", ""), ""},
		{"node", eventAbout("default", "v1", "Node", ""), ""},
		{"persistent volume", eventAbout("default", "v1", "PersistentVolume", ""), ""},
		{"namespace, in kube-system", eventAbout("kube-system", "v1", "Namespace", ""), ""},
		{"node, from a tenant's namespace", eventAbout("tenant-a", "v1", "Node", ""), RefusedOtherNamespace},
		{"namespaced kind without a namespace", eventAbout("default", "apps/v1", "Deployment", ""), RefusedNoNamespace},
		{"Node of another group", eventAbout("default", "example.com/v1", "Node", ""), RefusedNoNamespace},
		{"cluster-scoped kind not listed", eventAbout("default", "rbac.authorization.k8s.io/v1", "ClusterRole", ""), RefusedNoNamespace},
		{"unparsable apiVersion", eventAbout("default", "a/b/c", "Node", ""), RefusedNoNamespace},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Refuse(tt.ev); got != tt.want {
				t.Errorf("Refuse() = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestNamespaceFilterMatchesTheTarget(t *testing.T) {
	f := Filter{ExcludeNamespaces: sets.New("kube-system")}
	// After Refuse, a namespaced target's namespace is the Event's: the
	// filter sees the same namespace either way. A Node's Event in
	// kube-system is matched by the Event's namespace.
	if got := f.Ignore(eventAbout("kube-system", "v1", "Node", ""), time.Now()); got != IgnoredNamespace {
		t.Errorf("Node Event in kube-system: Ignore() = %q, want %q", got, IgnoredNamespace)
	}
	// Unfiltered, a cross-namespace Event would be matched by its target.
	if got := f.Ignore(eventAbout("tenant-a", "v1", "Pod", "kube-system"), time.Now()); got != IgnoredNamespace {
		t.Errorf("Event about kube-system: Ignore() = %q, want %q", got, IgnoredNamespace)
	}
}

func TestEnqueueRefusesBeforeQueueing(t *testing.T) {
	s, _ := newTestSource(t, 1, 1, nil)
	for range 3 {
		s.enqueue(eventAbout("tenant-a", "v1", "Pod", "kube-system"))
	}
	s.enqueue(eventAbout("tenant-a", "v1", "Node", ""))
	if n := s.queue.Len(); n != 0 {
		t.Fatalf("queued %d refused Events, want 0", n)
	}
	// Logged once per reporter: one reporter, tenant-a/kubelet.
	if n := s.refusalsLogged.Len(); n != 1 {
		t.Errorf("%d reporters logged, want 1", n)
	}
	s.enqueue(eventAbout("tenant-a", "v1", "Pod", "tenant-a"))
	if n := s.queue.Len(); n != 1 {
		t.Errorf("queued %d Events about the own namespace, want 1", n)
	}
}
