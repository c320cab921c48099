package dedup_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash/fnv"
	"maps"
	"math"
	"math/rand/v2"
	"runtime"
	"runtime/debug"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/watch"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// The deterministic simulation of the deduplication protocol (docs/dedup.md,
// "The simulation"): replicas running the real engine over a modelled
// kube-apiserver, a remediation controller and a retention policy, every
// step chosen from one seed. Promise 1 is checked after every step, promise
// 2 once everything has settled.

var (
	simSeeds     = flag.Int("sim.seeds", 500, "how many seeds TestSimulation runs")
	simFirst     = flag.Uint64("sim.first", 1, "the first seed TestSimulation runs")
	simSeed      = flag.Uint64("sim.seed", 0, "run only this seed and print its whole trace")
	simSteps     = flag.Int("sim.steps", 300, "random steps per seed, before the drain")
	simKeepGoing = flag.Bool("sim.keepgoing", false, "run every seed instead of stopping at the first failing one")
	simMinimize  = flag.Bool("sim.minimize", true, "shrink the steps of the first failing seed to a short trace that still fails")
	simCatalog   = flag.Bool("sim.catalog", false, "run every seed, shrink every failing one and group them by what they needed")
	simKeep      = flag.Bool("sim.keep", false, "delete no RemediationRequests (no retention), to look at everything else")
)

// simOutcome is what the engine said a signal did.
type simOutcome string

const (
	simCreated        simOutcome = "Created"
	simDeduplicated   simOutcome = "Deduplicated"
	simResolved       simOutcome = "Resolved"
	simAlreadyCounted simOutcome = "AlreadyCounted"
	simHeld           simOutcome = "Held"
	simBlocked        simOutcome = "Blocked"
)

// simResult is the answer to a signal.
type simResult struct {
	outcome simOutcome
	rr      *rr
}

// simSignal is a signal as the simulation sends it.
type simSignal struct {
	namespace   string
	fingerprint string
	legacy      string // the fingerprint an earlier version gave it, if another
	target      string
	resolved    bool
	dryRun      bool
	key         string
	at          time.Time
	alert       int // which of simAlerts it is
}

// simFP is one (namespace, fingerprint) the signals of a run go to.
type simFP struct {
	namespace   string
	fingerprint string
	label       string
	// legacy is the fingerprint an earlier version gave the problem, if
	// another one, and earlier are the RemediationRequests that version
	// left (upgrade runs).
	legacy  string
	earlier []*rr
}

// simKind is a kind of step.
type simKind int

const (
	stepSubmit     simKind = iota // a signal arrives at a replica
	stepRelease                   // the API server answers a call in flight
	stepDeliver                   // a watch event reaches a replica's cache
	stepHandle                    // a replica's informer handler runs for a delivered event
	stepController                // the remediation controller moves an active RR on
	stepRetention                 // the retention policy deletes an RR
	stepRelist                    // a replica's informer relists
	stepRestart                   // a replica restarts with empty memory
	stepAdvance                   // time passes
	simKinds
)

// simBaseWeights are the relative frequencies of the step kinds before
// each seed scales them (swarm testing: every seed stresses something else).
var simBaseWeights = [simKinds]float64{
	stepSubmit:     30,
	stepRelease:    35,
	stepDeliver:    14,
	stepHandle:     8,
	stepController: 6,
	stepRetention:  5,
	stepRelist:     0.7,
	stepRestart:    0.7,
	stepAdvance:    5,
}

// simWriter is the Go type a remediation controller writes status with:
// status update is a PUT of the whole status, so a field its type lacks is
// written away.
type simWriter int

const (
	writerFull simWriter = iota // this version's type
	writerLean                  // lacks status.signalSummary and status.recurrence
	writerOld                   // also lacks deduplication.idempotencyKeys
)

var writerNames = [...]string{writerFull: "", writerLean: " (its type lacks signalSummary and recurrence)", writerOld: " (its type lacks signalSummary, recurrence and idempotencyKeys)"}

// simFault is how a call in flight is answered.
type simFault int

const (
	faultNone           simFault = iota
	faultAppliedTimeout          // applied, answered 504
	faultAppliedLost             // applied, the connection broke before the answer
	faultRejected                // not applied, answered 429
	faultNotAppliedLost          // not applied, the connection broke
	faultKilledApplied           // the replica died before the answer came
	faultKilled                  // the replica died before the call was applied
)

// faultNames say what the client got instead of the API server's answer.
var faultNames = [...]string{
	faultAppliedTimeout: "but the client got 504 Timeout",
	faultAppliedLost:    "but the connection broke before the answer",
	faultRejected:       "not applied: 429 TooManyRequests",
	faultNotAppliedLost: "not applied: the connection broke",
	faultKilledApplied:  "but the replica died before the answer",
	faultKilled:         "not applied: the replica died",
}

// simConfig is the world of one seed.
type simConfig struct {
	replicas int
	fps      []simFP
	upgrade  bool // the run starts with an earlier version's RemediationRequests
	faults   bool // ambiguous failures, client deadlines, restarts
	keep     bool // nothing is deleted: no retention
	weights  [simKinds]float64
}

// simStep is one step, with every choice it involves, so that a list of
// steps replays without the random source (and can be shrunk).
type simStep struct {
	kind simKind
	node int
	// stepSubmit
	fp       int
	key      string
	resolved bool
	dryRun   bool
	deadline time.Duration
	// stepRelease: the nth call in flight of node with verb and name.
	verb  string
	name  string
	nth   int
	fault simFault
	// stepController, stepRetention (namespace, name above).
	namespace string
	phase     remediationv1alpha1.Phase
	deleteNow bool
	why       string
	// hold: the controller puts a finalizer on the RR instead; release:
	// it removes the finalizers of one being deleted; writer: the Go type
	// its status write goes through.
	hold, release bool
	writer        simWriter
	// stepAdvance
	d time.Duration
	// stepRestart: the seed of which calls in flight were applied.
	sub uint64
}

// simNode is one incarnation of a replica: its engine, its cache and where
// its watch stands.
type simNode struct {
	run     *simRun
	replica int
	gen     int
	alive   bool
	engine  *simEngine
	cache   *simCache
	cursor  int        // next watch event to deliver
	pending []simEvent // delivered events its handler has not run for yet
}

func (n *simNode) String() string {
	if n.gen == 0 {
		return "r" + strconv.Itoa(n.replica)
	}
	return fmt.Sprintf("r%d#%d", n.replica, n.gen)
}

// simSubmit is one signal submitted to a replica.
type simSubmit struct {
	id   int
	node *simNode
	sig  simSignal
	done bool
	res  simResult
	err  error
	// sent and answered are how many calls had been made when the signal
	// was submitted and when it was answered: the calls that can have
	// carried it lie between (or after, for one whose caller gave up).
	sent, answered int
}

// simFailure is a broken promise.
type simFailure struct {
	kind string // "promise 1", "promise 2", "delete", "hold", "liveness", "model"
	step int
	msg  string
}

// simRun is one seed's run.
type simRun struct {
	// holds, if set, runs the engines with a recurrence policy and skewed
	// clocks (simulation_recurrence_test.go).
	holds  *simHolds
	seed   uint64
	cfg    simConfig
	rng    *rand.Rand
	script []simStep // replay these instead of choosing
	steps  int
	api    *simAPI
	start  time.Time
	nodes  []*simNode

	mu          sync.Mutex // guards what engine goroutines touch below
	calls       int
	inFlight    []*simCall
	submits     []*simSubmit
	outstanding int
	unsupported []string
	trace       []string

	// landed are the status updates that raised a count, in order.
	landed []*simCall

	executed []simStep
	deleted  []string // what the deletions deleted: active or terminal, newest or not
	step     int
	failure  *simFailure
	quiet    bool // tearing down: no more trace
	// goroutines is how many goroutines ran before the replicas started;
	// there are as many again once every engine goroutine has ended.
	goroutines int
	stopped    bool
	wall       time.Duration
	// slowest is the longest real time between two waits, lastWait the
	// real time of the last one, attempts how often the seed ran.
	slowest  time.Duration
	lastWait time.Duration
	attempts int
}

