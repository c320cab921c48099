package bench

import (
	"math"
	"reflect"
	"strings"
	"testing"
)

func TestEvaluateTargets(t *testing.T) {
	rows := []Row{
		{Scenario: "storm", Contender: LimitAggregation, Throughput: 2000},
		{Scenario: "storm", Contender: Baseline, Throughput: 100},
		{
			Scenario: "storm", Contender: SignalAPIServer, Requests: 1001, OK: 1001, Throughput: 1800,
			LatencyMS:   Latency{P50: 40, P99: 100},
			APIRequests: VerbCounts{"LIST": 0, "GET": 10, "CREATE": 1, "UPDATE": 19, "PATCH": 0},
			Dedup:       &Dedup{Expected: 1, RRs: 1, SumCounts: 1001},
		},
		{
			Scenario: "storm", Contender: SignalAPIServerX2, Requests: 1001, OK: 1001, Throughput: 1530,
			APIRequests: VerbCounts{"CREATE": 2, "UPDATE": 98},
			Dedup:       &Dedup{Expected: 1, RRs: 1, SumCounts: 1001},
		},
		{Scenario: "keyed", Contender: SignalAPIServer, OK: 100, Dedup: &Dedup{Expected: 1, RRs: 1, SumCounts: 1124, Prefilled: 1024}},
		{Scenario: "spread", Contender: LimitStatusUpdate, Throughput: 400},
		{Scenario: "spread", Contender: SignalAPIServer, Throughput: 380, Dedup: &Dedup{Expected: 100, RRs: 100}},
		{Scenario: "fresh", Contender: SignalAPIServer, Throughput: 150, Dedup: &Dedup{Expected: 1000, RRs: 1000}},
	}
	want := []Target{
		{"storm", "throughput vs baseline", ">= 10x", 18, "18.0x", true},
		{"storm", "throughput vs limit-aggregation", ">= 85%", 0.9, "90%", true},
		{"storm", "writes (CREATE+UPDATE+PATCH) per duplicate", "<= 0.05", 0.02, "0.020", true},
		{"storm", "reads (LIST+GET) per duplicate", "== 0", 0.01, "0.010", false},
		{"storm", "p99/p50", "<= 3", 2.5, "2.50", true},
		{"storm", "RemediationRequests", "== 1", 1, "1", true},
		{"storm", "lost counts (2xx - sum of counts)", "== 0", 0, "0", true},
		{"storm", "signal-apiserver-x2 throughput vs 1 replica", ">= 90%", 0.85, "85%", false},
		{"storm", "signal-apiserver-x2 writes (CREATE+UPDATE+PATCH) per duplicate", "<= 0.1", 0.1, "0.100", true},
		{"storm", "signal-apiserver-x2 RemediationRequests", "== 1", 1, "1", true},
		{"storm", "signal-apiserver-x2 lost counts (2xx - sum of counts)", "== 0", 0, "0", true},
		{"keyed", "RemediationRequests", "== 1", 1, "1", true},
		{"keyed", "lost counts (2xx - sum of counts)", "== 0", 0, "0", true},
		{"spread", "throughput vs limit-status-update", ">= 90%", 0.95, "95%", true},
		{"spread", "RemediationRequests", "== 100", 100, "100", true},
		{"spread", "lost counts (2xx - sum of counts)", "== 0", 0, "0", true},
		{"fresh", "throughput vs the bound of its writes", ">= 90%", 0.75, "75%", false},
		{"fresh", "RemediationRequests", "== 1000", 1000, "1000", true},
		{"fresh", "lost counts (2xx - sum of counts)", "== 0", 0, "0", true},
	}
	got := evaluateTargets(rows, &Bound{Throughput: 200})
	if len(got) != len(want) {
		t.Fatalf("evaluateTargets: %d targets, want %d:\n got %+v\nwant %+v", len(got), len(want), got, want)
	}
	for i := range want {
		g, w := got[i], want[i]
		if g.Scenario != w.Scenario || g.Name != w.Name || g.Goal != w.Goal || g.Measured != w.Measured || g.Pass != w.Pass || math.Abs(g.Value-w.Value) > 1e-9 {
			t.Errorf("target %d:\n got %+v\nwant %+v", i, g, w)
		}
	}
}

func TestFreshBound(t *testing.T) {
	rows := []Row{
		{Scenario: "fresh", Contender: LimitCreate, Throughput: 400},
		{Scenario: "fresh", Contender: LimitStatusUpdate, Throughput: 600},
		{Scenario: "fresh", Contender: SignalAPIServer, PerSignal: VerbCounts{"CREATE": 1, "UPDATE": 1}},
	}
	// 1/400 + 1/600 seconds per new RR: 240 per second.
	got := freshBound(rows)
	want := &Bound{CreatesPerNewRR: 1, StatusUpdatesPerNewRR: 1, CreateRate: 400, StatusUpdateRate: 600, Throughput: 240}
	if got == nil || math.Abs(got.Throughput-want.Throughput) > 1e-9 {
		t.Fatalf("freshBound = %+v, want %+v", got, want)
	}
	got.Throughput = want.Throughput
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("freshBound = %+v, want %+v", got, want)
	}
	if freshBound(rows[1:]) != nil {
		t.Fatal("a bound without limit-create")
	}
}

