package bench

import (
	"slices"
	"testing"
)

func TestScenarioScaled(t *testing.T) {
	tests := []struct {
		factor float64
		in     Scenario
		want   Scenario
	}{
		{1, Scenario{"storm", 1000, 1, 200}, Scenario{"storm", 1000, 1, 200}},
		{0.1, Scenario{"storm", 1000, 1, 200}, Scenario{"storm", 100, 1, 100}},
		{0.1, Scenario{"spread", 2000, 100, 50}, Scenario{"spread", 200, 10, 50}},
		{0.1, Scenario{"fresh", 1000, 1000, 50}, Scenario{"fresh", 100, 100, 50}},
		{0.001, Scenario{"spread", 2000, 100, 50}, Scenario{"spread", 2, 1, 2}},
	}
	for _, tt := range tests {
		if got := tt.in.Scaled(tt.factor); got != tt.want {
			t.Errorf("%+v.Scaled(%v) = %+v, want %+v", tt.in, tt.factor, got, tt.want)
		}
	}
}

func TestWorkloadOrder(t *testing.T) {
	w := newWorkload(Scenario{Name: "spread", Signals: 2000, Fingerprints: 100, Concurrency: 50}, "ns")
	perFingerprint := map[string]int{}
	for i := range w.Signals {
		sig, fp := w.request(i)
		if sig.Spec.Target.Namespace != "ns" {
			t.Fatalf("request %d is about namespace %q, want ns", i, sig.Spec.Target.Namespace)
		}
		perFingerprint[fp]++
	}
	if len(perFingerprint) != 100 {
		t.Errorf("%d fingerprints, want 100", len(perFingerprint))
	}
	for fp, n := range perFingerprint {
		if n != 20 {
			t.Errorf("fingerprint %s is in %d requests, want 20", fp, n)
		}
	}
	again := newWorkload(Scenario{Name: "spread", Signals: 2000, Fingerprints: 100, Concurrency: 50}, "ns")
	if !slices.Equal(w.order, again.order) {
		t.Error("two workloads of one scenario have different orders")
	}
	if slices.IsSorted(w.order[:100]) {
		t.Error("the order is not shuffled")
	}
}
