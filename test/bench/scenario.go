package bench

import (
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
)

// Scenario is a shape of signal traffic.
type Scenario struct {
	// Name is storm, spread or fresh.
	Name string
	// Signals is how many signals are sent.
	Signals int
	// Fingerprints is how many distinct fingerprints they carry, round-robin;
	// it is also how many RemediationRequests a correct intake creates.
	Fingerprints int
	// Concurrency is how many clients send at once.
	Concurrency int
}

// Scenarios are the scenarios of the issue, at full scale.
var Scenarios = []Scenario{
	{Name: "storm", Signals: 1000, Fingerprints: 1, Concurrency: 200},
	{Name: "spread", Signals: 2000, Fingerprints: 100, Concurrency: 50},
	{Name: "fresh", Signals: 1000, Fingerprints: 1000, Concurrency: 50},
}

// Scaled returns s with its signals and fingerprints multiplied by factor,
// at least one of each (a storm keeps its one fingerprint), and at most one
// client per signal.
func (s Scenario) Scaled(factor float64) Scenario {
	scale := func(n int) int { return max(1, int(math.Round(float64(n)*factor))) }
	out := s
	out.Signals = scale(s.Signals)
	out.Fingerprints = min(scale(s.Fingerprints), out.Signals)
	out.Concurrency = min(s.Concurrency, out.Signals)
	return out
}

// orderSeed fixes the order in which a workload's fingerprints arrive, so
// that every run and every contender sees the same sequence.
const orderSeed = 20261127

// workload is the signals of one row: Signals requests in one namespace,
// every fingerprint in the same number of them (give or take one), in a
// shuffled order.
type workload struct {
	Scenario
	namespace string
	signals   []*signalsv1.Signal
	// fingerprints[j] is the fingerprint of signals[j].
	fingerprints []string
	// order[i] is the index of the signal that request i sends.
	order []int
}

// newWorkload makes the signals of s in namespace: each fingerprint is a
// Deployment of its own with a random name. The order is shuffled rather
// than round-robin: round-robin with fewer clients than fingerprints never
// has two signals of one fingerprint in flight at once, which no storm of
// real alerts does.
func newWorkload(s Scenario, namespace string) *workload {
	w := &workload{Scenario: s, namespace: namespace, order: make([]int, s.Signals)}
	for i := range w.order {
		w.order[i] = i % s.Fingerprints
	}
	shuffle := mathrand.New(mathrand.NewPCG(orderSeed, orderSeed))
	shuffle.Shuffle(len(w.order), func(i, j int) { w.order[i], w.order[j] = w.order[j], w.order[i] })
	prefix := "app-" + rand.String(6)
	for j := range s.Fingerprints {
		sig := &signalsv1.Signal{Spec: signalsv1.SignalSpec{
			Source:   "signal-bench",
			Name:     "KubePodCrashLooping",
			Severity: "critical",
			Target: signalsv1.TargetReference{
				APIVersion: "apps/v1",
				Kind:       "Deployment",
				Namespace:  namespace,
				Name:       fmt.Sprintf("%s-%d", prefix, j),
			},
			Labels: map[string]string{"team": "platform", "alertname": "KubePodCrashLooping"},
		}}
		w.signals = append(w.signals, sig)
		w.fingerprints = append(w.fingerprints, fingerprint.ForTarget(fingerprint.Target{
			Namespace: namespace, Group: "apps", Kind: sig.Spec.Target.Kind, Name: sig.Spec.Target.Name,
		}))
	}
	return w
}

// request returns the signal of request i and its fingerprint.
func (w *workload) request(i int) (*signalsv1.Signal, string) {
	j := w.order[i]
	return w.signals[j], w.fingerprints[j]
}

// remediationSpec is the spec signal-apiserver gives the RemediationRequest
// that sig, received at now, opens (pkg/registry/signal).
func remediationSpec(sig *signalsv1.Signal, fp string, now time.Time) remediationv1alpha1.RemediationRequestSpec {
	received := metav1.NewTime(now)
	firing := received
	if sig.Spec.StartsAt != nil {
		firing = *sig.Spec.StartsAt
	}
	return remediationv1alpha1.RemediationRequestSpec{
		SignalFingerprint: fp,
		SignalName:        sig.Spec.Name,
		SignalSource:      sig.Spec.Source,
		Severity:          sig.Spec.Severity,
		TargetResource: remediationv1alpha1.ResourceReference{
			APIVersion: sig.Spec.Target.APIVersion,
			Kind:       sig.Spec.Target.Kind,
			Namespace:  sig.Spec.Target.Namespace,
			Name:       sig.Spec.Target.Name,
		},
		SignalLabels:      sig.Spec.Labels,
		SignalAnnotations: sig.Spec.Annotations,
		FiringTime:        firing,
		ReceivedTime:      received,
	}
}
