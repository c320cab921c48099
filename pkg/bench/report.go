package bench

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"text/tabwriter"
)

// Results is everything one run measured; it is written as JSON.
type Results struct {
	Machine Machine `json:"machine"`
	// Scale is the factor the scenarios were scaled by.
	Scale float64 `json:"scale"`
	// Warmup is how many unmeasured requests preceded each row.
	Warmup int `json:"warmup"`
	// Sender is who sent the signal-apiserver contender's Signals.
	Sender string `json:"sender"`
	Rows   []Row  `json:"rows"`
	// FreshBound is the throughput fresh could reach with the writes a new
	// RemediationRequest costs; nil without the rows it is computed from.
	FreshBound      *Bound   `json:"freshBound,omitempty"`
	Targets         []Target `json:"targets"`
	Failures        []string `json:"failures"`
	Notes           []string `json:"notes"`
	DurationSeconds float64  `json:"durationSeconds"`
}

// Bound is the most signals per second that fresh could take if a new
// RemediationRequest cost nothing but its writes: CreatesPerNewRR creates at
// the rate of limit-create and StatusUpdatesPerNewRR status updates at the
// rate of limit-status-update, both measured in fresh, one after the other
// on the same machine.
type Bound struct {
	CreatesPerNewRR       float64 `json:"createsPerNewRR"`
	StatusUpdatesPerNewRR float64 `json:"statusUpdatesPerNewRR"`
	CreateRate            float64 `json:"createRate"`
	StatusUpdateRate      float64 `json:"statusUpdateRate"`
	Throughput            float64 `json:"throughput"`
}

// Row is one contender in one scenario.
type Row struct {
	Scenario     string `json:"scenario"`
	Contender    string `json:"contender"`
	Namespace    string `json:"namespace"`
	Requests     int    `json:"requests"`
	Fingerprints int    `json:"fingerprints"`
	Concurrency  int    `json:"concurrency"`
	// OK counts 2xx answers, Errors the rest.
	OK           int      `json:"ok"`
	Errors       int      `json:"errors"`
	ErrorSamples []string `json:"errorSamples,omitempty"`
	// AlreadyExists counts baseline creates that lost to a concurrent
	// create and were answered 2xx without counting the signal.
	AlreadyExists int `json:"alreadyExists,omitempty"`
	// Swallowed counts baseline status writes that failed after their
	// retries and were answered 2xx anyway.
	Swallowed        int      `json:"swallowed,omitempty"`
	SwallowedSamples []string `json:"swallowedSamples,omitempty"`
	DurationSeconds  float64  `json:"durationSeconds"`
	// Throughput is requests per second of wall time.
	Throughput float64 `json:"throughput"`
	LatencyMS  Latency `json:"latencyMs"`
	// APIRequests are kube-apiserver's requests for remediationrequests
	// (group remediation.io) during the row, by verb, from its own
	// apiserver_request_total; PerSignal divides them by Requests.
	APIRequests VerbCounts `json:"apiRequests"`
	PerSignal   VerbCounts `json:"apiRequestsPerSignal"`
	// ConflictsPerSignal is kube-apiserver's UPDATEs of remediationrequests
	// answered 409 Conflict (a stale resourceVersion) per signal.
	ConflictsPerSignal float64 `json:"statusConflictsPerSignal"`
	// ReplicaSignals is how many signals each signal-apiserver replica
	// answered during the row.
	ReplicaSignals []float64 `json:"replicaSignals,omitempty"`
	// APILatencyMS is kube-apiserver's mean time per remediationrequests
	// request, by verb, in milliseconds (apiserver_request_duration_seconds).
	APILatencyMS VerbCounts `json:"apiLatencyMs"`
	// CPU is the CPU time each process used during the row, in seconds
	// (bench: this program, the clients). CPUBusy is their total over the
	// wall time of all CPUs: 1 means the machine was saturated.
	CPU     CPUSeconds `json:"cpuSeconds"`
	CPUBusy float64    `json:"cpuBusy"`
	// OtherCPU is the share of all CPUs that other processes on the machine
	// used during the row, and Steal the share the hypervisor gave to other
	// machines: both should be near 0 for numbers worth comparing.
	OtherCPU float64 `json:"otherCpu"`
	Steal    float64 `json:"steal"`
	// Dedup is nil for the limit rows.
	Dedup *Dedup `json:"dedup,omitempty"`
}

