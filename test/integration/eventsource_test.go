package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
	"github.com/signal-apiserver/signal-apiserver/pkg/eventsource"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
)

// eventSourceUser is the ServiceAccount of artifacts/event-source, as RBAC
// names it.
const eventSourceUser = "system:serviceaccount:" + controlplane.ServerNamespace + ":signal-event-source"

// The event source runs as a process of its own, with its own identity and
// only the RBAC of artifacts/event-source, against kube-apiserver: every
// Signal goes through the aggregator like any sender's.
var _ = Describe("Event source", Ordered, func() {
	var (
		kube       kubernetes.Interface
		binary     string
		kubeconfig string
		source     *gexec.Session
		address    string
		// ns is watched; otherNS is not in --namespaces; excludedNS is in
		// --namespaces and in --exclude-namespaces.
		ns, otherNS, excludedNS string
		// logs are the source's log files, closed once it is stopped.
		logs []*os.File
	)

	start := func(ctx context.Context) {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		Expect(err).NotTo(HaveOccurred())
		address = l.Addr().String()
		Expect(l.Close()).To(Succeed())
		// Opened for the whole container, not the spec that starts the
		// source: a source restarted by a spec outlives it, and writing to
		// a closed log would kill it (EPIPE).
		log, err := os.OpenFile(filepath.Join(cp.StateDir(), "signal-event-source.log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o600)
		Expect(err).NotTo(HaveOccurred())
		logs = append(logs, log)
		cmd := exec.Command(binary,
			"--kubeconfig="+kubeconfig,
			"--bind-address="+address,
			"--namespaces="+ns+","+excludedNS,
			"--exclude-namespaces="+excludedNS,
			"--exclude-reasons=NoisyReason",
			// The rate limit is not under test here: it must not delay.
			"--per-object-qps=1000", "--per-object-burst=1000",
			"--v=2")
		source, err = gexec.Start(cmd, log, log)
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() int {
			resp, err := http.Get("http://" + address + "/readyz")
			if err != nil {
				return 0
			}
			defer resp.Body.Close()
			return resp.StatusCode
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Equal(http.StatusOK))
	}

	BeforeAll(func(ctx SpecContext) {
		binary = os.Getenv("SIGNAL_EVENT_SOURCE_BINARY")
		if binary == "" {
			var err error
			binary, err = gexec.Build("github.com/signal-apiserver/signal-apiserver/cmd/signal-event-source")
			Expect(err).NotTo(HaveOccurred())
		}
		kube = kubernetes.NewForConfigOrDie(adminConf)
		suffix := rand.String(6)
		ns, otherNS, excludedNS = "events-"+suffix, "events-other-"+suffix, "events-excluded-"+suffix
		for _, name := range []string{ns, otherNS, excludedNS} {
			_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}

		// The deploy manifests as they are, RBAC included: the source has
		// no permission but theirs. A server-side dry run first, as an
		// operator would.
		for _, dryRun := range []string{"--dry-run=server", "--dry-run=none"} {
			out, err := exec.CommandContext(ctx, cp.KubectlPath(), "--kubeconfig="+cp.KubeconfigPath(),
				"apply", dryRun, "-k", filepath.Join(repoRoot, "artifacts", "event-source")).CombinedOutput()
			Expect(err).NotTo(HaveOccurred(), string(out))
		}

		conf, err := cp.AddUser(eventSourceUser, []string{"system:serviceaccounts", "system:serviceaccounts:" + controlplane.ServerNamespace, "system:authenticated"})
		Expect(err).NotTo(HaveOccurred())
		kubeconfig = filepath.Join(cp.StateDir(), "signal-event-source.kubeconfig")
		Expect(writeKubeconfig(kubeconfig, conf)).To(Succeed())

		start(ctx)
		DeferCleanup(func() {
			source.Kill().Wait(30 * time.Second)
			for _, log := range logs {
				Expect(log.Close()).To(Succeed())
			}
		})
	}, NodeTimeout(2*time.Minute))

	It("may only read Events and create Signals", func(ctx SpecContext) {
		conf, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
		Expect(err).NotTo(HaveOccurred())
		_, err = kubernetes.NewForConfigOrDie(conf).CoreV1().Events(ns).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = kubernetes.NewForConfigOrDie(conf).CoreV1().Events(ns).Create(ctx, warningEvent(ns, "Forbidden", "app-forbidden", 1), metav1.CreateOptions{})
		Expect(err).To(MatchError(ContainSubstring("forbidden")))
	})

	var crashing *corev1.Event

	It("submits a Warning Event as one Signal: exactly one RemediationRequest, counted once", func(ctx SpecContext) {
		var err error
		crashing, err = kube.CoreV1().Events(ns).Create(ctx, warningEvent(ns, "BackOff", "app-crashing", 1), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())

		rr := waitForCount(ctx, ns, "app-crashing", 1)
		Expect(rr.Spec.SignalSource).To(Equal("kubernetes-event"))
		Expect(rr.Spec.SignalName).To(Equal("BackOff"))
		Expect(rr.Spec.Severity).To(Equal("warning"))
		Expect(rr.Spec.TargetResource).To(Equal(remediationv1alpha1.ResourceReference{
			APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: "app-crashing",
		}))
		Expect(rr.Status.Deduplication.IdempotencyKeys).To(Equal(keyDigests(crashing, 1)))
	})

	It("counts each observed count bump once, however far the count moved", func(ctx SpecContext) {
		crashing = bump(ctx, kube, crashing, 2)
		waitForCount(ctx, ns, "app-crashing", 2)

		// 2 → 5 in one update is one observed version: one occurrence.
		crashing = bump(ctx, kube, crashing, 5)
		rr := waitForCount(ctx, ns, "app-crashing", 3)
		Expect(rr.Status.Deduplication.IdempotencyKeys).To(Equal(keyDigests(crashing, 1, 2, 5)))
	})

	It("ignores Normal Events, other and excluded namespaces and excluded reasons", func(ctx SpecContext) {
		ignoredBefore := sourceMetric(ctx, address, "signal_event_source_events_ignored_total", map[string]string{"filter": "reason"})

		normal := warningEvent(ns, "ScalingReplicaSet", "app-normal", 1)
		normal.Type = corev1.EventTypeNormal
		for _, ev := range []*corev1.Event{
			normal,
			warningEvent(otherNS, "BackOff", "app-other", 1),
			warningEvent(excludedNS, "BackOff", "app-excluded", 1),
			warningEvent(ns, "NoisyReason", "app-noisy", 1),
		} {
			_, err := kube.CoreV1().Events(ev.Namespace).Create(ctx, ev, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}
		// The source sees Events in the order they were written, and filters
		// before it queues: once this later Event is counted, every earlier
		// one was filtered or never delivered.
		_, err := kube.CoreV1().Events(ns).Create(ctx, warningEvent(ns, "BackOff", "app-sentinel", 1), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		waitForCount(ctx, ns, "app-sentinel", 1)

		for _, target := range [][2]string{{ns, "app-normal"}, {otherNS, "app-other"}, {excludedNS, "app-excluded"}, {ns, "app-noisy"}} {
			Expect(rrsOf(ctx, target[0], deploymentFingerprint(target[0], target[1]))).To(BeEmpty(), target[1])
		}
		Expect(sourceMetric(ctx, address, "signal_event_source_events_ignored_total", map[string]string{"filter": "reason"})).
			To(Equal(ignoredBefore + 1))
	})

	It("counts nothing twice after kill -9 and a restart, and what happened while it was down once", func(ctx SpecContext) {
		source.Kill().Wait(30 * time.Second)
		Expect(source.ExitCode()).To(Equal(128 + 9))

		// A version the source never saw.
		crashing = bump(ctx, kube, crashing, 6)

		start(ctx)
		// The restart lists every stored Event again and submits each one's
		// latest version: the sentinel's is already counted; crashing's
		// version 6 is new.
		Eventually(func() []float64 {
			return []float64{
				sourceMetric(ctx, address, "signal_event_source_submissions_total", map[string]string{"result": "alreadycounted"}),
				sourceMetric(ctx, address, "signal_event_source_submissions_total", map[string]string{"result": "deduplicated"}),
			}
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Equal([]float64{1, 1}))

		rr := waitForCount(ctx, ns, "app-crashing", 4)
		Expect(rr.Status.Deduplication.IdempotencyKeys).To(Equal(keyDigests(crashing, 1, 2, 5, 6)))
		waitForCount(ctx, ns, "app-sentinel", 1)
		Expect(sourceMetric(ctx, address, "signal_event_source_submissions_total", map[string]string{"result": "created"})).To(BeZero())
	})

	It("shows kubelet's BackOff and Unhealthy Events about one Pod as two entries of its Deployment's RemediationRequest", func(ctx SpecContext) {
		app := "app-probing-" + rand.String(6)
		labels := map[string]string{"app": app}
		template := corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}}}
		deploy, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: app},
			Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		rs, err := kube.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{Name: app + "-5d8f7c", OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(deploy, appsv1.SchemeGroupVersion.WithKind("Deployment"))}},
			Spec:       appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		pod, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: rs.Name + "-x7k2p", Labels: labels, OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))}},
			Spec:       template.Spec,
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		for _, reason := range []string{"BackOff", "Unhealthy"} {
			ev := warningEvent(ns, reason, app, 1)
			ev.InvolvedObject = corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: pod.Name, UID: pod.UID}
			ev.Source = corev1.EventSource{Component: "kubelet", Host: "node-1"}
			_, err := kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}

		rr := waitForCount(ctx, ns, app, 2)
		Expect(rr.Status.SignalSummary.Signals).To(HaveLen(2))
		for _, e := range rr.Status.SignalSummary.Signals {
			Expect(e.Source).To(Equal(eventsource.SignalSource))
			Expect(e.Count).To(Equal(int64(1)), e.Name)
			Expect(e.HighestSeverity).To(Equal("warning"))
			Expect(e.State).To(Equal(remediationv1alpha1.SignalFiring))
		}
		Expect([]string{rr.Status.SignalSummary.Signals[0].Name, rr.Status.SignalSummary.Signals[1].Name}).To(ConsistOf("BackOff", "Unhealthy"))
	})

	It("opens nothing for a tenant's Event about an object in kube-system, and counts it as refused", func(ctx SpecContext) {
		// A tenant ServiceAccount that may create Events in its own
		// namespace and nothing else. kube-apiserver lets an Event with
		// eventTime name an object in any namespace.
		rbac := kube.RbacV1()
		_, err := kube.CoreV1().ServiceAccounts(ns).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "tenant"}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = rbac.Roles(ns).Create(ctx, &rbacv1.Role{
			ObjectMeta: metav1.ObjectMeta{Name: "event-writer"},
			Rules:      []rbacv1.PolicyRule{{APIGroups: []string{""}, Resources: []string{"events"}, Verbs: []string{"create"}}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = rbac.RoleBindings(ns).Create(ctx, &rbacv1.RoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "tenant-event-writer"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "Role", Name: "event-writer"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: ns, Name: "tenant"}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		tenant := kubernetes.NewForConfigOrDie(tokenConfig(ctx, ns, "tenant"))

		refusedBefore := sourceMetric(ctx, address, "signal_event_source_events_refused_total", map[string]string{"reason": "other_namespace"})
		target := "coredns-" + rand.String(6)
		Eventually(func() error {
			_, err := tenant.CoreV1().Events(ns).Create(ctx, crossNamespaceEvent(ns, metav1.NamespaceSystem, target), metav1.CreateOptions{})
			return err
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "RBAC of the tenant's RoleBinding")

		// Created after it by the admin: once it is counted, the tenant's
		// Event has been seen and handled.
		_, err = kube.CoreV1().Events(ns).Create(ctx, warningEvent(ns, "BackOff", "app-after-tenant", 1), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		waitForCount(ctx, ns, "app-after-tenant", 1)

		Expect(rrsOf(ctx, metav1.NamespaceSystem, deploymentFingerprint(metav1.NamespaceSystem, target))).To(BeEmpty())
		Expect(sourceMetric(ctx, address, "signal_event_source_events_refused_total", map[string]string{"reason": "other_namespace"})).
			To(Equal(refusedBefore + 1))
	})

	It("opens nothing for an Event about a Pod deleted and recreated under its name, counts it as refused, and counts the new Pod's", func(ctx SpecContext) {
		app := "db-" + rand.String(6)
		labels := map[string]string{"app": app}
		sts, err := kube.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: app},
			Spec: appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: corev1.PodTemplateSpec{
				ObjectMeta: metav1.ObjectMeta{Labels: labels},
				Spec:       corev1.PodSpec{Containers: []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}}},
			}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		createPod := func() (*corev1.Pod, error) {
			return kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
				ObjectMeta: metav1.ObjectMeta{Name: app + "-0", Labels: labels, OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(sts, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))}},
				Spec:       sts.Spec.Template.Spec,
			}, metav1.CreateOptions{})
		}
		old, err := createPod()
		Expect(err).NotTo(HaveOccurred())
		Expect(kube.CoreV1().Pods(ns).Delete(ctx, old.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))})).To(Succeed())
		var recreated *corev1.Pod
		Eventually(func() (err error) {
			recreated, err = createPod()
			return err
		}).WithContext(ctx).WithTimeout(30*time.Second).Should(Succeed(), "the old Pod's deletion")
		Expect(recreated.UID).NotTo(Equal(old.UID))
		fp := fingerprint.ForObject("", remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: ns, Name: app})
		eventAbout := func(pod *corev1.Pod) {
			ev := warningEvent(ns, "BackOff", app, 1)
			ev.InvolvedObject = corev1.ObjectReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: pod.Name, UID: pod.UID}
			ev.Source = corev1.EventSource{Component: "kubelet", Host: "node-1"}
			_, err := kube.CoreV1().Events(ns).Create(ctx, ev, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
		}

		By("an Event about the new Pod counts on its StatefulSet's RemediationRequest")
		eventAbout(recreated)
		Eventually(func(g Gomega) {
			rrs := rrsOf(ctx, ns, fp)
			g.Expect(rrs).To(HaveLen(1))
			g.Expect(countOf(&rrs[0])).To(Equal(int64(1)))
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())

		By("an Event about the old Pod is refused by the server, dropped and counted as uid_mismatch")
		refused := map[string]string{"reason": eventsource.RefusedUIDMismatch}
		refusedBefore := sourceMetric(ctx, address, "signal_event_source_events_refused_total", refused)
		eventAbout(old)
		Eventually(func() float64 {
			return sourceMetric(ctx, address, "signal_event_source_events_refused_total", refused)
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Equal(refusedBefore + 1))
		rrs := rrsOf(ctx, ns, fp)
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(Equal(int64(1)))
	})
})

