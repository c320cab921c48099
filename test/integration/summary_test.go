package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
)

// maxSummaryBytes is the documented bound of status.signalSummary in JSON
// (docs/dedup.md, "What a RemediationRequest says about its signals").
const maxSummaryBytes = 32 * 1024

// serviceAccountSender returns a client that sends as a new ServiceAccount
// of namespace, with a token from the TokenRequest API, bound to the
// signal-sender ClusterRole and to nothing else.
func serviceAccountSender(ctx context.Context, namespace string) versioned.Interface {
	kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	name := "sender-" + rand.String(8)
	_, err := kube.CoreV1().ServiceAccounts(namespace).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	binding := &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: namespace + "-" + name},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "signal-sender"},
		Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: namespace, Name: name}},
	}
	_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx, binding, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx context.Context) {
		Expect(kube.RbacV1().ClusterRoleBindings().Delete(ctx, binding.Name, metav1.DeleteOptions{})).To(Succeed())
	})
	token, err := kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	conf := rest.AnonymousClientConfig(cp.RESTConfig())
	conf.BearerToken = token.Status.Token
	return versioned.NewForConfigOrDie(highQPS(conf))
}

// deploymentSignal is a signal about the Deployment target in namespace.
func deploymentSignal(namespace, target, name, severity string, status signalsv1.SignalStatus) *signalsv1.Signal {
	return &signalsv1.Signal{Spec: signalsv1.SignalSpec{
		Source:   "integration-test",
		Name:     name,
		Severity: severity,
		Status:   status,
		Target:   signalsv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: namespace, Name: target},
	}}
}

// summaryOf reads the one RemediationRequest of the Deployment from
// kube-apiserver.
func summaryOf(ctx context.Context, namespace, deployment string) func() (*remediationv1alpha1.RemediationRequest, error) {
	return func() (*remediationv1alpha1.RemediationRequest, error) {
		rrs := rrsOf(ctx, namespace, deploymentFingerprint(namespace, deployment))
		if len(rrs) != 1 {
			return nil, fmt.Errorf("%d RemediationRequests of Deployment %s/%s", len(rrs), namespace, deployment)
		}
		return &rrs[0], nil
	}
}

// signalCounts is each entry's count by name, with otherSignals' as "".
func signalCounts(rr *remediationv1alpha1.RemediationRequest) map[string]int64 {
	counts := map[string]int64{}
	s := rr.Status.SignalSummary
	if s == nil {
		return counts
	}
	for _, e := range s.Signals {
		counts[e.Name] = e.Count
	}
	if s.OtherSignals != nil {
		counts[""] = s.OtherSignals.Count
	}
	return counts
}

// sumOf is the sum of the counts of the summary.
func sumOf(counts map[string]int64) int64 {
	var sum int64
	for _, n := range counts {
		sum += n
	}
	return sum
}

// signalStates is each entry's state by name.
func signalStates(rr *remediationv1alpha1.RemediationRequest) map[string]remediationv1alpha1.SignalState {
	states := map[string]remediationv1alpha1.SignalState{}
	if s := rr.Status.SignalSummary; s != nil {
		for _, e := range s.Signals {
			states[e.Name] = e.State
		}
	}
	return states
}

// conditionStatus is the status of rr's condition typ, "absent" if it has
// none.
func conditionStatus(rr *remediationv1alpha1.RemediationRequest) func(typ string) string {
	return func(typ string) string {
		c := meta.FindStatusCondition(rr.Status.Conditions, typ)
		if c == nil {
			return "absent"
		}
		return string(c.Status)
	}
}

// haveSignalsResolved matches a RemediationRequest whose SignalsResolved
// condition has status.
func haveSignalsResolved(status string) OmegaMatcher {
	return WithTransform(func(rr *remediationv1alpha1.RemediationRequest) string {
		return conditionStatus(rr)(remediationv1alpha1.ConditionSignalsResolved)
	}, Equal(status))
}

