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
		{1, Scenario{Name: "storm", Signals: 1000, Fingerprints: 1, Concurrency: 200}, Scenario{Name: "storm", Signals: 1000, Fingerprints: 1, Concurrency: 200}},
		{0.1, Scenario{Name: "storm", Signals: 1000, Fingerprints: 1, Concurrency: 200}, Scenario{Name: "storm", Signals: 100, Fingerprints: 1, Concurrency: 100}},
		{0.1, Scenario{Name: "spread", Signals: 2000, Fingerprints: 100, Concurrency: 50}, Scenario{Name: "spread", Signals: 200, Fingerprints: 10, Concurrency: 50}},
		{0.1, Scenario{Name: "fresh", Signals: 1000, Fingerprints: 1000, Concurrency: 50}, Scenario{Name: "fresh", Signals: 100, Fingerprints: 100, Concurrency: 50}},
		{0.001, Scenario{Name: "spread", Signals: 2000, Fingerprints: 100, Concurrency: 50}, Scenario{Name: "spread", Signals: 2, Fingerprints: 1, Concurrency: 2}},
		{10, Scenario{Name: "storm", Signals: 1000, Fingerprints: 1, Concurrency: 200}, Scenario{Name: "storm", Signals: 10000, Fingerprints: 1, Concurrency: 200}},
		{0.1, Scenario{Name: "keyed", Signals: 1000, Fingerprints: 1, Concurrency: 200, Keyed: true, Prefill: 1024}, Scenario{Name: "keyed", Signals: 100, Fingerprints: 1, Concurrency: 100, Keyed: true, Prefill: 1024}},
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

func TestKeyedWorkload(t *testing.T) {
	w := newWorkload(Scenario{Name: "keyed", Signals: 10, Fingerprints: 1, Concurrency: 5, Keyed: true, Prefill: 4}, "ns")
	keys := map[string]bool{}
	for i := range w.Signals {
		sig, _ := w.request(i)
		keys[sig.Spec.IdempotencyKey] = true
	}
	p := w.prefill()
	for i := range p.Signals {
		sig, fp := p.request(i)
		if fp != w.fingerprints[0] {
			t.Fatalf("prefill request %d has fingerprint %s, want the row's %s", i, fp, w.fingerprints[0])
		}
		keys[sig.Spec.IdempotencyKey] = true
	}
	if len(keys) != 14 || keys[""] {
		t.Fatalf("%d distinct keys over 10 requests and 4 prefills, want 14 non-empty: %v", len(keys), keys)
	}
	if sig, _ := newWorkload(Scenario{Name: "storm", Signals: 2, Fingerprints: 1, Concurrency: 1}, "ns").request(1); sig.Spec.IdempotencyKey != "" {
		t.Fatalf("a storm signal carries the key %q", sig.Spec.IdempotencyKey)
	}
}