// crossNamespaceEvent is an events.k8s.io-style Warning Event (eventTime
// set) in namespace about a Deployment in objectNamespace, which
// kube-apiserver accepts from anyone who may create Events in namespace.
func crossNamespaceEvent(namespace, objectNamespace, deployment string) *corev1.Event {
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: deployment + ".", Namespace: namespace},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: "apps/v1", Kind: "Deployment", Namespace: objectNamespace, Name: deployment,
		},
		Reason:              "BackOff",
		Message:             "Back-off restarting failed container",
		Type:                corev1.EventTypeWarning,
		EventTime:           metav1.NowMicro(),
		Action:              "Restart",
		ReportingController: "example.com/tenant-controller",
		ReportingInstance:   "tenant-controller-0",
	}
}

// warningEvent is a legacy core/v1 Warning Event about a Deployment, as
// kubelet and the controllers write them.
func warningEvent(namespace, reason, deployment string, count int32) *corev1.Event {
	now := metav1.Now()
	return &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: deployment + ".", Namespace: namespace},
		InvolvedObject: corev1.ObjectReference{
			APIVersion: "apps/v1", Kind: "Deployment", Namespace: namespace, Name: deployment,
		},
		Reason:         reason,
		Message:        fmt.Sprintf("%s of %s\nsecond line", reason, deployment),
		Type:           corev1.EventTypeWarning,
		Count:          count,
		FirstTimestamp: now,
		LastTimestamp:  now,
		Source:         corev1.EventSource{Component: "integration-test"},
	}
}