func simFingerprint(label string) string {
	sum := sha256.Sum256([]byte("simulation/" + label))
	return hex.EncodeToString(sum[:])
}

// simConfigFor derives the world of a seed, and the source of its steps.
func simConfigFor(seed uint64) (simConfig, *rand.Rand) {
	rng := rand.New(rand.NewPCG(seed, 0x5151))
	cfg := simConfig{replicas: 1 + rng.IntN(3), faults: rng.IntN(4) != 0}
	for i := range 1 + rng.IntN(3) {
		label := string(rune('A' + i))
		cfg.fps = append(cfg.fps, simFP{namespace: "team-a", fingerprint: simFingerprint(label), label: label})
	}
	if rng.IntN(4) == 0 {
		// The same fingerprint in another namespace is another problem.
		cfg.fps = append(cfg.fps, simFP{namespace: "team-b", fingerprint: cfg.fps[0].fingerprint, label: cfg.fps[0].label})
	}
	for k, w := range simBaseWeights {
		cfg.weights[k] = w * (0.25 + 1.75*rng.Float64())
	}
	if rng.IntN(3) == 0 {
		cfg.upgrade = true
		for i := range cfg.fps {
			simEarlierVersion(rng, &cfg.fps[i])
		}
	}
	return cfg, rng
}

// simEarlierVersion gives fp the RemediationRequests a version before the
// name rule may have left: slots rr-<fp[:16]>-<n>, under the problem's
// fingerprint or (the default fingerprint changed) a legacy one, all
// finished but maybe the newest. At most one is active, as the earlier
// version's promise allowed.
func simEarlierVersion(rng *rand.Rand, fp *simFP) {
	under := fp.fingerprint
	if rng.IntN(2) == 0 {
		fp.legacy = simFingerprint("legacy/" + fp.label)
		under = fp.legacy
	}
	n := rng.IntN(4)
	active := rng.IntN(2) == 0
	at := metav1.NewTime(time.Date(2000, 1, 1, 0, 0, 0, 0, time.UTC))
	for i := range n {
		phase := remediationv1alpha1.PhaseCompleted
		if i == n-1 && active {
			phase = remediationv1alpha1.PhaseProcessing
		}
		fp.earlier = append(fp.earlier, &rr{
			ObjectMeta: metav1.ObjectMeta{Namespace: fp.namespace, Name: "rr-" + under[:16] + "-" + strconv.Itoa(i)},
			Spec: remediationv1alpha1.RemediationRequestSpec{
				SignalFingerprint: under, SignalName: "SimulatedAlert", SignalSource: "simulation",
				TargetResource: remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: fp.namespace, Name: "app-" + fp.label},
				FiringTime:     at, ReceivedTime: at,
			},
			Status: remediationv1alpha1.RemediationRequestStatus{
				OverallPhase:  phase,
				Deduplication: &remediationv1alpha1.DeduplicationStatus{FirstSeenAt: at, LastSeenAt: at, OccurrenceCount: int64(1 + rng.IntN(5))},
			},
		})
	}
}

func (c simConfig) String() string {
	fps := make([]string, len(c.fps))
	for i, fp := range c.fps {
		fps[i] = fp.namespace + "/" + fp.label
	}
	faults := "off (answers are exact: the counts must match exactly)"
	if c.faults {
		faults = "on (ambiguous failures, client deadlines, restarts)"
	}
	s := fmt.Sprintf("%d replicas, fingerprints %s, faults %s", c.replicas, strings.Join(fps, " "), faults)
	if c.upgrade {
		var earlier []string
		for _, fp := range c.fps {
			what := fmt.Sprintf("%s/%s: %d", fp.namespace, fp.label, len(fp.earlier))
			if fp.legacy != "" {
				what += " under a legacy fingerprint"
			}
			earlier = append(earlier, what)
		}
		s += ", upgrade from an earlier version's RemediationRequests (" + strings.Join(earlier, ", ") + ")"
	}
	if c.keep {
		s += ", no deletions"
	}
	return s
}

// preemptionRisk is the longest real time between two waits for which
// the Go scheduler cannot have preempted a goroutine (it gives each 10ms),
// and so changed the order in which runnable goroutines run.
const preemptionRisk = 8 * time.Millisecond

// runSimulation runs seed for steps random steps (or script), then drains.
// A run is a function of the seed as long as the runtime runs runnable
// goroutines in the order they became runnable, which it does on one P
// (simulationProcs) without GC (simulationProcs) unless it preempts a
// goroutine that ran for 10ms of real time, which a loaded machine causes
// now and then: such a run is run again.
func runSimulation(t *testing.T, seed uint64, steps int, script []simStep, opts ...func(*simRun)) *simRun {
	var r *simRun
	for attempt := 1; ; attempt++ {
		runtime.GC()
		begin := time.Now()
		synctest.Test(t, func(*testing.T) {
			cfg, rng := simConfigFor(seed)
			r = &simRun{seed: seed, cfg: cfg, rng: rng, script: script, steps: steps, api: newSimAPI(simCRDNameRule), start: time.Now()}
			if script != nil {
				r.steps = len(script)
			}
			r.cfg.keep = *simKeep
			for _, opt := range opts {
				opt(r)
			}
			r.run()
		})
		r.wall = time.Since(begin)
		r.attempts = attempt
		if r.slowest < preemptionRisk || attempt == 10 {
			return r
		}
	}
}

func (r *simRun) run() {
	r.goroutines = runtime.NumGoroutine()
	seedEngineRandomness(r.seed)
	r.logf("seed %d: %s", r.seed, r.cfg)
	for _, fp := range r.cfg.fps {
		if fp.legacy != "" {
			r.api.aliases[fp.legacy] = fp.fingerprint
		}
		for _, o := range fp.earlier {
			r.api.preload(o)
		}
	}
	for i := range r.cfg.replicas {
		r.nodes = append(r.nodes, r.newNode(i, 0))
	}
	r.lastWait = wallNow()
	for r.step < r.steps {
		r.wait()
		r.abandonDue()
		r.wait()
		var st simStep
		if r.script != nil {
			st = r.script[r.step]
		} else {
			st = r.choose()
		}
		r.step++
		r.executed = append(r.executed, st)
		r.exec(st)
		r.wait()
		if r.check(); r.failure != nil {
			r.teardown()
			return
		}
	}
	r.drain()
	if r.failure == nil {
		r.checkCounts()
	}
	r.teardown()
}

// teardown stops every replica so that the bubble can end: calls in flight
// fail unapplied, new ones are refused, and time passes until every signal
// is answered. Nothing of it goes into the trace.
func (r *simRun) teardown() {
	r.mu.Lock()
	r.quiet = true
	calls := r.inFlight
	r.inFlight = nil
	for _, n := range r.nodes {
		n.alive = false
	}
	r.mu.Unlock()
	for _, c := range calls {
		r.mu.Lock()
		c.replied = true
		r.mu.Unlock()
		c.reply <- simReply{err: errConnectionLost}
	}
	for _, n := range r.nodes {
		n.engine.stop()
	}
	for range 100_000 {
		synctest.Wait()
		if runtime.NumGoroutine() <= r.goroutines {
			return
		}
		time.Sleep(time.Second)
	}
}

func (r *simRun) newNode(replica, gen int) *simNode {
	n := &simNode{run: r, replica: replica, gen: gen, alive: true}
	n.cache = newSimCache(r.api.list(""))
	n.cursor = len(r.api.events)
	n.engine = newSimEngine(simGetter{node: n}, n.cache, r.holds, replica)
	return n
}

// wait lets every other goroutine run until it blocks, and records the
// longest real time that took: see runSimulation.
func (r *simRun) wait() {
	synctest.Wait()
	now := wallNow()
	r.slowest = max(r.slowest, now-r.lastWait)
	r.lastWait = now
}

