package dedup_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"
)

// The mutants: deliberate bugs in the engine, each of which the simulation
// must catch within CI's seed budget (docs/reliability.md, "Mutation
// testing"). Each is a list of exact-text edits of the real source; an edit
// whose text is no longer there fails TestMutants, so a change of the
// engine cannot quietly turn a mutant into the real code.

// simEdit replaces old, which must occur exactly once in file, with new.
type simEdit struct {
	file, old, new string
}

// simMutant is one deliberate bug.
type simMutant struct {
	name  string
	edits []simEdit
}

var simMutants = []simMutant{
	{
		// A write that may have landed is treated as a lost race: the
		// batch is read and applied again, and answered 2xx.
		name: "ReapplyLandedWrite",
		edits: []simEdit{{file: "counter.go",
			old: `			return fmt.Errorf("updating the status of RemediationRequest %s/%s: %w", c.namespace, c.name, upstream(err))`,
			new: `			obj, readReason = nil, "conflict"
			return apierrors.NewConflict(remediationv1alpha1.Resource("remediationrequests"), c.name, err)`,
		}},
	},
	{
		// AlreadyExists: take the name over, whatever holds it.
		name: "DeleteAndCreateOnAlreadyExists",
		edits: []simEdit{{file: "engine.go",
			old: `	case apierrors.IsAlreadyExists(err):
		// Someone else opened it first: count on it. Its state is unknown
		// here; the counter reads it before its first write.
		creates.WithLabelValues("already_exists").Inc()`,
			new: `	case apierrors.IsAlreadyExists(err):
		_ = client.Delete(ctx, name, metav1.DeleteOptions{})
		if created, err := client.Create(ctx, newRemediationRequest(s, finished), metav1.CreateOptions{FieldManager: FieldManager}); err == nil {
			return e.counterOn(s, name, created, false), true, nil
		}
		creates.WithLabelValues("already_exists").Inc()`,
		}},
	},
	{
		// The finished RR is deleted by name only: a newer one that took
		// the name meanwhile goes instead.
		name: "DropDeletePrecondition",
		edits: []simEdit{{file: "engine.go",
			old: `		err := client.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})`,
			new: `		_ = uid
		err := client.Delete(ctx, name, metav1.DeleteOptions{})`,
		}},
	},
	{
		// Status writes without resourceVersion: last writer wins.
		name: "DropWritePrecondition",
		edits: []simEdit{{file: "counter.go",
			old: `			evicted = apply(next, ops)
`,
			new: `			evicted = apply(next, ops)
			next.ResourceVersion = ""
`,
		}},
	},
	{
		// After a conflict the batch's keys are not looked up again in the
		// fresh RR: a key another replica counted meanwhile counts twice.
		name: "SkipKeyCheckAfterConflict",
		edits: []simEdit{
			{file: "counter.go",
				old: "	instanced bool\n}",
				new: "	instanced bool\n	checked   bool\n}",
			},
			{file: "counter.go",
				old: `		o.alreadyCounted = o.keyed && w.touch(o.key)`,
				new: `		if !o.checked {
			o.alreadyCounted = o.keyed && w.touch(o.key)
			o.checked = true
		}`,
			},
		},
	},
	{
		// The batch is acknowledged once its write is sent, not once it
		// is stored.
		name: "AcknowledgeBeforeTheWriteReturns",
		edits: []simEdit{{file: "counter.go",
			old: `		updated, err := client.UpdateStatus(ctx, next, metav1.UpdateOptions{FieldManager: FieldManager})`,
			new: `		go client.UpdateStatus(context.WithoutCancel(ctx), next, metav1.UpdateOptions{FieldManager: FieldManager}) //nolint:errcheck
		updated, err := next, error(nil)`,
		}},
	},
	{
		// An RR whose deletion has begun keeps taking counts, which vanish
		// with it.
		name: "CountOnDepartingRR",
		edits: []simEdit{{file: "counter.go",
			old: `		if obj.Status.OverallPhase.IsTerminal() || obj.DeletionTimestamp != nil {`,
			new: `		if obj.Status.OverallPhase.IsTerminal() {`,
		}},
	},
}

// violationRE finds the simulation's report of a broken promise.
var violationRE = regexp.MustCompile(`seed \d+: [a-z0-9 ]+ violated at step \d+[^\n]*`)

// TestMutants builds the engine with each mutant (go test -overlay, the
// real files untouched) and runs the simulation with CI's budget
// (-sim.seeds, -sim.steps) on it: every mutant must be caught.
func TestMutants(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the simulation once per mutant")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command builds the mutants: %v", err)
	}
	begin, ran := time.Now(), 0
	for _, m := range simMutants {
		t.Run(m.name, func(t *testing.T) {
			ran++
			overlay := writeOverlay(t, m)
			start := time.Now()
			cmd := exec.Command(goBin, "test", "-overlay="+overlay, "-vet=off", "-count=1", "-run=^TestSimulation$", ".",
				"-args", "-sim.minimize=false", "-sim.seeds="+strconv.Itoa(*simSeeds), "-sim.steps="+strconv.Itoa(*simSteps))
			out, err := cmd.CombinedOutput()
			took := time.Since(start).Round(100 * time.Millisecond)
			switch found := violationRE.Find(out); {
			case err == nil:
				t.Errorf("mutant %s survived %d seeds of %d steps (%s)", m.name, *simSeeds, *simSteps, took)
			case found == nil:
				t.Errorf("mutant %s: the simulation failed without reporting a broken promise (%v):\n%s", m.name, err, out)
			default:
				t.Logf("killed in %s: %s", took, found)
			}
		})
	}
	t.Logf("%d mutants in %s", ran, time.Since(begin).Round(100*time.Millisecond))
}

// writeOverlay writes m's files and the overlay that puts them in place of
// the real ones, and returns the overlay's path.
func writeOverlay(t *testing.T, m simMutant) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]string{}
	for _, e := range m.edits {
		src, ok := files[e.file]
		if !ok {
			b, err := os.ReadFile(e.file)
			if err != nil {
				t.Fatal(err)
			}
			src = string(b)
		}
		if n := strings.Count(src, e.old); n != 1 {
			t.Fatalf("mutant %s: the text to replace occurs %d times in %s, not once; update the mutant to the code:\n%s", m.name, n, e.file, e.old)
		}
		files[e.file] = strings.Replace(src, e.old, e.new, 1)
	}
	replace := map[string]string{}
	for file, src := range files {
		original, err := filepath.Abs(file)
		if err != nil {
			t.Fatal(err)
		}
		mutated := filepath.Join(dir, file)
		if err := os.WriteFile(mutated, []byte(src), 0o600); err != nil {
			t.Fatal(err)
		}
		replace[original] = mutated
	}
	b, err := json.Marshal(map[string]any{"Replace": replace})
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "overlay.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}
