// Package e2e tests signal-apiserver as users run it: installed from its
// images and artifacts on a real single-node cluster (kubelet, containerd,
// kube-controller-manager, kube-scheduler, kube-proxy), which `make e2e`
// brings up, installs and tears down around this suite (test/cluster). Every
// request goes through kube-apiserver as the user named in the spec.
package e2e

import (
	"os"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

var (
	// adminConf is the cluster admin's config (system:masters).
	adminConf *rest.Config
	kube      *kubernetes.Clientset
	signals   *versioned.Clientset
	// kubectl is the kubectl built with the control plane (1.37.2).
	kubectl        string
	kubeconfigPath string
	repoRoot       string
)

func TestE2E(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "signal-apiserver end-to-end")
}

var _ = BeforeSuite(func() {
	kubeconfigPath = os.Getenv("KUBECONFIG")
	kubectl = os.Getenv("E2E_KUBECTL")
	Expect(kubeconfigPath).NotTo(BeEmpty(), "KUBECONFIG is not set: run `make e2e`, which brings the cluster up around this suite")
	Expect(kubectl).NotTo(BeEmpty(), "E2E_KUBECTL is not set: run `make e2e`")
	var err error
	repoRoot, err = controlplane.FindRepoRoot()
	Expect(err).NotTo(HaveOccurred())
	adminConf, err = clientcmd.BuildConfigFromFlags("", kubeconfigPath)
	Expect(err).NotTo(HaveOccurred())
	adminConf.QPS, adminConf.Burst = 1000, 2000
	kube = kubernetes.NewForConfigOrDie(adminConf)
	signals = versioned.NewForConfigOrDie(adminConf)
	SetDefaultEventuallyTimeout(3 * time.Minute)
	SetDefaultEventuallyPollingInterval(time.Second)
})

var _ = ReportAfterSuite("cluster logs", func(r Report) {
	if dir := os.Getenv("E2E_CLUSTER_LOGS"); !r.SuiteSucceeded && dir != "" {
		GinkgoWriter.Printf("cluster logs: %s\n", dir)
	}
})
