package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
	Sender          string   `json:"sender"`
	Rows            []Row    `json:"rows"`
	Targets         []Target `json:"targets"`
	Failures        []string `json:"failures"`
	DurationSeconds float64  `json:"durationSeconds"`
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
	// AlreadyExists counts baseline creates that lost to a create of the
	// same second and were answered 2xx without counting the signal.
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
	// LostCounts is OK - SumCounts; negative means counted twice.
	LostCounts int64 `json:"lostCounts"`
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
	if r.Contender != SignalAPIServer {
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
		if d.SumCounts != int64(r.OK) {
			failures = append(failures, fmt.Sprintf("%soccurrenceCounts sum to %d, want %d (the 2xx answers)", prefix, d.SumCounts, r.OK))
		}
	}
	return failures
}

// evaluateTargets computes the ratios the issue sets goals for, from the
// rows there are.
func evaluateTargets(rows []Row) []Target {
	find := func(scenario, contender string) *Row {
		for i := range rows {
			if rows[i].Scenario == scenario && rows[i].Contender == contender {
				return &rows[i]
			}
		}
		return nil
	}
	var targets []Target
	throughputVs := func(scenario string, sa *Row, other string, goal float64) {
		o := find(scenario, other)
		if o == nil || o.Throughput == 0 {
			return
		}
		v := sa.Throughput / o.Throughput
		if goal < 1 {
			targets = append(targets, Target{scenario, "throughput vs " + other, fmt.Sprintf(">= %.0f%%", goal*100), v, fmt.Sprintf("%.0f%%", v*100), v >= goal})
		} else {
			targets = append(targets, Target{scenario, "throughput vs " + other, fmt.Sprintf(">= %.0fx", goal), v, fmt.Sprintf("%.1fx", v), v >= goal})
		}
	}
	exact := func(scenario string, sa *Row) {
		if sa.Dedup == nil {
			return
		}
		d := sa.Dedup
		targets = append(targets,
			Target{scenario, "RemediationRequests", fmt.Sprintf("== %d", d.Expected), float64(d.RRs), fmt.Sprint(d.RRs), d.RRs == d.Expected},
			Target{scenario, "lost counts (2xx - sum of counts)", "== 0", float64(d.LostCounts), fmt.Sprint(d.LostCounts), d.LostCounts == 0})
	}

	if sa := find("storm", SignalAPIServer); sa != nil {
		throughputVs("storm", sa, Baseline, 10)
		throughputVs("storm", sa, LimitAggregation, 0.5)
		if d := sa.Dedup; d != nil && sa.OK > d.Expected {
			duplicates := float64(sa.OK - d.Expected)
			w := sa.APIRequests.Writes() / duplicates
			r := sa.APIRequests.Reads() / duplicates
			targets = append(targets,
				Target{"storm", "writes (CREATE+UPDATE+PATCH) per duplicate", "<= 0.05", w, fmt.Sprintf("%.3f", w), w <= 0.05},
				Target{"storm", "reads (LIST+GET) per duplicate", "== 0", r, fmt.Sprintf("%.3f", r), r == 0})
		}
		if sa.LatencyMS.P50 > 0 {
			v := sa.LatencyMS.P99 / sa.LatencyMS.P50
			targets = append(targets, Target{"storm", "p99/p50", "<= 3", v, fmt.Sprintf("%.2f", v), v <= 3})
		}
		exact("storm", sa)
	}
	if sa := find("spread", SignalAPIServer); sa != nil {
		throughputVs("spread", sa, Baseline, 5)
		exact("spread", sa)
	}
	if sa := find("fresh", SignalAPIServer); sa != nil {
		throughputVs("fresh", sa, LimitCreate, 0.8)
	}
	return targets
}

// printTable writes the rows as an aligned table.
func printTable(out io.Writer, rows []Row) error {
	tw := tabwriter.NewWriter(out, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tcontender\treqs\t2xx\terrors\tdur s\treq/s\tp50 ms\tp95 ms\tp99 ms\tmax ms\tLIST/sig\tGET/sig\tCREATE/sig\tUPDATE/sig\tPATCH/sig\tRRs\tsum counts\tlost\textra RRs\t")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.2f\t%.0f\t%.1f\t%.1f\t%.1f\t%.1f\t",
			r.Scenario, r.Contender, r.Requests, r.OK, r.Errors, r.DurationSeconds, r.Throughput,
			r.LatencyMS.P50, r.LatencyMS.P95, r.LatencyMS.P99, r.LatencyMS.Max)
		for _, verb := range Verbs {
			fmt.Fprintf(tw, "%.3f\t", r.PerSignal[verb])
		}
		if d := r.Dedup; d != nil {
			fmt.Fprintf(tw, "%d\t%d\t%d\t%d\t\n", d.RRs, d.SumCounts, d.LostCounts, d.ExtraRRs)
		} else {
			fmt.Fprint(tw, "-\t-\t-\t-\t\n")
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

// printNotes writes what the table has no room for: errors and swallowed
// errors, with samples.
func printNotes(out io.Writer, rows []Row) {
	for _, r := range rows {
		if r.Errors > 0 {
			fmt.Fprintf(out, "%s/%s: %d errors, e.g.: %s\n", r.Scenario, r.Contender, r.Errors, strings.Join(r.ErrorSamples, " | "))
		}
		if r.AlreadyExists > 0 {
			fmt.Fprintf(out, "%s/%s: %d creates got AlreadyExists (same second) and were answered 2xx without counting\n",
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
