//go:build unix

package dedup_test

import (
	"syscall"
	"time"
)

// wallNow reads the real clock, which time.Now does not inside a synctest
// bubble.
func wallNow() time.Duration {
	var tv syscall.Timeval
	if err := syscall.Gettimeofday(&tv); err != nil {
		return 0
	}
	return time.Duration(tv.Nano())
}
