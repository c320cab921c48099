package registry

import (
	"errors"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/metadata/metadatainformer"
	"k8s.io/client-go/tools/cache"
)

// errNamespacesNotSynced means the managed namespaces are not known yet.
var errNamespacesNotSynced = errors.New("the informer of managed namespaces (--namespace-selector) has not synced yet")

// ManagedNamespaces is the NamespaceGate of --namespace-selector: the
// namespaces whose labels match a selector. They come from an informer of
// Namespace metadata that lists and watches only those (kube-apiserver
// filters by the selector), so a check makes no request, and a namespace
// labelled or unlabelled later is in or out as soon as its watch event
// arrives, with no restart.
type ManagedNamespaces struct {
	selector labels.Selector
	informer cache.SharedIndexInformer
}

var _ NamespaceGate = &ManagedNamespaces{}

// NewManagedNamespaces returns the gate of selector; start its Informer.
func NewManagedNamespaces(client metadata.Interface, selector labels.Selector) *ManagedNamespaces {
	informer := metadatainformer.NewFilteredMetadataInformer(client, corev1.SchemeGroupVersion.WithResource("namespaces"),
		metav1.NamespaceAll, 0, cache.Indexers{}, func(o *metav1.ListOptions) {
			o.LabelSelector = selector.String()
		}).Informer()
	return &ManagedNamespaces{selector: selector, informer: informer}
}

// Informer is the informer the gate reads; the server starts it and is not
// ready until it has synced.
func (m *ManagedNamespaces) Informer() cache.SharedIndexInformer { return m.informer }

// Managed reports whether namespace exists and matches the selector.
func (m *ManagedNamespaces) Managed(namespace string) (bool, error) {
	if !m.informer.HasSynced() {
		return false, errNamespacesNotSynced
	}
	_, exists, err := m.informer.GetStore().GetByKey(namespace)
	return exists, err
}

// String is the selector.
func (m *ManagedNamespaces) String() string { return m.selector.String() }
