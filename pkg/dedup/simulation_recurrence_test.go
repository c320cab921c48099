package dedup_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
)

// simHolds runs the replicas' engines with a recurrence policy, each
// replica's clock off by one of skews, and checks that no engine replaces a
// finished RemediationRequest while its hold is in force.
type simHolds struct {
	// policy is what the oracle expects; engine, if set, what the engines
	// run (a weaker one, to show that the oracle can fail).
	policy, engine dedup.Policy
	skews          []time.Duration
}

// simHoldPolicy is short enough for holds to begin and end within a run
// (steps let up to 30 s pass).
var simHoldPolicy = dedup.Policy{
	Cooldown:      20 * time.Second,
	Backoff:       5 * time.Second,
	BackoffMax:    40 * time.Second,
	BlockAfter:    3,
	FlapThreshold: 3,
	FlapWindow:    2 * time.Minute,
}

// simSkews are the replicas' clock offsets: a few seconds either way.
var simSkews = []time.Duration{0, 3 * time.Second, -2 * time.Second}

func (h *simHolds) maxSkew() time.Duration {
	var m time.Duration
	for _, s := range h.skews {
		m = max(m, s)
	}
	return m
}

// checkHold is the oracle of the recurrence policy, called as the API
// server applies an engine's delete: the engine deletes a finished
// RemediationRequest only to open the next one, so the RemediationRequest
// as stored must not be held back even by the clock furthest ahead. A
// hold only ever ends with time (later signals, resolutions and stamps do
// not lengthen it), so this holds whenever the engine decided on an
// earlier version.
func (r *simRun) checkHold(c *simCall) {
	if r.holds == nil || c.deleteOpt.Preconditions == nil || c.deleteOpt.Preconditions.UID == nil {
		return
	}
	cur, err := r.api.get(c.namespace, c.name)
	if err != nil || cur.UID != *c.deleteOpt.Preconditions.UID || !cur.Status.OverallPhase.IsTerminal() {
		return
	}
	if hold, why := r.holds.policy.HeldAt(cur, time.Now().Add(r.holds.maxSkew())); hold != "" {
		r.fail("hold", fmt.Sprintf("%s deleted to open the next one while %s: %s (%s)", r.short(c.namespace, c.name), hold, why, describeRR(cur)))
	}
}

func newSimHolds(engine dedup.Policy) *simHolds {
	return &simHolds{policy: simHoldPolicy, engine: engine, skews: simSkews}
}

func runHeldSimulations(t *testing.T, seeds int, holds *simHolds) (failed *simRun, held int) {
	for seed := *simFirst; seed < *simFirst+uint64(seeds); seed++ {
		r := runSimulation(t, seed, *simSteps, nil, func(r *simRun) { r.holds = holds })
		for _, s := range r.submits {
			if s.res.outcome == simHeld || s.res.outcome == simBlocked {
				held++
			}
		}
		if r.failure != nil {
			return r, held
		}
	}
	return nil, held
}

// TestSimulationWithHolds runs the simulation with the recurrence policy
// on and replicas whose clocks differ by seconds: both promises and the
// holds must hold.
func TestSimulationWithHolds(t *testing.T) {
	simulationProcs(t)
	seeds := min(*simSeeds, 200)
	failed, held := runHeldSimulations(t, seeds, newSimHolds(simHoldPolicy))
	if failed != nil {
		t.Fatalf("%s\ntrace:\n%s", failed.report(), strings.Join(failed.trace, "\n"))
	}
	if held == 0 {
		t.Fatalf("%d seeds answered no signal Held or Blocked: the holds were not exercised", seeds)
	}
	t.Logf("%d seeds, %d signals held or blocked", seeds, held)
}

// TestSimulationCatchesBrokenHold proves the hold oracle can fail: engines
// that hold a fifth as long as the policy says replace finished
// RemediationRequests too early.
func TestSimulationCatchesBrokenHold(t *testing.T) {
	simulationProcs(t)
	broken := simHoldPolicy
	broken.Cooldown, broken.Backoff, broken.BlockAfter = simHoldPolicy.Cooldown/5, simHoldPolicy.Backoff/5, 0
	failed, _ := runHeldSimulations(t, 100, newSimHolds(broken))
	if failed == nil {
		t.Fatal("100 seeds with a broken hold found nothing")
	}
	if failed.failure.kind != "hold" {
		t.Fatalf("want a broken hold, got %s", failed.report())
	}
	t.Logf("found: %s", failed.report())
}