// bump sets the count of ev, as the event recorder does when the same
// Event recurs.
func bump(ctx context.Context, kube kubernetes.Interface, ev *corev1.Event, count int32) *corev1.Event {
	ev = ev.DeepCopy()
	ev.Count = count
	ev.LastTimestamp = metav1.Now()
	updated, err := kube.CoreV1().Events(ev.Namespace).Update(ctx, ev, metav1.UpdateOptions{})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return updated
}

func deploymentFingerprint(namespace, name string) string {
	return fingerprint.ForObject("", remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: namespace, Name: name})
}

// waitForCount waits until the one RemediationRequest of a Deployment's
// default fingerprint has count occurrences, and fails if there is ever
// more than one or the count goes past it.
func waitForCount(ctx context.Context, namespace, deployment string, count int64) *remediationv1alpha1.RemediationRequest {
	var rr *remediationv1alpha1.RemediationRequest
	EventuallyWithOffset(1, func(g Gomega) {
		rrs := rrsOf(ctx, namespace, deploymentFingerprint(namespace, deployment))
		if len(rrs) > 1 {
			StopTrying(fmt.Sprintf("%d RemediationRequests", len(rrs))).Now()
		}
		g.Expect(rrs).To(HaveLen(1))
		if countOf(&rrs[0]) > count {
			StopTrying(fmt.Sprintf("counted %d, want %d", countOf(&rrs[0]), count)).Now()
		}
		g.Expect(countOf(&rrs[0])).To(Equal(count))
		rr = &rrs[0]
	}).WithContext(ctx).WithTimeout(time.Minute).Should(Succeed())
	return rr
}

