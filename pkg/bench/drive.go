package bench

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
)

// maxSamples bounds the distinct error messages kept per row.
const maxSamples = 5

// runStats is what driving one workload measured.
type runStats struct {
	duration  time.Duration
	latencies []time.Duration
	ok        int
	errors    int
	// alreadyExists counts creates that lost to a concurrent one and were
	// answered 2xx without counting (baseline only).
	alreadyExists int
	// swallowed counts other errors answered 2xx (baseline only: status
	// writes that failed after their retries).
	swallowed int
	// errorSamples and swallowedSamples are distinct messages, at most
	// maxSamples of each.
	errorSamples     []string
	swallowedSamples []string
}

// drive sends the w.Signals requests of w through c from w.Concurrency
// clients, each sending its next request as soon as its last one was
// answered, and times every request.
func drive(ctx context.Context, w *workload, c contender) runStats {
	results := make([]result, w.Signals)
	latencies := make([]time.Duration, w.Signals)
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range w.Concurrency {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= w.Signals {
					return
				}
				began := time.Now()
				results[i] = c.send(ctx, w, i)
				latencies[i] = time.Since(began)
			}
		})
	}
	wg.Wait()
	stats := runStats{duration: time.Since(start), latencies: latencies}
	for _, r := range results {
		if r.err != nil {
			stats.errors++
			stats.errorSamples = addSample(stats.errorSamples, r.err.Error())
			continue
		}
		stats.ok++
		switch {
		case r.swallowed == nil:
		case apierrors.IsAlreadyExists(r.swallowed):
			stats.alreadyExists++
		default:
			stats.swallowed++
			stats.swallowedSamples = addSample(stats.swallowedSamples, r.swallowed.Error())
		}
	}
	return stats
}

func addSample(samples []string, msg string) []string {
	if len(samples) >= maxSamples {
		return samples
	}
	for _, s := range samples {
		if s == msg {
			return samples
		}
	}
	return append(samples, msg)
}