// logf adds a line to the trace.
func (r *simRun) logf(format string, args ...any) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.logLocked(format, args...)
}

func (r *simRun) logLocked(format string, args ...any) {
	if r.quiet {
		return
	}
	r.trace = append(r.trace, fmt.Sprintf(format, args...))
}

// stepf adds the line of a step to the trace; the lines of what it caused
// follow, indented.
func (r *simRun) stepf(format string, args ...any) {
	r.logf("#%d %s %s", r.step, time.Since(r.start), fmt.Sprintf(format, args...))
}

// tracef adds a line about what the engine did; callers hold r.mu.
func (r *simRun) tracef(format string, args ...any) {
	r.logLocked("      "+format, args...)
}

// enqueue puts a call in flight, or refuses it if its replica is dead.
func (r *simRun) enqueue(call *simCall) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !call.node.alive {
		r.tracef("%s (dead) %s: connection refused", call.node, r.describeCall(call))
		return false
	}
	r.calls++
	call.id = r.calls
	call.reply = make(chan simReply, 1)
	r.inFlight = append(r.inFlight, call)
	r.tracef("%s c%d → %s", call.node, call.id, r.describeCall(call))
	return true
}

// short names an RR for the trace: the fingerprint becomes its label.
func (r *simRun) short(namespace, name string) string {
	if rest, ok := strings.CutPrefix(name, "rr-"); ok {
		for _, fp := range r.cfg.fps {
			n := 0
			for n < len(rest) && n < len(fp.fingerprint) && rest[n] == fp.fingerprint[n] {
				n++
			}
			if n >= 8 {
				return namespace + "/rr-" + fp.label + rest[n:]
			}
		}
	}
	return namespace + "/" + name
}

func describeRR(o *rr) string {
	phase := string(o.Status.OverallPhase)
	if phase == "" {
		phase = "-"
	}
	s := fmt.Sprintf("uid=%s rv=%s phase=%s", o.UID, o.ResourceVersion, phase)
	if len(o.Finalizers) > 0 {
		s += " finalizer"
	}
	if o.DeletionTimestamp != nil {
		s += " deleting"
	}
	if d := o.Status.Deduplication; d != nil {
		s += fmt.Sprintf(" count=%d", d.OccurrenceCount)
		if n := len(d.IdempotencyKeys) / remediationv1alpha1.IdempotencyKeyDigestSize; n > 0 {
			s += fmt.Sprintf(" keys=%d", n)
		}
	}
	return s
}

func (r *simRun) describeCall(c *simCall) string {
	name := r.short(c.namespace, c.name)
	dry := ""
	if c.dryRun {
		dry = " (dry run)"
	}
	switch c.verb {
	case "create":
		return "Create " + name + dry
	case "get":
		return "Get " + name
	case "list":
		return "List " + c.namespace
	case "updateStatus", "update":
		verb := "UpdateStatus"
		if c.verb == "update" {
			verb = "Update"
		}
		return fmt.Sprintf("%s %s from %s%s", verb, name, describeRR(c.obj), dry)
	case "delete":
		s := "Delete " + name
		if p := c.deleteOpt.Preconditions; p != nil {
			if p.UID != nil {
				s += " if uid=" + string(*p.UID)
			}
			if p.ResourceVersion != nil {
				s += " if rv=" + *p.ResourceVersion
			}
		}
		return s + dry
	}
	return c.verb + " " + name
}

func describeErr(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		st := status.Status()
		return fmt.Sprintf("%d %s", st.Code, st.Reason)
	}
	return err.Error()
}

func (r *simRun) describeReply(c *simCall, rep simReply) string {
	switch {
	case rep.err != nil:
		return describeErr(rep.err)
	case c.verb == "list":
		return fmt.Sprintf("%d items", len(rep.list))
	case rep.obj == nil:
		return "OK"
	}
	return describeRR(rep.obj)
}

// choose picks the next step at random among those that can happen.
func (r *simRun) choose() simStep {
	w := r.cfg.weights
	r.mu.Lock()
	inFlight := slices.Clone(r.inFlight)
	r.mu.Unlock()
	var lagging, handling []int
	for i, n := range r.nodes {
		if n.cursor < len(r.api.events) {
			lagging = append(lagging, i)
		}
		if len(n.pending) > 0 {
			handling = append(handling, i)
		}
	}
	var active, all []*rr // active: what the controller can act on
	for _, o := range r.api.list("") {
		all = append(all, o)
		if simActive(o) || o.DeletionTimestamp != nil {
			active = append(active, o)
		}
	}
	if len(inFlight) == 0 {
		w[stepRelease] = 0
	}
	if len(lagging) == 0 {
		w[stepDeliver] = 0
	}
	if len(handling) == 0 {
		w[stepHandle] = 0
	}
	if len(active) == 0 {
		w[stepController] = 0
	}
	if len(all) == 0 || r.cfg.keep {
		w[stepRetention] = 0
	}
	if !r.cfg.faults {
		w[stepRestart] = 0
	}
	st := simStep{kind: simKind(pick(r.rng, w[:]))}
	rng := r.rng
	switch st.kind {
	case stepSubmit:
		st.node = rng.IntN(len(r.nodes))
		st.fp = rng.IntN(len(r.cfg.fps))
		st.resolved = rng.IntN(10) == 0
		st.dryRun = rng.IntN(30) == 0
		if rng.IntN(3) == 0 {
			st.key = "alert-" + strconv.Itoa(rng.IntN(4))
		}
		if r.cfg.faults && rng.IntN(4) == 0 {
			st.deadline = []time.Duration{50 * time.Millisecond, 500 * time.Millisecond, 5 * time.Second, 30 * time.Second}[rng.IntN(4)]
		}
	case stepRelease:
		c := inFlight[rng.IntN(len(inFlight))]
		st.node, st.verb, st.namespace, st.name = c.node.replica, c.verb, c.namespace, c.name
		for _, o := range inFlight {
			if o == c {
				break
			}
			if o.node.replica == c.node.replica && o.verb == c.verb && o.namespace == c.namespace && o.name == c.name {
				st.nth++
			}
		}
		if r.cfg.faults {
			switch u := rng.Float64(); {
			case u < 0.04:
				st.fault = faultAppliedTimeout
			case u < 0.07:
				st.fault = faultAppliedLost
			case u < 0.10:
				st.fault = faultRejected
			case u < 0.12:
				st.fault = faultNotAppliedLost
			}
		}
	case stepDeliver:
		st.node = lagging[rng.IntN(len(lagging))]
	case stepHandle:
		st.node = handling[rng.IntN(len(handling))]
	case stepController:
		o := active[rng.IntN(len(active))]
		st.namespace, st.name = o.Namespace, o.Name
		if o.DeletionTimestamp != nil {
			st.release = true
			break
		}
		st.hold = len(o.Finalizers) == 0 && rng.IntN(6) == 0
		st.writer = simWriter(pick(rng, []float64{4, 2, 1}))
		terminal := []remediationv1alpha1.Phase{
			remediationv1alpha1.PhaseCompleted, remediationv1alpha1.PhaseFailed, remediationv1alpha1.PhaseTimedOut,
			remediationv1alpha1.PhaseSkipped, remediationv1alpha1.PhaseCancelled,
		}
		st.phase = terminal[rng.IntN(len(terminal))]
		if p := o.Status.OverallPhase; (p == "" || p == remediationv1alpha1.PhasePending) && rng.IntN(5) < 2 {
			st.phase = remediationv1alpha1.PhaseProcessing
		}
		st.deleteNow = st.phase.IsTerminal() && rng.IntN(4) == 0 && !r.cfg.keep
	case stepRetention:
		o, why := r.retentionTarget(all)
		st.namespace, st.name, st.why = o.Namespace, o.Name, why
	case stepRelist, stepRestart:
		st.node = rng.IntN(len(r.nodes))
		st.sub = rng.Uint64()
	case stepAdvance:
		ds := []time.Duration{time.Millisecond, 10 * time.Millisecond, 100 * time.Millisecond, time.Second, 5 * time.Second, 30 * time.Second}
		st.d = ds[pick(rng, []float64{3, 3, 2, 2, 1, 1})]
	}
	return st
}

