package e2e

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"regexp"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/utils/ptr"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
)

const (
	crashNamespace  = "e2e-crashloop"
	crashDeployment = "crashloop"
	// minBackOffVersions is how many BackOff Event versions the spec waits
	// for before it stops the crash loop.
	minBackOffVersions = 3
	// crossNamespace holds an Event about an object in kube-system.
	crossNamespace = "e2e-cross-namespace"
)

// The event source's log line (--v=2) for a Signal it submitted, and its
// values: the Event it came from, the idempotency key and the outcome.
var (
	submittedLine = regexp.MustCompile(`"Submitted a Signal"`)
	eventValue    = regexp.MustCompile(` event="([^"]+)"`)
	keyValue      = regexp.MustCompile(` idempotencyKey="([^"]+)"`)
	outcomeValue  = regexp.MustCompile(` outcome="([^"]+)"`)
)

func eventSourceSpecs() {
	Context("a Deployment whose container exits 1", func() {
		It("gets exactly one RemediationRequest from kubelet's BackOff events, about the Deployment, counting every version the event source observed", func(ctx SpecContext) {
			createNamespace(ctx, crashNamespace)
			labels := map[string]string{"app": crashDeployment}
			_, err := kube.AppsV1().Deployments(crashNamespace).Create(ctx, &appsv1.Deployment{
				ObjectMeta: metav1.ObjectMeta{Name: crashDeployment},
				Spec: appsv1.DeploymentSpec{
					Replicas: ptr.To[int32](1),
					Selector: &metav1.LabelSelector{MatchLabels: labels},
					Template: corev1.PodTemplateSpec{
						ObjectMeta: metav1.ObjectMeta{Labels: labels},
						Spec: corev1.PodSpec{
							TerminationGracePeriodSeconds: ptr.To[int64](0),
							Containers: []corev1.Container{{
								Name:            "crash",
								Image:           os.Getenv("E2E_CRASHLOOP_IMAGE"),
								ImagePullPolicy: corev1.PullNever,
							}},
						},
					},
				},
			}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())

			By("waiting for kubelet's BackOff Warning events")
			Eventually(func(g Gomega) {
				g.Expect(backOffVersions(ctx)).To(BeNumerically(">=", minBackOffVersions))
			}).WithContext(ctx).WithTimeout(5 * time.Minute).WithPolling(2 * time.Second).Should(Succeed())

			// The crash loop goes on: at a moment between two events the
			// RemediationRequest, the event source's log and its metrics must
			// all say the same. The metrics count every namespace: they must
			// equal the counted submissions the log has for all of them.
			By("comparing the RemediationRequest with what the event source observed and counted")
			var observed map[string]string
			var rr *remediationv1alpha1.RemediationRequest
			Eventually(func(g Gomega) {
				metricsBefore := countedSubmissions(eventSourceMetrics(ctx))
				var loggedTotal int
				observed, loggedTotal = counted(ctx, g)
				rrs := rrsIn(ctx, crashNamespace)
				metricsAfter := countedSubmissions(eventSourceMetrics(ctx))
				g.Expect(metricsAfter).To(Equal(metricsBefore), "a submission while reading")
				g.Expect(metricsAfter).To(Equal(float64(loggedTotal)))
				g.Expect(rrs).To(HaveLen(1))
				rr = &rrs[0]
				g.Expect(rr.Status.Deduplication).NotTo(BeNil())
				g.Expect(windowOf(rr)).To(ConsistOf(digestsOf(observed)))
				g.Expect(countOf(rr)).To(Equal(int64(len(observed))))
			}).WithContext(ctx).WithTimeout(3 * time.Minute).Should(Succeed())

			GinkgoWriter.Printf("the event source counted %d BackOff event versions: %v\n", len(observed), observed)
			Expect(len(observed)).To(BeNumerically(">=", minBackOffVersions))
			for key, reason := range observed {
				Expect(reason).To(Equal("BackOff"), key)
			}
			Expect(rr.Spec.TargetResource).To(Equal(remediationv1alpha1.ResourceReference{
				APIVersion: "apps/v1", Kind: "Deployment", Namespace: crashNamespace, Name: crashDeployment,
			}))
			Expect(rr.Spec.SignalTarget).NotTo(BeNil())
			Expect(rr.Spec.SignalTarget.Kind).To(Equal("Pod"))
			Expect(rr.Spec.SignalName).To(Equal("BackOff"))
			Expect(countOf(rr)).To(Equal(int64(len(observed))))
		})
	})

	Context("an Event in one namespace about an object in another", func() {
		It("opens no RemediationRequest in the other namespace, and the event source counts it as refused", func(ctx SpecContext) {
			createNamespace(ctx, crossNamespace)
			refusedBefore := sum(eventSourceMetrics(ctx), "signal_event_source_events_refused_total", map[string]string{"reason": "other_namespace"})

			// kube-apiserver accepts an Event with eventTime about an object
			// in any namespace from whoever may create Events in its own.
			victim := "coredns-e2e"
			_, err := kube.CoreV1().Events(crossNamespace).Create(ctx, &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{GenerateName: victim + ".", Namespace: crossNamespace},
				InvolvedObject: corev1.ObjectReference{
					APIVersion: "apps/v1", Kind: "Deployment", Namespace: metav1.NamespaceSystem, Name: victim,
				},
				Reason:              "BackOff",
				Message:             "Back-off restarting failed container",
				Type:                corev1.EventTypeWarning,
				EventTime:           metav1.NowMicro(),
				Action:              "Restart",
				ReportingController: "example.com/tenant-controller",
				ReportingInstance:   "tenant-controller-0",
			}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())

			// Written after it: once its RemediationRequest exists, the event
			// source has handled the cross-namespace Event (a watch delivers
			// Events in the order they were written).
			now := metav1.Now()
			_, err = kube.CoreV1().Events(crossNamespace).Create(ctx, &corev1.Event{
				ObjectMeta: metav1.ObjectMeta{GenerateName: "sentinel.", Namespace: crossNamespace},
				InvolvedObject: corev1.ObjectReference{
					APIVersion: "apps/v1", Kind: "Deployment", Namespace: crossNamespace, Name: "sentinel",
				},
				Reason: "BackOff", Message: "sentinel", Type: corev1.EventTypeWarning, Count: 1,
				FirstTimestamp: now, LastTimestamp: now, Source: corev1.EventSource{Component: "e2e"},
			}, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			sentinelFP := fingerprint.ForObject("", remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: crossNamespace, Name: "sentinel"})
			Eventually(func() []remediationv1alpha1.RemediationRequest {
				return rrsOf(ctx, crossNamespace, sentinelFP)
			}).WithContext(ctx).WithTimeout(2 * time.Minute).Should(HaveLen(1))

			victimFP := fingerprint.ForObject("", remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: metav1.NamespaceSystem, Name: victim})
			Expect(rrsOf(ctx, metav1.NamespaceSystem, victimFP)).To(BeEmpty())
			Expect(sum(eventSourceMetrics(ctx), "signal_event_source_events_refused_total", map[string]string{"reason": "other_namespace"})).
				To(Equal(refusedBefore + 1))
		})
	})
}

