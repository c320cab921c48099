package e2e

import (
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
)

const (
	senderNamespace = "e2e-senders"
	senderAccount   = "signal-sender"
	// oldKubectl is Debian's kubectl, an older client than the cluster.
	oldKubectl = "/usr/bin/kubectl"
)

var createdName = regexp.MustCompile(`^remediationrequest\.remediation\.io/(\S+) created$`)

func senderSpecs() {
	Context("a sender bound to the signal-sender ClusterRole and nothing else", func() {
		var senderKubeconfig string

		BeforeAll(func(ctx SpecContext) {
			createNamespace(ctx, senderNamespace)
			senderKubeconfig = tokenKubeconfig(boundSender(ctx, senderNamespace, senderAccount))

			By("the sender may create signals and do nothing else of note")
			for verb, allowed := range map[string]string{
				"create signals.signals.remediation.io":     "yes",
				"get remediationrequests.remediation.io":    "no",
				"create remediationrequests.remediation.io": "no",
				"list pods": "no",
			} {
				out, _, _ := runKubectl(ctx, kubectl, senderKubeconfig, append([]string{"auth", "can-i"}, strings.Fields(verb)...)...)
				Expect(out).To(Equal(allowed), verb)
			}
		})

		It("kubectl create -f artifacts/examples/signal.yaml twice, default validation (kubectl 1.37): 1 RemediationRequest, count 2", func(ctx SpecContext) {
			example := filepath.Join(repoRoot, "artifacts", "examples", "signal.yaml")
			createTwice(ctx, kubectl, senderKubeconfig, example)
		})

		It("refuses a manifest with an unknown field, naming the field (kubectl 1.37)", func(ctx SpecContext) {
			refusesUnknownField(ctx, kubectl, senderKubeconfig)
		})

		It("does both with an older kubectl (1.32, /usr/bin/kubectl)", func(ctx SpecContext) {
			_, err := os.Stat(oldKubectl)
			Expect(err).NotTo(HaveOccurred(), "the older kubectl this spec needs (1.32, from the machine's Cloud SDK package)")
			out, _, err := runKubectl(ctx, oldKubectl, senderKubeconfig, "version", "--client", "-o", "yaml")
			Expect(err).NotTo(HaveOccurred())
			GinkgoWriter.Printf("%s:\n%s\n", oldKubectl, out)
			example := writeTempFile("signal.yaml", exampleAbout("web-older-kubectl"))
			createTwice(ctx, oldKubectl, senderKubeconfig, example)
			refusesUnknownField(ctx, oldKubectl, senderKubeconfig)
		})
	})
}

// createTwice runs `kubectl create -f file` twice as the sender and checks
// both answers name one RemediationRequest, which counts 2.
func createTwice(ctx context.Context, binary, kubeconfig, file string) {
	var names []string
	for range 2 {
		out, errOut, err := runKubectl(ctx, binary, kubeconfig, "create", "-f", file)
		ExpectWithOffset(1, err).NotTo(HaveOccurred(), errOut)
		m := createdName.FindStringSubmatch(out)
		ExpectWithOffset(1, m).NotTo(BeNil(), "kubectl printed %q", out)
		names = append(names, m[1])
	}
	ExpectWithOffset(1, names[1]).To(Equal(names[0]))
	rr, err := signals.RemediationV1alpha1().RemediationRequests("default").Get(ctx, names[0], metav1.GetOptions{})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	ExpectWithOffset(1, countOf(rr)).To(Equal(int64(2)))
	ExpectWithOffset(1, rrsOf(ctx, "default", rr.Spec.SignalFingerprint)).To(HaveLen(1))
}

// refusesUnknownField sends a Signal with spec.target.colour, a field the
// API does not have, about a target of its own.
func refusesUnknownField(ctx context.Context, binary, kubeconfig string) {
	target := "web-unknown-field-" + filepath.Base(binary)
	file := writeTempFile("unknown-field.yaml", exampleAbout(target)+"    colour: blue\n")
	out, errOut, err := runKubectl(ctx, binary, kubeconfig, "create", "-f", file)
	ExpectWithOffset(1, err).To(HaveOccurred(), "kubectl printed %q", out)
	GinkgoWriter.Printf("%s refused the unknown field: %s\n", binary, errOut)
	ExpectWithOffset(1, errOut).To(ContainSubstring(`unknown field "colour"`))
	ExpectWithOffset(1, errOut).NotTo(ContainSubstring("forbidden"))
	for _, rr := range rrsIn(ctx, "default") {
		ExpectWithOffset(1, rr.Spec.TargetResource.Name).NotTo(Equal(target))
	}
}

// exampleAbout is a Signal like artifacts/examples/signal.yaml about
// Deployment default/name, with spec.target last.
func exampleAbout(name string) string {
	return `apiVersion: signals.remediation.io/v1
kind: Signal
spec:
  source: manual
  name: HighMemoryUsage
  severity: warning
  target:
    apiVersion: apps/v1
    kind: Deployment
    namespace: default
    name: ` + name + "\n"
}

// tokenKubeconfig writes a kubeconfig for the admin's cluster with a
// bearer token and nothing else.
func tokenKubeconfig(token string) string {
	admin, err := clientcmd.LoadFromFile(kubeconfigPath)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	cluster := admin.Clusters[admin.Contexts[admin.CurrentContext].Cluster]
	cfg := clientcmdapi.NewConfig()
	cfg.Clusters["e2e"] = cluster
	cfg.AuthInfos["sender"] = &clientcmdapi.AuthInfo{Token: token}
	cfg.Contexts["sender"] = &clientcmdapi.Context{Cluster: "e2e", AuthInfo: "sender"}
	cfg.CurrentContext = "sender"
	path := filepath.Join(GinkgoT().TempDir(), "sender.kubeconfig")
	ExpectWithOffset(1, clientcmd.WriteToFile(*cfg, path)).To(Succeed())
	return path
}

// boundSender creates ServiceAccount namespace/name bound to the
// signal-sender ClusterRole and nothing else, and returns a token for it.
func boundSender(ctx context.Context, namespace, name string) string {
	_, err := kube.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{
		ObjectMeta: metav1.ObjectMeta{Name: name},
	}, metav1.CreateOptions{})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: "e2e-" + namespace + "-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "signal-sender"},
		Subjects:   []rbacv1.Subject{{Kind: "ServiceAccount", Name: name, Namespace: namespace}},
	}
	_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx context.Context) {
		Expect(kube.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{})).To(Succeed())
	})
	return adminKubectl(ctx, "-n", namespace, "create", "token", name, "--duration=2h")
}
