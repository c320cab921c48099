package bench

import (
	"reflect"
	"testing"
)

func TestEvaluateTargets(t *testing.T) {
	rows := []Row{
		{Scenario: "storm", Contender: LimitAggregation, Throughput: 2000},
		{Scenario: "storm", Contender: Baseline, Throughput: 100},
		{
			Scenario: "storm", Contender: SignalAPIServer, Requests: 1001, OK: 1001, Throughput: 1500,
			LatencyMS:   Latency{P50: 40, P99: 100},
			APIRequests: VerbCounts{"LIST": 0, "GET": 10, "CREATE": 1, "UPDATE": 19, "PATCH": 0},
			Dedup:       &Dedup{Expected: 1, RRs: 1, SumCounts: 1001},
		},
		{Scenario: "fresh", Contender: LimitCreate, Throughput: 400},
		{Scenario: "fresh", Contender: SignalAPIServer, Throughput: 300, Dedup: &Dedup{Expected: 1000, RRs: 1000}},
	}
	want := []Target{
		{"storm", "throughput vs baseline", ">= 10x", 15, "15.0x", true},
		{"storm", "throughput vs limit-aggregation", ">= 50%", 0.75, "75%", true},
		{"storm", "writes (CREATE+UPDATE+PATCH) per duplicate", "<= 0.05", 0.02, "0.020", true},
		{"storm", "reads (LIST+GET) per duplicate", "== 0", 0.01, "0.010", false},
		{"storm", "p99/p50", "<= 3", 2.5, "2.50", true},
		{"storm", "RemediationRequests", "== 1", 1, "1", true},
		{"storm", "lost counts (2xx - sum of counts)", "== 0", 0, "0", true},
		{"fresh", "throughput vs limit-create", ">= 80%", 0.75, "75%", false},
	}
	if got := evaluateTargets(rows); !reflect.DeepEqual(got, want) {
		t.Errorf("evaluateTargets:\n got %+v\nwant %+v", got, want)
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
}
