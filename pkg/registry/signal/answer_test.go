package signal

import (
	"context"
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
)

// oneWrite answers every signal with the same RemediationRequest, as the
// signals counted by one status write are answered.
type oneWrite struct {
	rr      *remediationv1alpha1.RemediationRequest
	outcome dedup.Outcome
}

func (w *oneWrite) Submit(context.Context, dedup.Signal) (*dedup.Result, error) {
	return &dedup.Result{RemediationRequest: w.rr, Outcome: w.outcome}, nil
}

func TestAnswersOfOneWriteAreShared(t *testing.T) {
	stored := &remediationv1alpha1.RemediationRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rr-1", ResourceVersion: "7", Annotations: map[string]string{"team": "platform"}}}
	w := &oneWrite{rr: stored, outcome: dedup.OutcomeDeduplicated}
	storage := newStorage(w)
	create := func(opts *metav1.CreateOptions) runtime.Object {
		t.Helper()
		obj, err := storage.Create(context.Background(), signal(nil), nil, opts)
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}

	first, second := create(&metav1.CreateOptions{}), create(&metav1.CreateOptions{})
	if first != second {
		t.Fatal("two signals of one write got answers of their own")
	}
	want := stored.DeepCopy()
	want.APIVersion, want.Kind = "remediation.io/v1alpha1", "RemediationRequest"
	want.Annotations = map[string]string{"team": "platform", signalsv1.AnnotationOutcome: "Deduplicated"}
	if got := first.(runtime.CacheableObject).GetObject(); !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("answer %+v, want %+v", got, want)
	}
	if stored.Annotations[signalsv1.AnnotationOutcome] != "" || stored.Kind != "" {
		t.Fatal("the engine's RemediationRequest was changed")
	}

	// What readers of the answer may change is theirs alone.
	first.GetObjectKind().SetGroupVersionKind(schema.GroupVersionKind{Kind: "Other"})
	first.(metav1.ObjectMetaAccessor).GetObjectMeta().SetName("other")
	if got := second.(runtime.CacheableObject).GetObject().(*remediationv1alpha1.RemediationRequest); got.Kind != "RemediationRequest" || got.Name != "rr-1" {
		t.Fatalf("a reader changed the shared answer: %s %s", got.Kind, got.Name)
	}

	w.outcome = dedup.OutcomeAlreadyCounted
	if other := create(&metav1.CreateOptions{}); other == first {
		t.Fatal("another outcome got the same answer")
	}
	w.rr = stored.DeepCopy()
	if other := create(&metav1.CreateOptions{}); other == first {
		t.Fatal("another write got the same answer")
	}
	if _, ok := create(&metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}}).(*remediationv1alpha1.RemediationRequest); !ok {
		t.Fatal("a dry run got a shared answer")
	}
}