// Dedup is what the RemediationRequests of a row's namespace say after it.
type Dedup struct {
	// Expected is the number of fingerprints: one RR each.
	Expected int `json:"expectedRRs"`
	RRs      int `json:"rrs"`
	// ExtraRRs is RRs - Expected.
	ExtraRRs int `json:"extraRRs"`
	// SumCounts is the sum of status.deduplication.occurrenceCount.
	SumCounts int64 `json:"sumOccurrenceCount"`
	// Prefilled is the signals counted before the row (Scenario.Prefill).
	Prefilled int64 `json:"prefilled,omitempty"`
	// LostCounts is OK + Prefilled - SumCounts; negative means counted
	// twice.
	LostCounts int64 `json:"lostCounts"`
	// StatusBytes is the mean size of a RemediationRequest's status in
	// JSON after the row: what every status write carries.
	StatusBytes float64 `json:"statusBytes"`
}

// Target is one goal of the issue and how the run fared.
type Target struct {
	Scenario string  `json:"scenario"`
	Name     string  `json:"name"`
	Goal     string  `json:"goal"`
	Value    float64 `json:"value"`
	Measured string  `json:"measured"`
	Pass     bool    `json:"pass"`
}

// checkRow returns why a signal-apiserver row is wrong, if it is. Other
// contenders are reported as they come.
func checkRow(r Row) []string {
	if !isSignalAPIServer(r.Contender) {
		return nil
	}
	var failures []string
	prefix := r.Scenario + "/" + r.Contender + ": "
	if r.Errors > 0 {
		failures = append(failures, fmt.Sprintf("%s%d of %d requests failed", prefix, r.Errors, r.Requests))
	}
	if d := r.Dedup; d != nil {
		if d.RRs != d.Expected {
			failures = append(failures, fmt.Sprintf("%s%d RemediationRequests, want %d", prefix, d.RRs, d.Expected))
		}
		if want := int64(r.OK) + d.Prefilled; d.SumCounts != want {
			failures = append(failures, fmt.Sprintf("%soccurrenceCounts sum to %d, want %d (the 2xx answers)", prefix, d.SumCounts, want))
		}
	}
	if r.Contender == SignalAPIServerX2 && slices.Contains(r.ReplicaSignals, 0) {
		failures = append(failures, fmt.Sprintf("%sa replica answered no signal: %v", prefix, r.ReplicaSignals))
	}
	return failures
}

// sortRows orders rows by scenario, then by contender, as Scenarios and
// Contenders list them.
func sortRows(rows []Row) {
	scenario := func(name string) int {
		return slices.IndexFunc(Scenarios, func(s Scenario) bool { return s.Name == name })
	}
	slices.SortStableFunc(rows, func(a, b Row) int {
		if c := cmp.Compare(scenario(a.Scenario), scenario(b.Scenario)); c != 0 {
			return c
		}
		return cmp.Compare(slices.Index(Contenders, a.Contender), slices.Index(Contenders, b.Contender))
	})
}

func findRow(rows []Row, scenario, contender string) *Row {
	for i := range rows {
		if rows[i].Scenario == scenario && rows[i].Contender == contender {
			return &rows[i]
		}
	}
	return nil
}

// freshBound computes the Bound of fresh from its rows.
func freshBound(rows []Row) *Bound {
	sa, create, update := findRow(rows, "fresh", SignalAPIServer), findRow(rows, "fresh", LimitCreate), findRow(rows, "fresh", LimitStatusUpdate)
	if sa == nil || create == nil || update == nil || create.Throughput == 0 || update.Throughput == 0 {
		return nil
	}
	b := &Bound{
		CreatesPerNewRR:       sa.PerSignal["CREATE"],
		StatusUpdatesPerNewRR: sa.PerSignal["UPDATE"],
		CreateRate:            create.Throughput,
		StatusUpdateRate:      update.Throughput,
	}
	if seconds := b.CreatesPerNewRR/b.CreateRate + b.StatusUpdatesPerNewRR/b.StatusUpdateRate; seconds > 0 {
		b.Throughput = 1 / seconds
	}
	return b
}