// countedSubmissions is how many Signals the event source had counted
// (outcome Created or Deduplicated), by its metrics.
func countedSubmissions(m map[string]*dto.MetricFamily) float64 {
	return sum(m, "signal_event_source_submissions_total", map[string]string{"result": "created"}) +
		sum(m, "signal_event_source_submissions_total", map[string]string{"result": "deduplicated"})
}

// backOffVersions adds up the counts of the BackOff Events in the crash
// loop's namespace.
func backOffVersions(ctx context.Context) int {
	events, err := kube.CoreV1().Events(crashNamespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.AndSelectors(fields.OneTermEqualSelector("reason", "BackOff"), fields.OneTermEqualSelector("type", corev1.EventTypeWarning)).String(),
	})
	Expect(err).NotTo(HaveOccurred())
	n := 0
	for _, e := range events.Items {
		switch {
		case e.Series != nil:
			n += int(e.Series.Count)
		case e.Count > 0:
			n += int(e.Count)
		default:
			n++
		}
	}
	return n
}

// counted reads the event source's log and returns the idempotency keys of
// the Signals it had counted (outcome Created or Deduplicated) for Events
// in the crash loop's namespace, with each Event's reason, and how many it
// had counted in all namespaces.
func counted(ctx context.Context, g Gomega) (keys map[string]string, total int) {
	pods := podsOf(ctx, serverNamespace, eventSourceName)
	g.Expect(pods).To(HaveLen(1))
	// The metrics and the log are the process's since it started.
	g.Expect(pods[0].Status.ContainerStatuses[0].RestartCount).To(BeZero())
	logs, err := kube.CoreV1().Pods(serverNamespace).GetLogs(pods[0].Name, &corev1.PodLogOptions{}).DoRaw(ctx)
	g.Expect(err).NotTo(HaveOccurred())
	events, err := kube.CoreV1().Events(crashNamespace).List(ctx, metav1.ListOptions{})
	g.Expect(err).NotTo(HaveOccurred())
	reasons := map[string]string{}
	for _, e := range events.Items {
		reasons[crashNamespace+"/"+e.Name] = e.Reason
	}
	keys = map[string]string{}
	for _, line := range strings.Split(string(logs), "\n") {
		if !submittedLine.MatchString(line) {
			continue
		}
		event, key, outcome := eventValue.FindStringSubmatch(line), keyValue.FindStringSubmatch(line), outcomeValue.FindStringSubmatch(line)
		g.Expect(event).NotTo(BeNil(), line)
		g.Expect(key).NotTo(BeNil(), line)
		g.Expect(outcome).NotTo(BeNil(), line)
		if outcome[1] != "Created" && outcome[1] != "Deduplicated" {
			continue
		}
		total++
		if strings.HasPrefix(event[1], crashNamespace+"/") {
			keys[key[1]] = reasons[event[1]]
		}
	}
	return keys, total
}

// windowOf is the key window of rr, one hex digest per key.
func windowOf(rr *remediationv1alpha1.RemediationRequest) []string {
	var digests []string
	window := rr.Status.Deduplication.IdempotencyKeys
	for i := 0; i+remediationv1alpha1.IdempotencyKeyDigestSize <= len(window); i += remediationv1alpha1.IdempotencyKeyDigestSize {
		digests = append(digests, hex.EncodeToString(window[i:i+remediationv1alpha1.IdempotencyKeyDigestSize]))
	}
	return digests
}

// digestsOf is the hex digest of every idempotency key in keys, as the
// key window stores it (the first bytes of its SHA-256).
func digestsOf(keys map[string]string) []string {
	var digests []string
	for key := range keys {
		sum := sha256.Sum256([]byte(key))
		digests = append(digests, hex.EncodeToString(sum[:remediationv1alpha1.IdempotencyKeyDigestSize]))
	}
	return digests
}