// retentionTarget chooses what the retention policy deletes: a terminal
// RR (what a TTL does), the newest RR of a fingerprint, or an active one
// (by hand).
func (r *simRun) retentionTarget(all []*rr) (*rr, string) {
	var terminal, active []*rr
	for _, o := range all {
		if o.Status.OverallPhase.IsTerminal() {
			terminal = append(terminal, o)
		} else {
			active = append(active, o)
		}
	}
	switch u := r.rng.IntN(20); {
	case u < 9 && len(terminal) > 0:
		return terminal[r.rng.IntN(len(terminal))], "terminal"
	case u < 16:
		o := all[r.rng.IntN(len(all))]
		for _, c := range all {
			if c.Namespace == o.Namespace && c.Spec.SignalFingerprint == o.Spec.SignalFingerprint && uidSeq(c.UID) > uidSeq(o.UID) {
				o = c
			}
		}
		return o, "newest"
	case len(active) > 0:
		return active[r.rng.IntN(len(active))], "active"
	}
	return all[r.rng.IntN(len(all))], "any"
}

func uidSeq(uid types.UID) int {
	n, _ := strconv.Atoi(strings.TrimPrefix(string(uid), "u"))
	return n
}

// pick returns an index with probability proportional to its weight.
func pick(rng *rand.Rand, weights []float64) int {
	var sum float64
	for _, w := range weights {
		sum += w
	}
	u := rng.Float64() * sum
	for i, w := range weights {
		if u < w {
			return i
		}
		u -= w
	}
	for i := len(weights) - 1; ; i-- {
		if weights[i] > 0 {
			return i
		}
	}
}

// exec runs one step. A replayed step that no longer applies is skipped.
func (r *simRun) exec(st simStep) {
	switch st.kind {
	case stepSubmit:
		r.submit(st)
	case stepRelease:
		r.release(st)
	case stepDeliver:
		r.deliver(st)
	case stepHandle:
		r.handle(st)
	case stepController:
		r.control(st)
	case stepRetention:
		r.retain(st)
	case stepRelist:
		r.relist(st)
	case stepRestart:
		r.restart(st)
	case stepAdvance:
		r.advance(st.d)
	}
}

func (r *simRun) submit(st simStep) {
	if st.node >= len(r.nodes) || st.fp >= len(r.cfg.fps) {
		r.stepf("(skipped submit)")
		return
	}
	n, fp := r.nodes[st.node], r.cfg.fps[st.fp]
	sig := simSignal{
		namespace: fp.namespace, fingerprint: fp.fingerprint, legacy: fp.legacy, target: "app-" + fp.label,
		resolved: st.resolved, dryRun: st.dryRun, key: st.key, at: time.Now(), alert: r.step % len(simAlerts),
	}
	r.mu.Lock()
	s := &simSubmit{id: len(r.submits) + 1, node: n, sig: sig, sent: r.calls}
	r.submits = append(r.submits, s)
	r.outstanding++
	r.mu.Unlock()
	what := "firing"
	if st.resolved {
		what = "resolved"
	}
	if st.dryRun {
		what += " dry-run"
	}
	if st.key != "" {
		what += " key=" + st.key
	}
	if st.deadline > 0 {
		what += " deadline=" + st.deadline.String()
	}
	r.stepf("signal s%d to %s: %s/%s %s", s.id, n, fp.namespace, fp.label, what)
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if st.deadline > 0 {
		// No two signals' deadlines fall on one instant: synctest would
		// wake their goroutines in a random order.
		ctx, cancel = context.WithTimeout(ctx, st.deadline+time.Duration(s.id))
	}
	go func() {
		defer cancel()
		res, err := n.engine.submit(ctx, sig)
		r.finish(s, res, err)
	}()
}

func (r *simRun) finish(s *simSubmit, res simResult, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.done, s.res, s.err = true, res, err
	s.answered = r.calls
	r.outstanding--
	switch {
	case noActive(err):
		r.tracef("s%d ← no active RemediationRequest to resolve", s.id)
	case err != nil:
		r.tracef("s%d ← error: %v", s.id, err)
	case res.rr == nil:
		r.tracef("s%d ← %s without a RemediationRequest", s.id, res.outcome)
	default:
		r.tracef("s%d ← %s %s %s", s.id, res.outcome, r.short(res.rr.Namespace, res.rr.Name), describeRR(res.rr))
	}
}

func (r *simRun) release(st simStep) {
	r.mu.Lock()
	var call *simCall
	n := st.nth
	for i, c := range r.inFlight {
		if c.node.replica == st.node && c.verb == st.verb && c.namespace == st.namespace && c.name == st.name {
			call = c
			if n == 0 {
				r.inFlight = slices.Delete(r.inFlight, i, i+1)
				break
			}
			n--
			call = nil
		}
	}
	r.mu.Unlock()
	if call == nil {
		r.stepf("(skipped release of %s %s)", st.verb, r.short(st.namespace, st.name))
		return
	}
	r.answer(call, st.fault)
}

// answer has the API server apply call (or not, by fault) and answers it.
func (r *simRun) answer(call *simCall, fault simFault) {
	applied := fault == faultNone || fault == faultAppliedTimeout || fault == faultAppliedLost || fault == faultKilledApplied
	var rep simReply
	if applied {
		rep = r.apply(call)
	}
	result := r.describeReply(call, rep)
	switch fault {
	case faultAppliedTimeout:
		rep = simReply{err: apierrors.NewTimeoutError("request did not complete within the allowed duration", 0)}
	case faultAppliedLost, faultNotAppliedLost, faultKilledApplied, faultKilled:
		rep = simReply{err: errConnectionLost}
	case faultRejected:
		rep = simReply{err: apierrors.NewTooManyRequests("too many requests", 1)}
	}
	r.mu.Lock()
	call.replied = true
	abandoned := call.abandoned
	r.mu.Unlock()
	line := fmt.Sprintf("c%d %s %s", call.id, call.node, r.describeCall(call))
	if abandoned {
		line += " (its client gave up)"
	}
	switch {
	case fault == faultNone:
		line += " → " + result
	case applied:
		line += fmt.Sprintf(" → %s, %s", result, faultNames[fault])
	default:
		line += " → " + faultNames[fault]
	}
	if fault == faultKilled || fault == faultKilledApplied {
		r.logf("      %s", line)
	} else {
		r.stepf("answer %s", line)
	}
	if !abandoned {
		call.reply <- rep
	}
}

// abandonDue answers, in the order they were sent, the calls in flight
// whose context has ended, as client-go does: the client gives up, the API
// server may still apply the call. The scheduler does it, not the client,
// because synctest wakes goroutines whose timers fire at one instant in a
// random order.
func (r *simRun) abandonDue() {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, c := range r.inFlight {
		if c.abandoned || c.replied {
			continue
		}
		if err := c.ctx.Err(); err != nil {
			c.abandoned = true
			r.tracef("c%d %s gave up: %v", c.id, c.node, err)
			c.reply <- simReply{err: fmt.Errorf("simulated client: %w", err)}
		}
	}
}

// advance lets d pass, stopping at every deadline of a call in flight to
// let its client give up on time. Without faults the API server answers
// every call in time: time stops short of the first such deadline.
func (r *simRun) advance(d time.Duration) {
	r.stepf("time passes: %s", d)
	begin, end := time.Now(), time.Now().Add(d)
	for {
		next, due := end, false
		r.mu.Lock()
		for _, c := range r.inFlight {
			if dl, ok := c.ctx.Deadline(); ok && !c.abandoned && dl.After(time.Now()) && !dl.After(next) {
				next, due = dl, true
			}
		}
		r.mu.Unlock()
		if due && !r.cfg.faults {
			next = next.Add(-time.Nanosecond)
			end = next
		}
		time.Sleep(time.Until(next))
		r.wait()
		r.abandonDue()
		r.wait()
		if !next.Before(end) {
			break
		}
	}
	if passed := time.Since(begin); passed < d {
		r.logf("      (only %s: then a call in flight would time out)", passed)
	}
}