var _ = Describe("The signal summary", func() {
	It("records 3 alert names of 3 severities from the Signal API: exact counts, the highest severity, Escalated, SignalsResolved", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		sender := serviceAccountSender(ctx, ns)
		target := "checkout-" + rand.String(6)
		send := func(name, severity string, status signalsv1.SignalStatus, times int) *remediationv1alpha1.RemediationRequest {
			var rr *remediationv1alpha1.RemediationRequest
			for range times {
				var err error
				rr, err = sender.SignalsV1().Signals().Create(ctx, deploymentSignal(ns, target, name, severity, status), metaCreate)
				Expect(err).NotTo(HaveOccurred())
			}
			return rr
		}

		rr := send("KubePodCrashLooping", "warning", signalsv1.SignalStatusFiring, 2)
		Expect(rr.Status.SignalSummary.HighestSeverity).To(Equal("warning"))
		Expect(conditionStatus(rr)(remediationv1alpha1.ConditionEscalated)).To(Equal("absent"))
		Expect(conditionStatus(rr)(remediationv1alpha1.ConditionSignalsResolved)).To(Equal("False"))

		send("KubeDeploymentReplicasMismatch", "Error", signalsv1.SignalStatusFiring, 3)
		rr = send("HighErrorRate", "CRITICAL", signalsv1.SignalStatusFiring, 4)
		esc := meta.FindStatusCondition(rr.Status.Conditions, remediationv1alpha1.ConditionEscalated)
		Expect(esc).NotTo(BeNil())
		Expect(esc.Status).To(Equal(metav1.ConditionTrue))
		Expect(esc.Message).To(Equal("critical HighErrorRate from integration-test raised the highest severity from high to critical"))

		By("resolving 2 of the 3")
		send("KubePodCrashLooping", "", signalsv1.SignalStatusResolved, 1)
		rr = send("HighErrorRate", "", signalsv1.SignalStatusResolved, 1)
		Expect(rr).To(haveSignalsResolved("False"))
		Expect(meta.FindStatusCondition(rr.Status.Conditions, remediationv1alpha1.ConditionSignalsResolved).Message).
			To(Equal("still firing: KubeDeploymentReplicasMismatch"))
		Expect(signalStates(rr)).To(Equal(map[string]remediationv1alpha1.SignalState{
			"KubePodCrashLooping": "Resolved", "KubeDeploymentReplicasMismatch": "Firing", "HighErrorRate": "Resolved",
		}))

		By("reading back what is stored")
		stored, err := summaryOf(ctx, ns, target)()
		Expect(err).NotTo(HaveOccurred())
		Expect(signalCounts(stored)).To(Equal(map[string]int64{"KubePodCrashLooping": 2, "KubeDeploymentReplicasMismatch": 3, "HighErrorRate": 4}))
		Expect(countOf(stored)).To(Equal(int64(9)))
		Expect(stored.Status.SignalSummary.HighestSeverity).To(Equal("critical"))
		Expect(stored.Status.SignalSummary.Signals[1].HighestSeverity).To(Equal("high"))
		Expect(stored).To(haveSignalsResolved("False"))
		out, err := kubectl(ctx, "get", "rr", "-n", ns, "-o", "custom-columns=SEVERITY:.status.signalSummary.highestSeverity", "--no-headers")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(Equal("critical\n"))
		out, err = kubectl(ctx, "get", "rr", "-n", ns)
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`(?m)^NAME +# +PHASE +TARGET KIND +TARGET +SEVERITY +OCCURRENCES .*\n\S+ +1 +Deployment +%s +critical +9 `, target))

		out, err = kubectl(ctx, "explain", "rr.status.signalSummary.otherSignals.count")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(ContainSubstring("count is how many firing signals without an entry were counted."))

		By("resolving the last one")
		rr = send("KubeDeploymentReplicasMismatch", "", signalsv1.SignalStatusResolved, 1)
		Expect(rr).To(haveSignalsResolved("True"))
		Expect(rr.Status.Deduplication.LastResolvedAt).NotTo(BeNil())

		By("firing one again")
		rr = send("HighErrorRate", "critical", signalsv1.SignalStatusFiring, 1)
		Expect(rr).To(haveSignalsResolved("False"))
		Expect(sumOf(signalCounts(rr))).To(Equal(countOf(rr)))
		Expect(countOf(rr)).To(Equal(int64(10)))

		By("a status write whose summary does not sum to occurrenceCount, from any client")
		stored, err = summaryOf(ctx, ns, target)()
		Expect(err).NotTo(HaveOccurred())
		stored.Status.SignalSummary.Signals[0].Count++
		_, err = admin.RemediationV1alpha1().RemediationRequests(ns).UpdateStatus(ctx, stored, metav1.UpdateOptions{})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("the counts of status.signalSummary sum to status.deduplication.occurrenceCount"))
	})

	It("keeps a storm of 1,000 signals over 200 names about one target within its bound, counts exact, the rest in otherSignals", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		sender := serviceAccountSender(ctx, ns)
		target := "storm-" + rand.String(6)
		const names, perName, workers = 200, 5, 20
		work := make(chan int)
		var wg sync.WaitGroup
		var mu sync.Mutex
		var failures []error
		for range workers {
			wg.Go(func() {
				for i := range work {
					s := deploymentSignal(ns, target, fmt.Sprintf("StormAlert%03d", i%names), "warning", signalsv1.SignalStatusFiring)
					if _, err := sender.SignalsV1().Signals().Create(ctx, s, metaCreate); err != nil {
						mu.Lock()
						failures = append(failures, err)
						mu.Unlock()
					}
				}
			})
		}
		for i := range names * perName {
			work <- i
		}
		close(work)
		wg.Wait()
		Expect(failures).To(BeEmpty())

		rr, err := summaryOf(ctx, ns, target)()
		Expect(err).NotTo(HaveOccurred())
		Expect(countOf(rr)).To(Equal(int64(names * perName)))
		s := rr.Status.SignalSummary
		Expect(s.Signals).To(HaveLen(remediationv1alpha1.MaxSignalRecords))
		// An entry, once there, takes every later signal of its name: the
		// names that got one got it with their first signal.
		for _, e := range s.Signals {
			Expect(e.Count).To(Equal(int64(perName)), e.Name)
		}
		Expect(s.OtherSignals).NotTo(BeNil())
		Expect(s.OtherSignals.Count).To(Equal(int64((names - remediationv1alpha1.MaxSignalRecords) * perName)))
		Expect(sumOf(signalCounts(rr))).To(Equal(countOf(rr)))

		raw, err := admin.RemediationV1alpha1().RESTClient().Get().
			AbsPath("/apis/remediation.io/v1alpha1/namespaces", ns, "remediationrequests", rr.Name).DoRaw(ctx)
		Expect(err).NotTo(HaveOccurred())
		summary, err := json.Marshal(s)
		Expect(err).NotTo(HaveOccurred())
		GinkgoWriter.Printf("after the storm: RemediationRequest %d bytes of JSON, status.signalSummary %d\n", len(raw), len(summary))
		Expect(len(summary)).To(BeNumerically("<=", maxSummaryBytes))
		Expect(len(raw)).To(BeNumerically("<=", 16*1024))
	})
})

