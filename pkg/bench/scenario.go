package bench

import (
	"fmt"
	"math"
	mathrand "math/rand/v2"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/signalkey"
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
	// Keyed gives every signal an idempotency key of its own.
	Keyed bool
	// Prefill is how many keyed signals of the same fingerprints go to a
	// deduplicating contender before the row, unmeasured: enough to fill
	// the key window of every RemediationRequest, so that every write of
	// the row carries a full one. Not scaled.
	Prefill int
}

// Scenarios are the scenarios of the issue, at full scale.
var Scenarios = []Scenario{
	{Name: "storm", Signals: 1000, Fingerprints: 1, Concurrency: 200},
	// keyed is storm with a full idempotency-key window: the cost of
	// carrying the window in every status write.
	{Name: "keyed", Signals: 1000, Fingerprints: 1, Concurrency: 200, Keyed: true, Prefill: keyWindow},
	{Name: "spread", Signals: 2000, Fingerprints: 100, Concurrency: 50},
	{Name: "fresh", Signals: 1000, Fingerprints: 1000, Concurrency: 50},
}

// keyWindow is the most idempotency keys a RemediationRequest keeps.
const keyWindow = 1024

// Scaled returns s with its signals and fingerprints multiplied by factor,
// at least one of each, and at most one client per signal. A storm keeps
// its one fingerprint at any scale.
func (s Scenario) Scaled(factor float64) Scenario {
	scale := func(n int) int { return max(1, int(math.Round(float64(n)*factor))) }
	out := s
	out.Signals = scale(s.Signals)
	if s.Fingerprints > 1 {
		out.Fingerprints = min(scale(s.Fingerprints), out.Signals)
	}
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
	// keyPrefix starts the idempotency keys of a keyed workload.
	keyPrefix string
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
	w := &workload{Scenario: s, namespace: namespace, keyPrefix: "signal-bench/" + namespace, order: make([]int, s.Signals)}
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
		// The default key policy: the server runs with no --cluster-id,
		// and a Deployment is its own top-level controller.
		w.fingerprints = append(w.fingerprints, (&signalkey.Policy{}).Fingerprint(signals.TargetReference(sig.Spec.Target)))
	}
	return w
}

// request returns the signal of request i and its fingerprint.
func (w *workload) request(i int) (*signalsv1.Signal, string) {
	j := w.order[i]
	sig := w.signals[j]
	if w.Keyed {
		sig = sig.DeepCopy()
		sig.Spec.IdempotencyKey = w.keyPrefix + "/" + strconv.Itoa(i)
	}
	return sig, w.fingerprints[j]
}

// prefill returns the workload that fills the key windows of w's
// RemediationRequests: w.Prefill signals of the same fingerprints, in w's
// namespace, with keys w never uses.
func (w *workload) prefill() *workload {
	p := &workload{
		Scenario:     Scenario{Name: w.Name, Signals: w.Prefill, Fingerprints: w.Fingerprints, Concurrency: w.Concurrency, Keyed: true},
		namespace:    w.namespace,
		keyPrefix:    w.keyPrefix + "/prefill",
		signals:      w.signals,
		fingerprints: w.fingerprints,
		order:        make([]int, w.Prefill),
	}
	for i := range p.order {
		p.order[i] = i % w.Fingerprints
	}
	return p
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
