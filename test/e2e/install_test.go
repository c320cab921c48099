package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	apiregistrationhelper "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"
	aggregatorclientset "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"

	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
)

// serverServiceAccount is the subject the shipped RBAC binds.
var serverServiceAccount = rbacv1.Subject{Kind: "ServiceAccount", Name: serverName, Namespace: serverNamespace}

func installSpecs() {
	Context("as installed from artifacts/deploy", func() {
		It("is Available through its Service, verified TLS and 2 ready replicas", func(ctx SpecContext) {
			svc, err := aggregatorclientset.NewForConfigOrDie(adminConf).ApiregistrationV1().APIServices().Get(ctx, apiServiceName, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(apiregistrationhelper.IsAPIServiceConditionTrue(svc, apiregistrationv1.Available)).To(BeTrue(), "%+v", svc.Status)
			Expect(svc.Spec.Service).To(Equal(&apiregistrationv1.ServiceReference{Namespace: serverNamespace, Name: serverName, Port: ptr.To[int32](443)}))
			By("kube-apiserver verifying the server's certificate against the CA the server keeps")
			Expect(svc.Spec.InsecureSkipTLSVerify).To(BeFalse())
			secret, err := kube.CoreV1().Secrets(serverNamespace).Get(ctx, "signal-apiserver-serving-ca", metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(string(svc.Spec.CABundle)).To(Equal(string(secret.Data["ca.crt"])))

			By("2 ready replicas, the Service's only endpoints")
			dep, err := kube.AppsV1().Deployments(serverNamespace).Get(ctx, serverName, metav1.GetOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(dep.Status.ReadyReplicas).To(Equal(int32(2)))
			Expect(dep.Status.AvailableReplicas).To(Equal(int32(2)))
			pods := podsOf(ctx, serverNamespace, serverName)
			Expect(pods).To(HaveLen(2))
			var podIPs []string
			for _, pod := range pods {
				podIPs = append(podIPs, pod.Status.PodIP)
			}
			slices.Sort(podIPs)
			endpointSlices, err := kube.DiscoveryV1().EndpointSlices(serverNamespace).List(ctx, metav1.ListOptions{LabelSelector: discoveryv1.LabelServiceName + "=" + serverName})
			Expect(err).NotTo(HaveOccurred())
			var ready []string
			for _, s := range endpointSlices.Items {
				for _, e := range s.Endpoints {
					if ptr.Deref(e.Conditions.Ready, false) {
						ready = append(ready, e.Addresses...)
					}
				}
			}
			Expect(sorted(ready)).To(Equal(podIPs))
		})

		It("runs each replica from the built image as 65532 with a read-only root filesystem, in-cluster config and passing probes", func(ctx SpecContext) {
			pods := podsOf(ctx, serverNamespace, serverName)
			Expect(pods).To(HaveLen(2))
			for _, pod := range pods {
				Expect(pod.Status.Phase).To(Equal(corev1.PodRunning), pod.Name)
				Expect(podReady(&pod)).To(BeTrue(), pod.Name)
				Expect(pod.Spec.ServiceAccountName).To(Equal(serverName))
				Expect(ptr.Deref(pod.Spec.SecurityContext.RunAsNonRoot, false)).To(BeTrue())
				Expect(ptr.Deref(pod.Spec.SecurityContext.RunAsUser, 0)).To(Equal(int64(65532)))
				Expect(pod.Spec.Containers).To(HaveLen(1))
				c := pod.Spec.Containers[0]
				Expect(c.Image).To(Equal(os.Getenv("E2E_SERVER_IMAGE")))
				Expect(ptr.Deref(c.SecurityContext.ReadOnlyRootFilesystem, false)).To(BeTrue())
				Expect(c.ReadinessProbe).NotTo(BeNil())
				Expect(c.LivenessProbe).NotTo(BeNil())
				Expect(c.StartupProbe).NotTo(BeNil())
				// In-cluster config: no kubeconfig flag, no mounted kubeconfig;
				// the only volume is the projected ServiceAccount token.
				Expect(strings.Join(c.Args, " ")).NotTo(ContainSubstring("kubeconfig"))
				Expect(pod.Spec.Volumes).To(HaveLen(1))
				Expect(pod.Spec.Volumes[0].Projected).NotTo(BeNil())
				Expect(pod.Status.ContainerStatuses).To(HaveLen(1))
				Expect(pod.Status.ContainerStatuses[0].RestartCount).To(BeZero(), pod.Name)
			}
		})

		It("runs with the shipped RBAC and nothing else", func(ctx SpecContext) {
			shipped := shippedBindings(ctx)
			Expect(shipped).NotTo(BeEmpty())
			var got []string
			crbs, err := kube.RbacV1().ClusterRoleBindings().List(ctx, metav1.ListOptions{})
			Expect(err).NotTo(HaveOccurred())
			for _, b := range crbs.Items {
				if slices.Contains(b.Subjects, serverServiceAccount) {
					got = append(got, "ClusterRoleBinding/"+b.Name+"->"+b.RoleRef.Name)
				}
			}
			rbs, err := kube.RbacV1().RoleBindings(metav1.NamespaceAll).List(ctx, metav1.ListOptions{})
			Expect(err).NotTo(HaveOccurred())
			for _, b := range rbs.Items {
				if slices.Contains(b.Subjects, serverServiceAccount) {
					got = append(got, "RoleBinding/"+b.Namespace+"/"+b.Name+"->"+b.RoleRef.Name)
				}
			}
			Expect(sorted(got)).To(Equal(shipped))
		})

		It("serves signals from both replicas through kube-apiserver", func(ctx SpecContext) {
			const n = 40
			pods := podsOf(ctx, serverNamespace, serverName)
			Expect(pods).To(HaveLen(2))
			before := map[string]float64{}
			for _, pod := range pods {
				before[pod.Name] = sum(serverMetrics(ctx, pod.Name), "signal_apiserver_signals_total", nil)
			}
			createNamespace(ctx, "e2e-replicas")
			for i := range n {
				_, err := signals.SignalsV1().Signals().Create(ctx, &signalsv1.Signal{Spec: signalsv1.SignalSpec{
					Source: "e2e", Name: "ReplicaCheck",
					Target: signalsv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "e2e-replicas", Name: fmt.Sprintf("app-%d", i)},
				}}, metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred())
			}
			total := 0.0
			for _, pod := range pods {
				served := sum(serverMetrics(ctx, pod.Name), "signal_apiserver_signals_total", nil) - before[pod.Name]
				GinkgoWriter.Printf("%s served %v of %d signals\n", pod.Name, served, n)
				Expect(served).To(BeNumerically(">", 0), "%s served no signal", pod.Name)
				total += served
			}
			Expect(total).To(Equal(float64(n)))
			Expect(rrsIn(ctx, "e2e-replicas")).To(HaveLen(n))
		})
	})
}

// shippedBindings lists the bindings of artifacts/deploy that name the
// server's ServiceAccount, as "Kind/[namespace/]name->role".
func shippedBindings(ctx context.Context) []string {
	out := adminKubectl(ctx, "kustomize", filepath.Join(repoRoot, "artifacts", "deploy"))
	decoder := utilyaml.NewYAMLOrJSONDecoder(bytes.NewReader([]byte(out)), 4096)
	var bindings []string
	for {
		var u unstructured.Unstructured
		err := decoder.Decode(&u.Object)
		if errors.Is(err, io.EOF) {
			break
		}
		Expect(err).NotTo(HaveOccurred())
		switch u.GetKind() {
		case "ClusterRoleBinding":
			var b rbacv1.ClusterRoleBinding
			Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b)).To(Succeed())
			if slices.Contains(b.Subjects, serverServiceAccount) {
				bindings = append(bindings, "ClusterRoleBinding/"+b.Name+"->"+b.RoleRef.Name)
			}
		case "RoleBinding":
			var b rbacv1.RoleBinding
			Expect(runtime.DefaultUnstructuredConverter.FromUnstructured(u.Object, &b)).To(Succeed())
			if slices.Contains(b.Subjects, serverServiceAccount) {
				bindings = append(bindings, "RoleBinding/"+b.Namespace+"/"+b.Name+"->"+b.RoleRef.Name)
			}
		}
	}
	return sorted(bindings)
}

func podReady(pod *corev1.Pod) bool {
	for _, c := range pod.Status.Conditions {
		if c.Type == corev1.PodReady {
			return c.Status == corev1.ConditionTrue
		}
	}
	return false
}

func sorted(s []string) []string {
	s = slices.Clone(s)
	slices.Sort(s)
	return s
}