var _ = Describe("The signal summary from a real Alertmanager", Ordered, func() {
	var am *alertmanager

	BeforeAll(func(ctx SpecContext) {
		am = startAlertmanager(ctx, alertmanagerToken(ctx))
	})

	deploymentAlert := func(group, namespace, deployment, alertname, severity string, startsAt time.Time) amAlert {
		return amAlert{
			Labels: map[string]string{
				"alertname": alertname, "group": group, "namespace": namespace, "deployment": deployment, "severity": severity,
			},
			StartsAt: startsAt,
		}
	}
	resolved := func(a amAlert) amAlert {
		ended := time.Now().Add(-time.Second)
		a.EndsAt = &ended
		return a
	}

	It("records 3 alert names of 3 severities: one entry each, critical, Escalated, SignalsResolved only when all resolved", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		group := "g-" + rand.String(6)
		target := "checkout-" + rand.String(6)
		start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		crash := deploymentAlert(group, ns, target, "KubePodCrashLooping", "warning", start)
		mismatch := deploymentAlert(group, ns, target, "KubeDeploymentReplicasMismatch", "error", start)
		errorRate := deploymentAlert(group, ns, target, "HighErrorRate", "critical", start)

		am.post(ctx, crash)
		Eventually(summaryOf(ctx, ns, target)).WithContext(ctx).Should(haveCount(1))
		// Alertmanager sends the whole group again with each new alert;
		// what it sent before is counted once.
		am.post(ctx, mismatch, errorRate)
		Eventually(summaryOf(ctx, ns, target)).WithContext(ctx).Should(haveCount(3))

		rr, err := summaryOf(ctx, ns, target)()
		Expect(err).NotTo(HaveOccurred())
		Expect(signalCounts(rr)).To(Equal(map[string]int64{"KubePodCrashLooping": 1, "KubeDeploymentReplicasMismatch": 1, "HighErrorRate": 1}))
		Expect(rr.Status.SignalSummary.HighestSeverity).To(Equal("critical"))
		Expect(rr.Status.SignalSummary.Signals[0].Source).To(Equal("alertmanager"))
		Expect(conditionStatus(rr)(remediationv1alpha1.ConditionEscalated)).To(Equal("True"))
		Expect(rr).To(haveSignalsResolved("False"))

		By("resolving 2 of the 3")
		am.post(ctx, resolved(crash), resolved(errorRate))
		Eventually(func() (map[string]remediationv1alpha1.SignalState, error) {
			rr, err := summaryOf(ctx, ns, target)()
			if err != nil {
				return nil, err
			}
			return signalStates(rr), nil
		}).WithContext(ctx).Should(Equal(map[string]remediationv1alpha1.SignalState{
			"KubePodCrashLooping": "Resolved", "KubeDeploymentReplicasMismatch": "Firing", "HighErrorRate": "Resolved",
		}))
		rr, err = summaryOf(ctx, ns, target)()
		Expect(err).NotTo(HaveOccurred())
		Expect(rr).To(haveSignalsResolved("False"))

		By("resolving the last one")
		am.post(ctx, resolved(mismatch))
		Eventually(summaryOf(ctx, ns, target)).WithContext(ctx).Should(haveSignalsResolved("True"))
		rr, err = summaryOf(ctx, ns, target)()
		Expect(err).NotTo(HaveOccurred())
		Expect(signalCounts(rr)).To(Equal(map[string]int64{"KubePodCrashLooping": 1, "KubeDeploymentReplicasMismatch": 1, "HighErrorRate": 1}))
		Expect(countOf(rr)).To(Equal(int64(3)))
	})

	It("keeps an alert name firing while one of its instances fires", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		group := "g-" + rand.String(6)
		target := "api-" + rand.String(6)
		start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		first := deploymentAlert(group, ns, target, "KubePodCrashLooping", "warning", start)
		first.Labels["instance"] = "10.0.0.1:8080"
		second := deploymentAlert(group, ns, target, "KubePodCrashLooping", "warning", start)
		second.Labels["instance"] = "10.0.0.2:8080"
		am.post(ctx, first, second)
		Eventually(summaryOf(ctx, ns, target)).WithContext(ctx).Should(haveCount(2))

		// Alertmanager sends the second, still firing, with the first's
		// resolution.
		am.post(ctx, resolved(first))
		var rr *remediationv1alpha1.RemediationRequest
		Eventually(func() (*metav1.Time, error) {
			var err error
			rr, err = summaryOf(ctx, ns, target)()
			if err != nil {
				return nil, err
			}
			return rr.Status.SignalSummary.Signals[0].LastResolvedAt, nil
		}).WithContext(ctx).ShouldNot(BeNil())
		Expect(signalCounts(rr)).To(Equal(map[string]int64{"KubePodCrashLooping": 2}))
		Expect(signalStates(rr)).To(Equal(map[string]remediationv1alpha1.SignalState{"KubePodCrashLooping": "Firing"}))
		Expect(rr).To(haveSignalsResolved("False"))

		am.post(ctx, resolved(second))
		Eventually(summaryOf(ctx, ns, target)).WithContext(ctx).Should(haveSignalsResolved("True"))
	})

	It("shows a group of five alert names about one Deployment as five entries", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		group := "g-" + rand.String(6)
		target := "web-" + rand.String(6)
		start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		var alerts []amAlert
		want := map[string]int64{}
		for i, severity := range []string{"info", "warning", "warning", "critical", "page"} {
			name := fmt.Sprintf("Alert%d", i)
			alerts = append(alerts, deploymentAlert(group, ns, target, name, severity, start))
			want[name] = 1
		}
		am.post(ctx, alerts...)
		Eventually(summaryOf(ctx, ns, target)).WithContext(ctx).Should(haveCount(5))
		rr, err := summaryOf(ctx, ns, target)()
		Expect(err).NotTo(HaveOccurred())
		Expect(signalCounts(rr)).To(Equal(want))
		Expect(rr.Status.SignalSummary.HighestSeverity).To(Equal("critical"))
	})
})
