package bench

import (
	"math"
	"slices"
	"time"
)

// Latency summarizes the latencies of one row, in milliseconds.
type Latency struct {
	P50 float64 `json:"p50"`
	P95 float64 `json:"p95"`
	P99 float64 `json:"p99"`
	Max float64 `json:"max"`
}

// summarize returns the nearest-rank percentiles of latencies. It sorts
// latencies in place.
func summarize(latencies []time.Duration) Latency {
	if len(latencies) == 0 {
		return Latency{}
	}
	slices.Sort(latencies)
	return Latency{
		P50: milliseconds(percentile(latencies, 50)),
		P95: milliseconds(percentile(latencies, 95)),
		P99: milliseconds(percentile(latencies, 99)),
		Max: milliseconds(latencies[len(latencies)-1]),
	}
}

// percentile returns the p-th percentile (0 < p <= 100) of sorted by the
// nearest-rank method: the smallest value with at least p% of the values at
// or below it. Every reported value is one that was measured.
func percentile(sorted []time.Duration, p float64) time.Duration {
	rank := int(math.Ceil(p / 100 * float64(len(sorted))))
	return sorted[min(max(rank, 1), len(sorted))-1]
}

func milliseconds(d time.Duration) float64 {
	return float64(d) / float64(time.Millisecond)
}