func TestSortRows(t *testing.T) {
	rows := []Row{
		{Scenario: "fresh", Contender: SignalAPIServer},
		{Scenario: "storm", Contender: SignalAPIServerX2},
		{Scenario: "keyed", Contender: SignalAPIServer},
		{Scenario: "storm", Contender: SignalAPIServer},
		{Scenario: "storm", Contender: LimitAggregation},
	}
	sortRows(rows)
	var got []string
	for _, r := range rows {
		got = append(got, r.Scenario+"/"+r.Contender)
	}
	want := []string{"storm/limit-aggregation", "storm/signal-apiserver", "storm/signal-apiserver-x2", "keyed/signal-apiserver", "fresh/signal-apiserver"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("sorted %v, want %v", got, want)
	}
}

func TestRunsIn(t *testing.T) {
	var got []string
	for _, s := range Scenarios {
		for _, c := range Contenders {
			if runsIn(c, s) {
				got = append(got, s.Name+"/"+c)
			}
		}
	}
	want := []string{
		"storm/limit-aggregation", "storm/limit-create", "storm/baseline", "storm/signal-apiserver", "storm/signal-apiserver-x2",
		"keyed/signal-apiserver",
		"spread/limit-aggregation", "spread/limit-create", "spread/limit-status-update", "spread/baseline", "spread/signal-apiserver",
		"fresh/limit-aggregation", "fresh/limit-create", "fresh/limit-status-update", "fresh/baseline", "fresh/signal-apiserver",
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("rows %v, want %v", got, want)
	}
}

func TestCheckRow(t *testing.T) {
	good := Row{Scenario: "spread", Contender: SignalAPIServer, Requests: 2000, OK: 2000, Dedup: &Dedup{Expected: 100, RRs: 100, SumCounts: 2000}}
	if got := checkRow(good); got != nil {
		t.Errorf("checkRow(correct row) = %q, want nothing", got)
	}
	bad := Row{Scenario: "spread", Contender: SignalAPIServer, Requests: 2000, OK: 1999, Errors: 1, Dedup: &Dedup{Expected: 100, RRs: 101, SumCounts: 2000}}
	want := []string{
		"spread/signal-apiserver: 1 of 2000 requests failed",
		"spread/signal-apiserver: 101 RemediationRequests, want 100",
		"spread/signal-apiserver: occurrenceCounts sum to 2000, want 1999 (the 2xx answers)",
	}
	if got := checkRow(bad); !reflect.DeepEqual(got, want) {
		t.Errorf("checkRow(wrong row) = %q, want %q", got, want)
	}
	bad.Contender = Baseline
	if got := checkRow(bad); got != nil {
		t.Errorf("checkRow(baseline) = %q, want nothing: the baseline is reported, never failed", got)
	}

	keyed := Row{Scenario: "keyed", Contender: SignalAPIServer, Requests: 1000, OK: 1000, Dedup: &Dedup{Expected: 1, RRs: 1, SumCounts: 2000, Prefilled: 1024}}
	want = []string{"keyed/signal-apiserver: occurrenceCounts sum to 2000, want 2024 (the 2xx answers)"}
	if got := checkRow(keyed); !reflect.DeepEqual(got, want) {
		t.Errorf("checkRow(keyed) = %q, want %q", got, want)
	}
	oneReplica := Row{Scenario: "storm", Contender: SignalAPIServerX2, Requests: 10, OK: 10, ReplicaSignals: []float64{10, 0}, Dedup: &Dedup{Expected: 1, RRs: 1, SumCounts: 10}}
	want = []string{"storm/signal-apiserver-x2: a replica answered no signal: [10 0]"}
	if got := checkRow(oneReplica); !reflect.DeepEqual(got, want) {
		t.Errorf("checkRow(one replica of two) = %q, want %q", got, want)
	}
}

// TestPrintNotesStormStatus: the size of the storm's status after the row
// is printed, whatever other rows ran.
func TestPrintNotesStormStatus(t *testing.T) {
	var out strings.Builder
	printNotes(&out, &Results{Rows: []Row{{Scenario: "storm", Contender: SignalAPIServer, Dedup: &Dedup{StatusBytes: 1234}}}})
	want := "storm: the RemediationRequest's status is 1234 bytes of JSON after the row (deduplication, signalSummary, conditions)\n"
	if !strings.Contains(out.String(), want) {
		t.Fatalf("notes %q, want the line %q", out.String(), want)
	}
}