// evaluateTargets computes the ratios the issue sets goals for, from the
// rows there are.
func evaluateTargets(rows []Row, bound *Bound) []Target {
	var targets []Target
	ratio := func(scenario, name string, value, goal float64) {
		if goal < 1 {
			targets = append(targets, Target{scenario, name, fmt.Sprintf(">= %.0f%%", goal*100), value, fmt.Sprintf("%.0f%%", value*100), value >= goal})
		} else {
			targets = append(targets, Target{scenario, name, fmt.Sprintf(">= %.0fx", goal), value, fmt.Sprintf("%.1fx", value), value >= goal})
		}
	}
	throughputVs := func(sa *Row, contender string, goal float64) {
		if o := findRow(rows, sa.Scenario, contender); o != nil && o.Throughput > 0 {
			ratio(sa.Scenario, "throughput vs "+contender, sa.Throughput/o.Throughput, goal)
		}
	}
	// perDuplicate sets goals for the writes and, unless readsAllowed, the
	// reads per duplicate. Replicas that lose a write to each other read
	// before they write again.
	perDuplicate := func(sa *Row, maxWrites float64, readsAllowed bool) {
		if d := sa.Dedup; d != nil && sa.OK > d.Expected {
			duplicates := float64(sa.OK - d.Expected)
			w := sa.APIRequests.Writes() / duplicates
			targets = append(targets, Target{sa.Scenario, "writes (CREATE+UPDATE+PATCH) per duplicate", fmt.Sprintf("<= %g", maxWrites), w, fmt.Sprintf("%.3f", w), w <= maxWrites})
			if !readsAllowed {
				r := sa.APIRequests.Reads() / duplicates
				targets = append(targets, Target{sa.Scenario, "reads (LIST+GET) per duplicate", "== 0", r, fmt.Sprintf("%.3f", r), r == 0})
			}
		}
	}
	exact := func(sa *Row) {
		if sa.Dedup == nil {
			return
		}
		d := sa.Dedup
		targets = append(targets,
			Target{sa.Scenario, "RemediationRequests", fmt.Sprintf("== %d", d.Expected), float64(d.RRs), fmt.Sprint(d.RRs), d.RRs == d.Expected},
			Target{sa.Scenario, "lost counts (2xx - sum of counts)", "== 0", float64(d.LostCounts), fmt.Sprint(d.LostCounts), d.LostCounts == 0})
	}

	if sa := findRow(rows, "storm", SignalAPIServer); sa != nil {
		throughputVs(sa, Baseline, 10)
		throughputVs(sa, LimitAggregation, 0.85)
		perDuplicate(sa, 0.05, false)
		if sa.LatencyMS.P50 > 0 {
			v := sa.LatencyMS.P99 / sa.LatencyMS.P50
			targets = append(targets, Target{"storm", "p99/p50", "<= 3", v, fmt.Sprintf("%.2f", v), v <= 3})
		}
		exact(sa)
	}
	if x2 := findRow(rows, "storm", SignalAPIServerX2); x2 != nil {
		if one := findRow(rows, "storm", SignalAPIServer); one != nil && one.Throughput > 0 {
			ratio("storm", SignalAPIServerX2+" throughput vs 1 replica", x2.Throughput/one.Throughput, 0.9)
		}
		n := len(targets)
		perDuplicate(x2, 0.1, true)
		exact(x2)
		for i := n; i < len(targets); i++ {
			targets[i].Name = SignalAPIServerX2 + " " + targets[i].Name
		}
	}
	if sa := findRow(rows, "keyed", SignalAPIServer); sa != nil {
		exact(sa)
	}
	if sa := findRow(rows, "spread", SignalAPIServer); sa != nil {
		throughputVs(sa, LimitStatusUpdate, 0.9)
		exact(sa)
	}
	if sa := findRow(rows, "fresh", SignalAPIServer); sa != nil {
		if bound != nil && bound.Throughput > 0 {
			ratio("fresh", "throughput vs the bound of its writes", sa.Throughput/bound.Throughput, 0.9)
		}
		exact(sa)
	}
	return targets
}

// printTable writes the rows as an aligned table.
func printTable(out io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tcontender\treqs\t2xx\terrors\tdur s\treq/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\tLIST/sig\tGET/sig\tCREATE/sig\tUPDATE/sig\tPATCH/sig\t409/sig\tRRs\tsum counts\tlost\textra RRs\tstatus B\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.2f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t",
			r.Scenario, r.Contender, r.Requests, r.OK, r.Errors, r.DurationSeconds, r.Throughput,
			r.LatencyMS.P50, r.LatencyMS.P95, r.LatencyMS.P99, r.LatencyMS.Max)
		for _, verb := range Verbs {
			fmt.Fprintf(tw, "%.3f\t", r.PerSignal[verb])
		}
		fmt.Fprintf(tw, "%.3f\t", r.ConflictsPerSignal)
		if d := r.Dedup; d != nil {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t%.0f\t\n", d.RRs, d.SumCounts, d.LostCounts, d.ExtraRRs, d.StatusBytes)
		} else {
			fmt.Fprint(tw, "-\t-\t-\t-\t-\t\n")
		}
	}
	return tw.Flush()
}

