// Command crashloop exits 1 at once: the container of the e2e suite's
// crash-looping Deployment, whose restarts make kubelet emit BackOff
// Warning events.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "crashloop: exiting 1 on purpose")
	os.Exit(1)
}
