package reliability

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"

	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// cp is the suite's control plane. It starts without the RemediationRequest
// CRD: the first spec installs it.
var cp *controlplane.ControlPlane

func TestReliability(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "signal-apiserver under faults")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	repoRoot, err := controlplane.FindRepoRoot()
	Expect(err).NotTo(HaveOccurred())
	binDir, err := controlplane.FindBinDir(repoRoot)
	Expect(err).NotTo(HaveOccurred())
	serverBinary := os.Getenv("SIGNAL_APISERVER_BINARY")
	if serverBinary == "" {
		serverBinary, err = gexec.Build("github.com/signal-apiserver/signal-apiserver/cmd/signal-apiserver")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)
	}
	stateDir := os.Getenv("RELIABILITY_STATE_DIR")
	if stateDir == "" {
		stateDir = filepath.Join(GinkgoT().TempDir(), "state")
	}
	cp, err = controlplane.Start(ctx, controlplane.Options{
		BinDir:       binDir,
		StateDir:     stateDir,
		ServerBinary: serverBinary,
		RepoRoot:     repoRoot,
		WithoutCRDs:  true,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		Expect(cp.Stop()).To(Succeed())
	})
}, NodeTimeout(5*time.Minute))

var _ = ReportAfterSuite("state", func(r Report) {
	if !r.SuiteSucceeded && cp != nil {
		GinkgoWriter.Printf("control-plane state and logs: %s\n", cp.StateDir())
	}
})

// holdsOff turns every hold of the recurrence policy off: the storms finish
// RemediationRequests and need the next signal to open the next one at once,
// to exercise replacement under retention and faults.
var holdsOff = []string{"--recurrence-cooldown=0", "--recurrence-backoff=0", "--recurrence-block-after=0", "--recurrence-flap-threshold=0"}
