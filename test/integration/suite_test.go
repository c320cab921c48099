// Package integration tests signal-apiserver against a real kube-apiserver
// and etcd, with the server registered as an APIService: every request goes
// through kube-apiserver's aggregator unless a spec says otherwise.
package integration

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"k8s.io/client-go/rest"

	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/apiserver"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

var (
	cp      *controlplane.ControlPlane
	primary *controlplane.Server
	// admin talks to kube-apiserver as cluster admin.
	admin     *versioned.Clientset
	adminConf *rest.Config
	repoRoot  string
)

func TestIntegration(t *testing.T) {
	RegisterFailHandler(Fail)
	// A wait that never comes true fails its spec after two minutes instead
	// of holding the suite until go test's timeout kills it unreported.
	SetDefaultEventuallyTimeout(2 * time.Minute)
	EnforceDefaultTimeoutsWhenUsingContexts()
	RunSpecs(t, "signal-apiserver integration")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	var err error
	repoRoot, err = controlplane.FindRepoRoot()
	Expect(err).NotTo(HaveOccurred())
	binDir, err := controlplane.FindBinDir(repoRoot)
	Expect(err).NotTo(HaveOccurred())

	// `make test` passes the binary it built; a bare `go test` builds one.
	serverBinary := os.Getenv("SIGNAL_APISERVER_BINARY")
	if serverBinary == "" {
		serverBinary, err = gexec.Build("github.com/signal-apiserver/signal-apiserver/cmd/signal-apiserver")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)
	}

	stateDir := os.Getenv("INTEGRATION_STATE_DIR")
	if stateDir == "" {
		stateDir = filepath.Join(GinkgoT().TempDir(), "state")
	}
	cp, primary, err = controlplane.StartWithServer(ctx, controlplane.Options{
		BinDir:       binDir,
		StateDir:     stateDir,
		ServerBinary: serverBinary,
		RepoRoot:     repoRoot,
	}, "signal-apiserver-0", holdsOff...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		Expect(cp.Stop()).To(Succeed())
	})

	adminConf = highQPS(cp.RESTConfig())
	admin = versioned.NewForConfigOrDie(adminConf)
}, NodeTimeout(5*time.Minute))

// holdsOff turns every hold of the recurrence policy off: the specs of
// servers started with it are about something else, and replace a finished
// RemediationRequest at once, as the recurrence specs check separately.
var holdsOff = []string{"--recurrence-cooldown=0", "--recurrence-backoff=0", "--recurrence-block-after=0", "--recurrence-flap-threshold=0"}

// highQPS lifts client-go's default client-side rate limit (5 QPS), which
// would otherwise serialize the concurrent requests of a spec.
func highQPS(c *rest.Config) *rest.Config {
	c = rest.CopyConfig(c)
	c.QPS, c.Burst = 5000, 5000
	return c
}

var _ = ReportAfterSuite("server logs", func(r Report) {
	if !r.SuiteSucceeded && cp != nil {
		GinkgoWriter.Printf("control-plane state and logs: %s\n", cp.StateDir())
	}
})

// remediationCodecs decode the answers of raw requests.
var remediationCodecs = apiserver.Codecs.WithoutConversion()
