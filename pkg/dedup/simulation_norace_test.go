//go:build !race

package dedup_test

// raceDetector is true in a test binary built with -race, whose scheduler
// shuffles runnable goroutines on purpose.
const raceDetector = false
