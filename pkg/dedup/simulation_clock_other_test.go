//go:build !unix

package dedup_test

import "time"

// wallNow would read the real clock; without it, runSimulation cannot tell
// a run the Go scheduler may have preempted, and runs every seed once.
func wallNow() time.Duration { return 0 }