// apply is the API server acting on a call.
func (r *simRun) apply(c *simCall) simReply {
	switch c.verb {
	case "create":
		o, err := r.api.create(c.obj, c.dryRun)
		return simReply{obj: o, err: err}
	case "get":
		o, err := r.api.get(c.namespace, c.name)
		return simReply{obj: o, err: err}
	case "list":
		return simReply{list: r.api.list(c.namespace)}
	case "updateStatus", "update":
		if c.dryRun {
			r.mu.Lock()
			r.unsupported = append(r.unsupported, "dry-run "+c.verb)
			r.mu.Unlock()
			return simReply{err: apierrors.NewBadRequest("the simulation does not model dry-run updates")}
		}
		if c.verb == "update" {
			o, err := r.api.update(c.obj)
			return simReply{obj: o, err: err}
		}
		before, _ := r.api.get(c.namespace, c.name)
		o, err := r.api.updateStatus(c.obj)
		if err == nil && simCount(o) > simCount(before) {
			r.mu.Lock()
			c.landed = o.UID
			r.landed = append(r.landed, c)
			r.mu.Unlock()
			if before.DeletionTimestamp != nil {
				r.fail("promise 2", fmt.Sprintf("c%d counted on %s (%s), whose deletion had begun: the count vanishes with it", c.id, r.short(o.Namespace, o.Name), o.UID))
			}
		}
		return simReply{obj: o, err: err}
	case "delete":
		r.checkHold(c)
		was, err := r.api.delete(c.namespace, c.name, c.deleteOpt)
		if err == nil && !c.dryRun {
			r.checkDelete(c, was)
		}
		return simReply{err: err}
	}
	return simReply{err: fmt.Errorf("unknown verb %s", c.verb)}
}

// checkDelete is called as the API server applies an engine's delete, with
// the object as it was: the engine deletes only the finished
// RemediationRequest it replaces (or one whose deletion someone else
// began), named by its UID. Deleting an active one cuts a remediation
// short, and the counts of its signals go with it.
func (r *simRun) checkDelete(c *simCall, was *rr) {
	if p := c.deleteOpt.Preconditions; p == nil || p.UID == nil {
		r.fail("delete", fmt.Sprintf("c%d: the engine sent a delete of %s without a UID precondition", c.id, r.short(c.namespace, c.name)))
	}
	if was != nil && simActive(was) {
		r.fail("delete", fmt.Sprintf("c%d: signal-apiserver deleted %s (%s), which was active (%s)", c.id, r.short(was.Namespace, was.Name), was.UID, describeRR(was)))
	}
}

// simCount is o's occurrenceCount; 0 for nil.
func simCount(o *rr) int64 {
	if o == nil || o.Status.Deduplication == nil {
		return 0
	}
	return o.Status.Deduplication.OccurrenceCount
}

func (r *simRun) deliver(st simStep) {
	n := r.nodes[st.node]
	if n.cursor >= len(r.api.events) {
		r.stepf("(skipped delivery to %s)", n)
		return
	}
	ev := r.api.events[n.cursor]
	n.cursor++
	n.cache.apply(ev)
	n.pending = append(n.pending, ev)
	r.stepf("%s's cache ← %s %s %s (%d behind)", n, ev.typ, r.short(ev.obj.Namespace, ev.obj.Name), describeRR(ev.obj), len(r.api.events)-n.cursor)
}

func (r *simRun) handle(st simStep) {
	n := r.nodes[st.node]
	if len(n.pending) == 0 {
		r.stepf("(skipped handler of %s)", n)
		return
	}
	ev := n.pending[0]
	n.pending = n.pending[1:]
	r.stepf("%s's informer handler: %s %s %s", n, ev.typ, r.short(ev.obj.Namespace, ev.obj.Name), ev.obj.UID)
	n.engine.notify(ev.typ, ev.obj)
}