// printTimeTable writes where the time of each row went: CPU time per
// signal by process, and kube-apiserver's mean time per request by verb.
func printTimeTable(out io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprint(tw, "scenario\tcontender\t")
	for _, p := range processes {
		fmt.Fprintf(tw, "CPU %s\t", p)
	}
	fmt.Fprint(tw, "CPU total\tCPU busy\tothers\tsteal\t")
	for _, verb := range Verbs {
		fmt.Fprintf(tw, "%s ms\t", verb)
	}
	fmt.Fprintln(tw)
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t", r.Scenario, r.Contender)
		for _, p := range processes {
			fmt.Fprintf(tw, "%.2f\t", r.CPU[p]*1000/float64(r.Requests))
		}
		fmt.Fprintf(tw, "%.2f\t%.0f%%\t%.0f%%\t%.0f%%\t", r.CPU.Total()*1000/float64(r.Requests), r.CPUBusy*100, r.OtherCPU*100, r.Steal*100)
		for _, verb := range Verbs {
			if ms, ok := r.APILatencyMS[verb]; ok {
				fmt.Fprintf(tw, "%.1f\t", ms)
			} else {
				fmt.Fprint(tw, "-\t")
			}
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// printNotes writes what the table has no room for: the bound of fresh,
// keyed next to storm, the replicas' shares, errors and swallowed errors,
// with samples.
func printNotes(out io.Writer, results *Results) {
	rows := results.Rows
	if b := results.FreshBound; b != nil {
		fmt.Fprintf(out, "fresh: a new RR costs %.3f creates and %.3f status updates; at limit-create's %.0f/s and limit-status-update's %.0f/s that bounds fresh at %.0f/s\n",
			b.CreatesPerNewRR, b.StatusUpdatesPerNewRR, b.CreateRate, b.StatusUpdateRate, b.Throughput)
	}
	storm, keyed := findRow(rows, "storm", SignalAPIServer), findRow(rows, "keyed", SignalAPIServer)
	if storm != nil && storm.Dedup != nil {
		fmt.Fprintf(out, "storm: the RemediationRequest's status is %.0f bytes of JSON after the row (deduplication, signalSummary, conditions)\n", storm.Dedup.StatusBytes)
	}
	if storm != nil && keyed != nil && storm.Throughput > 0 && storm.Dedup != nil && keyed.Dedup != nil {
		fmt.Fprintf(out, "keyed: %.0f/s with a %.0f-byte status (key window full), %.0f%% of storm's %.0f/s with a %.0f-byte status\n",
			keyed.Throughput, keyed.Dedup.StatusBytes, 100*keyed.Throughput/storm.Throughput, storm.Throughput, storm.Dedup.StatusBytes)
	}
	for _, r := range rows {
		if len(r.ReplicaSignals) > 1 {
			fmt.Fprintf(out, "%s/%s: signals answered per replica %v\n", r.Scenario, r.Contender, r.ReplicaSignals)
		}
	}
	for _, n := range results.Notes {
		fmt.Fprintln(out, n)
	}
	for _, r := range rows {
		if r.Errors > 0 {
			fmt.Fprintf(out, "%s/%s: %d errors, e.g.: %s\n", r.Scenario, r.Contender, r.Errors, strings.Join(r.ErrorSamples, " | "))
		}
		if r.AlreadyExists > 0 {
			fmt.Fprintf(out, "%s/%s: %d creates got AlreadyExists (a concurrent create won) and were answered 2xx without counting\n",
				r.Scenario, r.Contender, r.AlreadyExists)
		}
		if r.Swallowed > 0 {
			fmt.Fprintf(out, "%s/%s: %d status writes failed after retries, logged and answered 2xx anyway, e.g.: %s\n",
				r.Scenario, r.Contender, r.Swallowed, strings.Join(r.SwallowedSamples, " | "))
		}
	}
}

// printTargets writes each target with its measured value.
func printTargets(out io.Writer, targets []Target) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "scenario\ttarget\tgoal\tmeasured\t")
	for _, t := range targets {
		verdict := "MISS"
		if t.Pass {
			verdict = "PASS"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", t.Scenario, t.Name, t.Goal, t.Measured, verdict)
	}
	return tw.Flush()
}

func writeJSON(path string, r any) error {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return err
	}
	data, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(data, '\n'), 0o644)
}
