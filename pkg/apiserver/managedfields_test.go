package apiserver

import (
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/managedfields"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
)

// The create handler of k8s.io/apiserver runs a field manager, built as
// below, on the decoded hub object of every create. A Signal is never
// stored, so it must get no managed fields, and the field manager must do no
// work for it.
func TestSignalsGetNoManagedFields(t *testing.T) {
	kind := signalsv1.SchemeGroupVersion.WithKind("Signal")
	hub := schema.GroupVersion{Group: signals.GroupName, Version: runtime.APIVersionInternal}
	fm, err := managedfields.NewDefaultFieldManager(managedfields.NewDeducedTypeConverter(), Scheme, Scheme, Scheme, kind, hub, "", nil)
	if err != nil {
		t.Fatal(err)
	}
	live, err := Scheme.New(kind)
	if err != nil {
		t.Fatal(err)
	}

	sig := &signals.Signal{
		ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "platform"}},
		Spec:       signals.SignalSpec{Source: "alertmanager", Name: "KubePodCrashLooping"},
	}
	got := fm.UpdateNoErrors(live, sig, "kubectl")
	if got != runtime.Object(sig) || len(sig.ObjectMeta.ManagedFields) != 0 {
		t.Fatalf("the field manager changed the Signal: managed fields %v", sig.ObjectMeta.ManagedFields)
	}

	// The versioned Signal, whose metadata is reachable, does get managed
	// fields from the same field manager: it is not idle.
	v1 := &signalsv1.Signal{ObjectMeta: metav1.ObjectMeta{Labels: map[string]string{"team": "platform"}}, Spec: signalsv1.SignalSpec{Source: "alertmanager"}}
	v1.SetGroupVersionKind(kind)
	managed := fm.UpdateNoErrors(live, v1, "kubectl").(*signalsv1.Signal)
	if len(managed.ManagedFields) != 1 || managed.ManagedFields[0].Manager != "kubectl" {
		t.Fatalf("managed fields of a versioned Signal: %+v, want one entry of kubectl", managed.ManagedFields)
	}
}