// keyDigests is how a RemediationRequest records the idempotency keys of
// the versions of ev with counts, in that order: its window.
func keyDigests(ev *corev1.Event, counts ...int32) []byte {
	var window []byte
	for _, count := range counts {
		ev = ev.DeepCopy()
		ev.Count = count
		sum := sha256.Sum256([]byte(eventsource.IdempotencyKey(ev)))
		window = append(window, sum[:8]...)
	}
	return window
}

// sourceMetric scrapes the event source's /metrics and returns the value of
// the series of family with exactly labels, 0 if there is none.
func sourceMetric(ctx context.Context, address, family string, labels map[string]string) float64 {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+address+"/metrics", nil)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		GinkgoWriter.Printf("scraping the event source: %v\n", err)
		return -1
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return value(families, family, labels)
}

// writeKubeconfig writes a kubeconfig file with the server and client
// certificate of conf.
func writeKubeconfig(path string, conf *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["cluster"] = &clientcmdapi.Cluster{Server: conf.Host, CertificateAuthorityData: conf.CAData}
	kc.AuthInfos["user"] = &clientcmdapi.AuthInfo{ClientCertificateData: conf.CertData, ClientKeyData: conf.KeyData}
	kc.Contexts["context"] = &clientcmdapi.Context{Cluster: "cluster", AuthInfo: "user"}
	kc.CurrentContext = "context"
	return clientcmd.WriteToFile(*kc, path)
}
