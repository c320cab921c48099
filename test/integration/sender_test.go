package integration

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
)

// debianKubectl is an older kubectl than the control plane's, if installed.
const debianKubectl = "/usr/bin/kubectl"

var kubectlCreated = regexp.MustCompile(`^remediationrequest\.remediation\.io/(\S+) created\n$`)

// senderKubeconfig writes a kubeconfig for a new user with a client
// certificate, bound to clusterRole and to nothing else.
func senderKubeconfig(ctx context.Context, clusterRole string) string {
	user := "sender-" + rand.String(8)
	conf, err := cp.AddUser(user, nil)
	Expect(err).NotTo(HaveOccurred())
	core := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: user},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: clusterRole},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: "User", Name: user}},
	}
	_, err = core.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx context.Context) {
		Expect(core.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{})).To(Succeed())
	})
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["cp"] = &clientcmdapi.Cluster{Server: conf.Host, CertificateAuthorityData: conf.CAData}
	cfg.AuthInfos[user] = &clientcmdapi.AuthInfo{ClientCertificateData: conf.CertData, ClientKeyData: conf.KeyData}
	cfg.Contexts["cp"] = &clientcmdapi.Context{Cluster: "cp", AuthInfo: user}
	cfg.CurrentContext = "cp"
	path := filepath.Join(GinkgoT().TempDir(), "sender.kubeconfig")
	Expect(clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	return path
}

// signalFile writes a Signal about a Deployment of its own, plus extra YAML
// lines under spec.target.
func signalFile(target, extra string) string {
	path := filepath.Join(GinkgoT().TempDir(), "signal.yaml")
	Expect(os.WriteFile(path, []byte(`apiVersion: signals.remediation.io/v1
kind: Signal
spec:
  source: manual
  name: HighMemoryUsage
  target:
    apiVersion: apps/v1
    kind: Deployment
    namespace: default
    name: `+target+"\n"+extra), 0o600)).To(Succeed())
	return path
}

func kubectlAs(ctx context.Context, binary, kubeconfig string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, binary, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

// createsTwiceAndRefusesUnknownFields is what a sender bound only to
// signal-sender gets from `kubectl create -f` with default validation.
func createsTwiceAndRefusesUnknownFields(ctx context.Context, binary string) {
	kubeconfig := senderKubeconfig(ctx, "signal-sender")
	target := "web-" + rand.String(8)
	file := signalFile(target, "")
	var names []string
	for range 2 {
		out, errOut, err := kubectlAs(ctx, binary, kubeconfig, "create", "-f", file)
		Expect(err).NotTo(HaveOccurred(), errOut)
		m := kubectlCreated.FindStringSubmatch(out)
		Expect(m).NotTo(BeNil(), "kubectl printed %q", out)
		names = append(names, m[1])
	}
	Expect(names[1]).To(Equal(names[0]))
	rr, err := admin.RemediationV1alpha1().RemediationRequests("default").Get(ctx, names[0], metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	Expect(countOf(rr)).To(Equal(int64(2)))
	Expect(rrsOf(ctx, "default", rr.Spec.SignalFingerprint)).To(HaveLen(1))

	unknown := "web-" + rand.String(8)
	out, errOut, err := kubectlAs(ctx, binary, kubeconfig, "create", "-f", signalFile(unknown, "    colour: blue\n"))
	Expect(err).To(HaveOccurred(), "kubectl printed %q", out)
	Expect(errOut).To(ContainSubstring(`unknown field "colour"`))
	Expect(rrsOf(ctx, "default", fingerprint.ForObject("", remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: unknown}))).To(BeEmpty())
}

var _ = Describe("A sender bound only to the signal-sender ClusterRole", func() {
	It("kubectl create -f twice with default validation: one RemediationRequest, count 2; an unknown field refused by name", func(ctx SpecContext) {
		createsTwiceAndRefusesUnknownFields(ctx, cp.KubectlPath())
	})

	It("the same with Debian's older kubectl", func(ctx SpecContext) {
		if _, err := os.Stat(debianKubectl); err != nil {
			Skip(debianKubectl + " is not installed")
		}
		createsTwiceAndRefusesUnknownFields(ctx, debianKubectl)
	})

	It("cannot use kubectl's default validation with create on signals alone: why signal-sender lists CRDs", func(ctx SpecContext) {
		core := kubernetes.NewForConfigOrDie(cp.RESTConfig())
		role := &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "create-signals-only-" + rand.String(6)},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{"signals.remediation.io"}, Resources: []string{"signals"}, Verbs: []string{"create"}}},
		}
		_, err := core.RbacV1().ClusterRoles().Create(ctx, role, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx context.Context) {
			Expect(core.RbacV1().ClusterRoles().Delete(ctx, role.Name, metav1.DeleteOptions{})).To(Succeed())
		})
		kubeconfig := senderKubeconfig(ctx, role.Name)
		_, errOut, err := kubectlAs(ctx, cp.KubectlPath(), kubeconfig, "create", "-f", signalFile("web-"+rand.String(8), ""))
		Expect(err).To(HaveOccurred())
		Expect(errOut).To(ContainSubstring("failed to check CRD"))
		Expect(errOut).To(ContainSubstring(`customresourcedefinitions.apiextensions.k8s.io is forbidden`))
	})
})
