package e2e

import (
	. "github.com/onsi/ginkgo/v2"
)

// One ordered container: the specs share one cluster and the last one
// restarts the server, so they run in this order, one after the other; a
// failure does not skip the specs after it.
var _ = Describe("signal-apiserver installed on a single-node cluster", Ordered, ContinueOnFailure, func() {
	installSpecs()
	senderSpecs()
	eventSourceSpecs()
	alertmanagerSpecs()
	rolloutSpecs()
})
