//go:debug randseednop=0

package dedup_test

import (
	"context"
	"errors"
	"math/rand"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	remediationclient "github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/typed/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
)

// This file is the only one of the simulation that knows the engine's API:
// port it, and nothing else, when that API changes.

// simCRDNameRule turns on the modelled CRD rule that a new
// RemediationRequest is named rr-<spec.signalFingerprint[:60]>, as the CRD
// has it and the engine relies on.
const simCRDNameRule = true

var _ dedup.Cache = (*simCache)(nil)

// simEngine is one replica's engine as the simulation drives it.
type simEngine struct {
	engine *dedup.Engine
}

func newSimEngine(client remediationclient.RemediationRequestsGetter, cache *simCache, holds *simHolds, replica int) *simEngine {
	var opts []dedup.Option
	if holds != nil {
		skew := holds.skews[replica%len(holds.skews)]
		opts = append(opts, dedup.WithPolicy(holds.engine), dedup.WithClock(func() time.Time { return time.Now().Add(skew) }))
	}
	return &simEngine{engine: dedup.NewEngine(client, cache, opts...)}
}

// submit hands s to the engine as pkg/registry/signal does.
func (e *simEngine) submit(ctx context.Context, s simSignal) (simResult, error) {
	at := metav1.NewTime(s.at)
	res, err := e.engine.Submit(ctx, dedup.Signal{
		Namespace:         s.namespace,
		Fingerprint:       s.fingerprint,
		LegacyFingerprint: s.legacy,
		Resolved:          s.resolved,
		ReceivedAt:        s.at,
		DryRun:            s.dryRun,
		IdempotencyKey:    s.key,
		Spec: remediationv1alpha1.RemediationRequestSpec{
			SignalFingerprint: s.fingerprint,
			SignalName:        simAlerts[s.alert].name,
			SignalSource:      "simulation",
			Severity:          simAlerts[s.alert].severity,
			TargetResource:    remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: s.namespace, Name: s.target},
			FiringTime:        at,
			ReceivedTime:      at,
		},
	})
	if err != nil {
		return simResult{}, err
	}
	out := simResult{rr: res.RemediationRequest}
	switch res.Outcome {
	case dedup.OutcomeCreated:
		out.outcome = simCreated
	case dedup.OutcomeDeduplicated:
		out.outcome = simDeduplicated
	case dedup.OutcomeResolved:
		out.outcome = simResolved
	case dedup.OutcomeAlreadyCounted:
		out.outcome = simAlreadyCounted
	case dedup.OutcomeHeld:
		out.outcome = simHeld
	case dedup.OutcomeBlocked:
		out.outcome = simBlocked
	default:
		out.outcome = simOutcome("unknown outcome " + string(res.Outcome))
	}
	return out, nil
}

// notify is the informer's event handler, wired as pkg/apiserver wires it:
// a delete makes the engine forget the RemediationRequest.
func (e *simEngine) notify(typ watch.EventType, obj *remediationv1alpha1.RemediationRequest) {
	if typ == watch.Deleted {
		e.engine.Forget(obj.Namespace, obj.Spec.SignalFingerprint, obj.Name, obj.UID)
	}
}

// stop ends whatever the engine runs in the background (nothing today).
func (e *simEngine) stop() {}

// noActive reports that a Resolved signal found nothing to resolve, which is
// an answer, not a failure.
func noActive(err error) bool {
	return errors.Is(err, dedup.ErrNoActiveRemediation)
}

// seedEngineRandomness makes the randomness the engine draws a function of
// the seed: the jitter of its conflict backoff comes from
// k8s.io/apimachinery's wait.Jitter, which draws from math/rand's global
// source (hence randseednop=0 above).
func seedEngineRandomness(seed uint64) {
	rand.Seed(int64(seed)) //nolint:staticcheck // the only way to seed wait.Jitter's source
}