func (r *simRun) control(st simStep) {
	cur, err := r.api.get(st.namespace, st.name)
	switch {
	case err != nil, st.release && cur.DeletionTimestamp == nil, !st.release && !simActive(cur):
		r.stepf("(skipped controller on %s)", r.short(st.namespace, st.name))
		return
	case st.release:
		next := cur.DeepCopy()
		next.Finalizers = nil
		_, err := r.api.update(next)
		r.stepf("controller: removes the finalizer of %s %s, being deleted: %s", r.short(st.namespace, st.name), describeRR(cur), orOK(err))
		return
	case st.hold:
		next := cur.DeepCopy()
		next.Finalizers = []string{"simulation/cleanup"}
		stored, err := r.api.update(next)
		if err != nil {
			r.stepf("controller: finalizer on %s refused: %v", r.short(st.namespace, st.name), err)
			return
		}
		r.stepf("controller: puts a finalizer on %s, now %s", r.short(st.namespace, st.name), describeRR(stored))
		return
	}
	from := cur.Status.OverallPhase
	next := cur.DeepCopy()
	next.Status.OverallPhase = st.phase
	if st.writer != writerFull {
		// A Go type of a release without status.signalSummary and
		// status.recurrence drops them.
		next.Status.SignalSummary, next.Status.Recurrence = nil, nil
	}
	if d := next.Status.Deduplication; d != nil && st.writer == writerOld {
		d.IdempotencyKeys = nil
	}
	stored, err := r.api.updateStatusAs(next, false)
	if err != nil {
		r.stepf("controller: %s → %s%s refused: %v", r.short(st.namespace, st.name), st.phase, writerNames[st.writer], err)
		return
	}
	r.stepf("controller: %s %s → %s%s, now %s", r.short(st.namespace, st.name), orDash(from), st.phase, writerNames[st.writer], describeRR(stored))
	if st.deleteNow {
		r.noteDeletion(stored)
		uid := stored.UID
		_, err := r.api.delete(st.namespace, st.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		r.logf("      retention deletes it at once: %v", orOK(err))
	}
}

func orDash(p remediationv1alpha1.Phase) string {
	if p == "" {
		return "-"
	}
	return string(p)
}

func orOK(err error) string {
	if err == nil {
		return "OK"
	}
	return describeErr(err)
}

func (r *simRun) retain(st simStep) {
	cur, err := r.api.get(st.namespace, st.name)
	if err != nil {
		r.stepf("(skipped retention of %s)", r.short(st.namespace, st.name))
		return
	}
	uid := cur.UID
	r.noteDeletion(cur)
	_, err = r.api.delete(st.namespace, st.name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
	r.stepf("retention deletes %s (%s) %s: %s", r.short(st.namespace, st.name), st.why, describeRR(cur), orOK(err))
}

// noteDeletion records what kind of RR is about to be deleted.
func (r *simRun) noteDeletion(o *rr) {
	what := "active"
	if o.Status.OverallPhase.IsTerminal() {
		what = "terminal"
	}
	newest := true
	for _, c := range r.api.objs {
		if c.Namespace == o.Namespace && c.Spec.SignalFingerprint == o.Spec.SignalFingerprint && uidSeq(c.UID) > uidSeq(o.UID) {
			newest = false
		}
	}
	if newest {
		what = "newest " + what
	}
	r.deleted = append(r.deleted, what)
}

func (r *simRun) relist(st simStep) {
	n := r.nodes[st.node]
	notes := n.cache.replace(r.api.list(""))
	n.cursor = len(r.api.events)
	n.pending = append(n.pending, notes...)
	r.stepf("%s's informer relists: %d objects", n, len(r.api.objs))
}

func (r *simRun) restart(st simStep) {
	old := r.nodes[st.node]
	r.mu.Lock()
	old.alive = false
	var calls []*simCall
	r.inFlight = slices.DeleteFunc(r.inFlight, func(c *simCall) bool {
		if c.node == old {
			calls = append(calls, c)
			return true
		}
		return false
	})
	r.mu.Unlock()
	r.stepf("%s restarts with %d calls in flight", old, len(calls))
	sub := rand.New(rand.NewPCG(st.sub, 1))
	for _, c := range calls {
		if c.write() && sub.IntN(2) == 0 {
			r.answer(c, faultKilledApplied)
		} else {
			r.answer(c, faultKilled)
		}
	}
	old.engine.stop()
	n := r.newNode(st.node, old.gen+1)
	r.nodes[st.node] = n
	r.logf("      %s starts: empty memory, a cache listed at rv %d", n, r.api.rv)
}

// drain stops the signals and lets everything settle: every call is
// answered, every event delivered and handled, every signal answered.
func (r *simRun) drain() {
	r.logf("drain: no more signals, faults, controller or retention")
	for i := 0; ; i++ {
		r.wait()
		r.abandonDue()
		r.wait()
		if i > 20000 || time.Since(r.start) > 24*time.Hour {
			r.fail("liveness", fmt.Sprintf("%d signals still unanswered after the drain", r.outstanding))
			return
		}
		st, ok := r.drainStep()
		if !ok {
			return
		}
		r.step++
		r.exec(st)
		r.wait()
		if r.check(); r.failure != nil {
			return
		}
	}
}

func (r *simRun) drainStep() (simStep, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if len(r.inFlight) > 0 {
		c := r.inFlight[0]
		return simStep{kind: stepRelease, node: c.node.replica, verb: c.verb, namespace: c.namespace, name: c.name}, true
	}
	for i, n := range r.nodes {
		if n.cursor < len(r.api.events) {
			return simStep{kind: stepDeliver, node: i}, true
		}
	}
	for i, n := range r.nodes {
		if len(n.pending) > 0 {
			return simStep{kind: stepHandle, node: i}, true
		}
	}
	if r.outstanding > 0 {
		return simStep{kind: stepAdvance, d: time.Second}, true
	}
	if !r.stopped {
		// Every signal is answered: the engines stop, and whatever they
		// still do in the background (a write whose callers gave up)
		// runs to its end before the counts are checked.
		r.stopped = true
		for _, n := range r.nodes {
			n.engine.stop()
		}
	}
	if runtime.NumGoroutine() > r.goroutines {
		return simStep{kind: stepAdvance, d: time.Second}, true
	}
	return simStep{}, false
}

func (r *simRun) fail(kind, msg string) {
	if r.failure == nil {
		r.failure = &simFailure{kind: kind, step: r.step, msg: msg}
		r.logf("VIOLATION of %s at step %d: %s", kind, r.step, msg)
	}
}

// check is run after every step: promise 1, and what the model noticed.
func (r *simRun) check() {
	if multi := r.api.activeByFingerprint(); len(multi) > 0 {
		keys := make([]string, 0, len(multi))
		for k := range multi {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		var msgs []string
		for _, k := range keys {
			ns, _, _ := strings.Cut(k, "/")
			names := make([]string, len(multi[k]))
			for i, name := range multi[k] {
				o := r.api.objs[objKey(ns, name)]
				names[i] = r.short(ns, name) + " (" + describeRR(o) + ")"
			}
			msgs = append(msgs, fmt.Sprintf("%d active RemediationRequests for one fingerprint: %s", len(names), strings.Join(names, ", ")))
		}
		r.fail("promise 1", strings.Join(msgs, "; "))
	}
	if len(r.api.problems) > 0 {
		r.fail("promise 2", r.api.problems[0])
	}
	r.mu.Lock()
	unsupported := slices.Clone(r.unsupported)
	r.mu.Unlock()
	if len(unsupported) > 0 {
		r.fail("model", "the engine made calls the simulation does not model: "+strings.Join(unsupported, ", "))
	}
}

type uidKey struct {
	uid types.UID
	key string
}

// checkCounts is promise 2, once everything has settled: no acknowledged
// signal is lost, nothing is counted beyond the signals that failed (or,
// without faults, counts are exact), and a key is counted once per RR.
func (r *simRun) checkCounts() {
	counted := map[types.UID]int64{}
	keyCounted := map[uidKey]int{}
	keyAgain := map[uidKey]bool{}
	keyFailed := map[string]int{}
	var failed int64
	for _, s := range r.submits {
		switch {
		case s.sig.dryRun:
			continue
		case s.sig.resolved:
			if s.err == nil && s.res.outcome != simResolved {
				r.fail("promise 2", fmt.Sprintf("resolved signal s%d answered %s", s.id, s.res.outcome))
			}
			continue
		case s.err != nil:
			failed++
			if s.sig.key != "" {
				keyFailed[s.sig.key]++
			}
			continue
		case s.res.rr == nil:
			r.fail("promise 2", fmt.Sprintf("signal s%d acknowledged without a RemediationRequest", s.id))
			continue
		}
		uid := s.res.rr.UID
		if r.api.lives[uid] == nil {
			r.fail("promise 2", fmt.Sprintf("signal s%d acknowledged on %s, which was never created", s.id, uid))
			continue
		}
		k := uidKey{uid, s.sig.key}
		switch s.res.outcome {
		case simCreated, simDeduplicated, simHeld, simBlocked:
			counted[uid]++
			if s.sig.key != "" {
				keyCounted[k]++
			}
		case simAlreadyCounted:
			if s.sig.key == "" {
				r.fail("promise 2", fmt.Sprintf("signal s%d without a key answered AlreadyCounted", s.id))
			}
			keyAgain[k] = true
		default:
			r.fail("promise 2", fmt.Sprintf("signal s%d answered %s", s.id, s.res.outcome))
		}
	}
	uids := make([]types.UID, 0, len(r.api.lives))
	for uid := range r.api.lives {
		uids = append(uids, uid)
	}
	slices.SortFunc(uids, func(a, b types.UID) int { return uidSeq(a) - uidSeq(b) })
	ambiguous, ambiguousTotal := r.ambiguous()
	var excess int64
	for _, uid := range uids {
		life := r.api.lives[uid]
		acked := counted[uid]
		name := fmt.Sprintf("%s (%s)", r.short(life.namespace, life.name), uid)
		count := life.count - life.base
		switch {
		case acked > count:
			r.fail("promise 2", fmt.Sprintf("%s: %d signals acknowledged as counted, count %d (%d before the run)", name, acked, life.count, life.base))
		case !r.cfg.faults && acked != count:
			r.fail("promise 2", fmt.Sprintf("%s: count %d (%d before the run), %d signals acknowledged, and nothing failed ambiguously", name, life.count, life.base, acked))
		case count-acked > ambiguous[uid]:
			r.fail("promise 2", fmt.Sprintf("%s: count %d (%d before the run), %d signals acknowledged: %d more, but only %d signals were answered with an error after a write that may have carried them landed there",
				name, life.count, life.base, acked, count-acked, ambiguous[uid]))
		}
		excess += count - acked
	}
	if excess > ambiguousTotal || excess > failed {
		r.fail("promise 2", fmt.Sprintf("%d counts more than acknowledged signals, but only %d signals failed, %d of them ambiguously", excess, failed, ambiguousTotal))
	}
	for _, k := range sortedUIDKeys(keyCounted) {
		if keyCounted[k] > 1 {
			r.fail("promise 2", fmt.Sprintf("key %s acknowledged as counted %d times on %s", k.key, keyCounted[k], k.uid))
		}
	}
	for _, k := range sortedUIDKeys(keyAgain) {
		if keyCounted[k] == 0 && keyFailed[k.key] == 0 {
			r.fail("promise 2", fmt.Sprintf("key %s answered AlreadyCounted on %s, where no delivery of it was counted", k.key, k.uid))
		}
	}
}

// ambiguous returns, per RR incarnation, how many firing signals were
// answered with an error although a status update that may have carried
// them raised its count, and how many such signals there were in all. A
// write may have carried a signal if it was made by the signal's replica
// (incarnation), on an RR of its fingerprint, after the signal arrived and
// before it was answered, or at any time after if its caller gave up (the
// counter goes on with the write). Only these signals can be counted
// without being acknowledged (docs/dedup.md, "A client that gives up").
func (r *simRun) ambiguous() (map[types.UID]int64, int64) {
	per := map[types.UID]int64{}
	var total int64
	for _, s := range r.submits {
		if s.sig.dryRun || s.sig.resolved || s.err == nil {
			continue
		}
		end := s.answered
		if errors.Is(s.err, context.DeadlineExceeded) || errors.Is(s.err, context.Canceled) {
			end = math.MaxInt
		}
		on := map[types.UID]bool{}
		for _, c := range r.landed {
			if c.node != s.node || c.id <= s.sent || c.id > end || c.namespace != s.sig.namespace {
				continue
			}
			if fp := r.api.lives[c.landed].fp; fp == s.sig.fingerprint || (s.sig.legacy != "" && fp == s.sig.legacy) {
				on[c.landed] = true
			}
		}
		for uid := range on {
			per[uid]++
		}
		if len(on) > 0 {
			total++
		}
	}
	return per, total
}

func sortedUIDKeys[V any](m map[uidKey]V) []uidKey {
	keys := make([]uidKey, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b uidKey) int {
		if c := uidSeq(a.uid) - uidSeq(b.uid); c != 0 {
			return c
		}
		return strings.Compare(a.key, b.key)
	})
	return keys
}

func (r *simRun) traceHash() uint64 {
	h := fnv.New64a()
	for _, line := range r.trace {
		h.Write([]byte(line))
		h.Write([]byte{'\n'})
	}
	return h.Sum64()
}

// simulationProcs runs the simulation on one P, where the order in which
// runnable goroutines run depends only on the program, and without
// garbage collection during a run (runSimulation collects between runs),
// whose assists would park goroutines at moments set by real time.
func simulationProcs(t *testing.T) {
	prevProcs := runtime.GOMAXPROCS(1)
	prevGC := debug.SetGCPercent(-1)
	t.Cleanup(func() {
		runtime.GOMAXPROCS(prevProcs)
		debug.SetGCPercent(prevGC)
	})
}

// minimizeSimulation shrinks the steps of a failing run to a shorter list
// that fails the same way, by deleting ever smaller chunks of steps.
func minimizeSimulation(t *testing.T, failing *simRun, budget time.Duration) *simRun {
	deadline := time.Now().Add(budget)
	kind := failing.failure.kind
	best := failing
	for chunk := len(best.executed) / 2; chunk >= 1 && time.Now().Before(deadline); chunk /= 2 {
		removed := false
		for i := len(best.executed) - chunk; i >= 0 && time.Now().Before(deadline); i -= chunk {
			cand := slices.Concat(best.executed[:i], best.executed[i+chunk:])
			if r := runSimulation(t, failing.seed, len(cand), cand); r.failure != nil && r.failure.kind == kind {
				best, removed = r, true
				i = min(i, len(best.executed))
			}
		}
		if chunk == 1 && removed {
			chunk = 2 // another pass of single steps
		}
	}
	return best
}

// signature sums up what a failing run needed: how many replicas took
// signals or had calls answered, what was deleted, which faults happened.
func (r *simRun) signature() string {
	replicas := map[int]bool{}
	var faults []string
	for _, st := range r.executed {
		switch st.kind {
		case stepSubmit, stepRelease:
			replicas[st.node] = true
		}
		switch {
		case st.kind == stepRelease && st.fault != faultNone:
			faults = append(faults, "ambiguous answers")
		case st.kind == stepSubmit && st.deadline > 0:
			faults = append(faults, "client deadlines")
		case st.kind == stepRestart:
			faults = append(faults, "restarts")
		case st.kind == stepRelist:
			faults = append(faults, "relists")
		}
	}
	deleted := slices.Clone(r.deleted)
	slices.Sort(deleted)
	faults = slices.Compact(slices.Sorted(slices.Values(faults)))
	return fmt.Sprintf("%d replica(s); deleted: %s; faults: %s", len(replicas),
		orNone(slices.Compact(deleted)), orNone(faults))
}

func orNone(s []string) string {
	if len(s) == 0 {
		return "none"
	}
	return strings.Join(s, ", ")
}

func replayCommand(seed uint64, steps int) string {
	cmd := fmt.Sprintf("go test ./pkg/dedup/ -run 'TestSimulation$' -count=1 -v -args -sim.seed=%d", seed)
	if steps != 300 {
		cmd += " -sim.steps=" + strconv.Itoa(steps)
	}
	return cmd
}

func (r *simRun) report() string {
	return fmt.Sprintf("seed %d: %s violated at step %d (%d signals, %d calls): %s", r.seed, r.failure.kind, r.failure.step, len(r.submits), r.calls, r.failure.msg)
}

// TestSimulation runs many seeds (or -sim.seed alone) and fails with a
// replayable trace at the first broken promise.
func TestSimulation(t *testing.T) {
	simulationProcs(t)
	if *simSeed != 0 {
		r := runSimulation(t, *simSeed, *simSteps, nil)
		t.Logf("trace of seed %d (run %d times):\n%s", r.seed, r.attempts, strings.Join(r.trace, "\n"))
		if r.failure != nil {
			t.Error(r.report())
			if *simMinimize {
				m := minimizeSimulation(t, r, time.Minute)
				t.Logf("the same violation in %d steps (%s):\n%s", len(m.executed), m.signature(), strings.Join(m.trace, "\n"))
			}
		}
		return
	}
	begin := time.Now()
	var first *simRun
	var firstAfter time.Duration
	var others []string
	kinds := map[string]int{}
	var failSteps []int
	catalog := map[string][]*simRun{}
	seeds, steps, signals, calls, reruns := 0, 0, 0, 0, 0
	for seed := *simFirst; seed < *simFirst+uint64(*simSeeds); seed++ {
		r := runSimulation(t, seed, *simSteps, nil)
		seeds, steps, signals, calls, reruns = seeds+1, steps+r.step, signals+len(r.submits), calls+r.calls, reruns+r.attempts-1
		if r.failure == nil {
			continue
		}
		kinds[r.failure.kind]++
		failSteps = append(failSteps, r.failure.step)
		if first == nil {
			first, firstAfter = r, time.Since(begin)
		} else if len(others) < 20 {
			others = append(others, r.report())
		}
		if *simCatalog {
			m := minimizeSimulation(t, r, 10*time.Second)
			sig := m.failure.kind + " with " + m.signature()
			catalog[sig] = append(catalog[sig], m)
			continue
		}
		if !*simKeepGoing {
			break
		}
	}
	t.Logf("%d seeds, %d steps, %d signals, %d calls in %s (%d runs repeated after a long real-time step); failing seeds: %d %v",
		seeds, steps, signals, calls, time.Since(begin).Round(time.Millisecond), reruns, len(failSteps), kinds)
	if len(failSteps) > 1 {
		slices.Sort(failSteps)
		t.Logf("violations at step: min %d, median %d, 90th percentile %d, max %d",
			failSteps[0], failSteps[len(failSteps)/2], failSteps[len(failSteps)*9/10], failSteps[len(failSteps)-1])
	}
	if first == nil {
		return
	}
	t.Errorf("%s\n(first failure after %d seeds, %s)\nreplay it with:\n  %s", first.report(), first.seed-*simFirst+1, firstAfter.Round(time.Millisecond), replayCommand(first.seed, *simSteps))
	for _, o := range others {
		t.Logf("also %s", o)
	}
	switch {
	case *simCatalog:
		sigs := slices.Sorted(maps.Keys(catalog))
		for _, sig := range sigs {
			runs := catalog[sig]
			shortest := slices.MinFunc(runs, func(a, b *simRun) int { return len(a.executed) - len(b.executed) })
			seedList := make([]string, 0, len(runs))
			for _, m := range runs[:min(len(runs), 12)] {
				seedList = append(seedList, fmt.Sprintf("%d (%d steps)", m.seed, len(m.executed)))
			}
			t.Logf("%d seeds: %s\n  seeds: %s\n  shortest:\n%s", len(runs), sig, strings.Join(seedList, ", "), strings.Join(shortest.trace, "\n"))
		}
	case *simMinimize:
		m := minimizeSimulation(t, first, 15*time.Second)
		t.Logf("the same violation in %d steps (%s):\n%s", len(m.executed), m.signature(), strings.Join(m.trace, "\n"))
	default:
		t.Logf("trace:\n%s", strings.Join(first.trace, "\n"))
	}
}

// TestSimulationDeterminism runs seeds twice, and once more from the
// recorded steps: every trace must be the same, line for line.
func TestSimulationDeterminism(t *testing.T) {
	if raceDetector {
		t.Skip("the race detector runs goroutines in a random order on purpose")
	}
	simulationProcs(t)
	for seed := uint64(1); seed <= 6; seed++ {
		a := runSimulation(t, seed, *simSteps, nil)
		b := runSimulation(t, seed, *simSteps, nil)
		c := runSimulation(t, seed, len(a.executed), a.executed)
		for _, other := range []*simRun{b, c} {
			if a.traceHash() == other.traceHash() {
				continue
			}
			for i := range min(len(a.trace), len(other.trace)) {
				if a.trace[i] != other.trace[i] {
					t.Errorf("seed %d: traces differ at line %d:\n  %s\n  %s", seed, i, a.trace[i], other.trace[i])
					break
				}
			}
			if len(a.trace) != len(other.trace) {
				t.Errorf("seed %d: traces have %d and %d lines", seed, len(a.trace), len(other.trace))
			}
		}
	}
}

// TestSimulationCatchesLostUpdates shows that the count check can fail: over
// an API server that ignores resourceVersion on status updates, replicas
// counting on one RemediationRequest overwrite each other's counts, and the
// simulation must report it as a broken promise 2 within a few seeds.
func TestSimulationCatchesLostUpdates(t *testing.T) {
	simulationProcs(t)
	broken := func(r *simRun) {
		r.api.lostUpdates = true
		r.cfg.keep = true
		r.cfg.replicas = 3
	}
	for seed := uint64(1); seed <= 50; seed++ {
		r := runSimulation(t, seed, *simSteps, nil, broken)
		if r.failure == nil {
			continue
		}
		if r.failure.kind != "promise 2" {
			t.Errorf("%s; want promise 2 broken", r.report())
		}
		t.Logf("found: %s", r.report())
		return
	}
	t.Error("50 seeds over an API server that loses updates, and no broken count was found")
}

// TestSimulationCatchesDeletedActive shows that the delete check can fail:
// over an API server that ignores the UID precondition of deletes, an
// engine that replaces a finished RemediationRequest another replica has
// replaced already deletes the active one there, and the simulation must
// report it within a few seeds.
func TestSimulationCatchesDeletedActive(t *testing.T) {
	simulationProcs(t)
	broken := func(r *simRun) {
		r.api.uidBlindDeletes = true
		r.cfg.replicas = 3
	}
	for seed := uint64(1); seed <= 50; seed++ {
		r := runSimulation(t, seed, *simSteps, nil, broken)
		if r.failure == nil {
			continue
		}
		if r.failure.kind != "delete" {
			t.Errorf("%s; want an active RemediationRequest deleted", r.report())
		}
		t.Logf("found: %s", r.report())
		return
	}
	t.Error("50 seeds over an API server that ignores the UID of deletes, and no deleted active RemediationRequest was found")
}

// TestSimulationModel pins the modelled API server's answers.
func TestSimulationModel(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		fp := simFingerprint("A")
		spec := remediationv1alpha1.RemediationRequestSpec{SignalFingerprint: fp, SignalName: "x", SignalSource: "x"}
		newRR := func(name string) *rr {
			return &rr{ObjectMeta: metav1.ObjectMeta{Namespace: "ns", Name: name}, Spec: spec,
				Status: remediationv1alpha1.RemediationRequestStatus{OverallPhase: remediationv1alpha1.PhaseCompleted}}
		}
		a := newSimAPI(false)
		created, err := a.create(newRR("rr-a"), false)
		if err != nil || created.Status.OverallPhase != "" || created.UID != "u1" || created.ResourceVersion != "1" {
			t.Fatalf("create: %v %v; want status dropped, uid u1, rv 1", describeRR(created), err)
		}
		if _, err := a.create(newRR("rr-a"), false); !apierrors.IsAlreadyExists(err) {
			t.Errorf("second create: %v, want AlreadyExists", err)
		}
		if _, err := newSimAPI(true).create(newRR("rr-a"), false); !apierrors.IsInvalid(err) {
			t.Errorf("create with the name rule: %v, want Invalid", err)
		}
		if _, err := newSimAPI(true).create(newRR("rr-"+fp[:60]), false); err != nil {
			t.Errorf("create with the name rule and the right name: %v", err)
		}

		count := func(o *rr, n int64) *rr {
			o = o.DeepCopy()
			o.Status.Deduplication = &remediationv1alpha1.DeduplicationStatus{OccurrenceCount: n}
			return o
		}
		updated, err := a.updateStatus(count(created, 2))
		if err != nil || updated.ResourceVersion != "2" {
			t.Fatalf("update: %v %v", describeRR(updated), err)
		}
		if same, err := a.updateStatus(updated); err != nil || same.ResourceVersion != "2" || len(a.events) != 2 {
			t.Errorf("no-op update: %v %v, %d events; want rv 2 and no event", describeRR(same), err, len(a.events))
		}
		if _, err := a.updateStatus(count(created, 3)); !apierrors.IsConflict(err) {
			t.Errorf("update from a stale resourceVersion: %v, want Conflict", err)
		}
		if _, err := a.updateStatus(count(updated, 1)); !apierrors.IsInvalid(err) {
			t.Errorf("decreasing count: %v, want Invalid", err)
		}
		done := updated.DeepCopy()
		done.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
		done, err = a.updateStatus(done)
		if err != nil {
			t.Fatal(err)
		}
		undone := done.DeepCopy()
		undone.Status = remediationv1alpha1.RemediationRequestStatus{Deduplication: done.Status.Deduplication}
		if _, err := a.updateStatus(undone); !apierrors.IsInvalid(err) {
			t.Errorf("terminal phase dropped: %v, want Invalid", err)
		}
		otherUID := types.UID("u9")
		if _, err := a.delete("ns", "rr-a", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &otherUID}}); !apierrors.IsConflict(err) {
			t.Errorf("delete with another UID: %v, want Conflict", err)
		}
		staleRV := "1"
		if _, err := a.delete("ns", "rr-a", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{ResourceVersion: &staleRV}}); !apierrors.IsConflict(err) {
			t.Errorf("delete with a stale resourceVersion: %v, want Conflict", err)
		}
		if _, err := a.delete("ns", "rr-a", metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &done.UID}}); err != nil {
			t.Errorf("delete: %v", err)
		}
		if _, err := a.updateStatus(done); !apierrors.IsNotFound(err) {
			t.Errorf("update after delete: %v, want NotFound", err)
		}
		if last := a.events[len(a.events)-1]; last.typ != watch.Deleted || last.obj.ResourceVersion != "4" || !a.lives["u1"].deleted || a.lives["u1"].count != 2 {
			t.Errorf("delete event %s rv %s, life %+v", last.typ, last.obj.ResourceVersion, *a.lives["u1"])
		}

		// Two active RRs of one fingerprint are what check reports.
		b := newSimAPI(false)
		for _, name := range []string{"rr-x", "rr-y"} {
			o := newRR(name)
			if _, err := b.create(o, false); err != nil {
				t.Fatal(err)
			}
		}
		if got := b.activeByFingerprint(); len(got) != 1 || len(got["ns/"+fp]) != 2 {
			t.Errorf("activeByFingerprint = %v, want both", got)
		}
	})
}
