package dedup

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/equality"
	"k8s.io/client-go/tools/cache"
)

func TestStripForCache(t *testing.T) {
	rr := realisticRR(7)
	if len(rr.ManagedFields) == 0 || len(rr.Spec.SignalLabels) == 0 {
		t.Fatal("the RemediationRequest has no managed fields or labels: the test tests nothing")
	}
	rr.Spec.SignalAnnotations = map[string]string{"summary": "crash looping"}
	want := rr.DeepCopy()
	want.ManagedFields = nil
	want.Spec.SignalLabels, want.Spec.SignalAnnotations = nil, nil

	got, err := StripForCache(rr)
	if err != nil {
		t.Fatal(err)
	}
	if !equality.Semantic.DeepEqual(got, want) {
		t.Fatalf("StripForCache changed more than the managed fields and the spec maps:\n got %+v\nwant %+v", got, want)
	}
	// Idempotent, as informers require of transforms.
	again, err := StripForCache(got)
	if err != nil || !equality.Semantic.DeepEqual(again, want) {
		t.Fatalf("a second StripForCache changed it: %+v, %v", again, err)
	}

	tombstone := cache.DeletedFinalStateUnknown{Key: "ns/name", Obj: realisticRR(8)}
	got, err = StripForCache(tombstone)
	if err != nil || !equality.Semantic.DeepEqual(got, tombstone) {
		t.Fatalf("a tombstone came back as %+v, %v; want it unchanged", got, err)
	}
}
