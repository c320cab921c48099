package integration

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// statusUpdateAs applies mutate to the current RemediationRequest and
// updates its status as client.
func statusUpdateAs(ctx context.Context, client versioned.Interface, rr *remediationv1alpha1.RemediationRequest, mutate func(*remediationv1alpha1.RemediationRequest)) error {
	rrs := client.RemediationV1alpha1().RemediationRequests(rr.Namespace)
	return retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := admin.RemediationV1alpha1().RemediationRequests(rr.Namespace).Get(ctx, rr.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		mutate(current)
		_, err = rrs.UpdateStatus(ctx, current, metav1.UpdateOptions{})
		return err
	})
}

// expectForbidden expects err to be the 403 of a policy of
// artifacts/deploy/policy.yaml with message.
func expectForbidden(err error, message string) {
	GinkgoHelper()
	Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
	Expect(err.Error()).To(ContainSubstring(message))
}

const (
	phaseMessage      = "signal-apiserver may not change status.overallPhase"
	dedupMessage      = "only signal-apiserver may change status.deduplication"
	recurrenceMessage = "only signal-apiserver may change status.recurrence"
)

// The policies of artifacts/deploy/policy.yaml, for real ServiceAccount
// tokens: the server's, a remediation controller's, and the server's
// ServiceAccount installed in another namespace.
var _ = Describe("Who may write which parts of a RemediationRequest (artifacts/deploy/policy.yaml)", Ordered, func() {
	var (
		kube       kubernetes.Interface
		server     versioned.Interface
		controller versioned.Interface
	)

	BeforeAll(func(ctx SpecContext) {
		kube = kubernetes.NewForConfigOrDie(cp.RESTConfig())
		server = versioned.NewForConfigOrDie(tokenConfig(ctx, controlplane.ServerNamespace, "signal-apiserver"))

		// A remediation controller: it may read RRs and update their
		// status, as RBAC allows it, and nothing else.
		_, err := kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "remediation-controller"}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = kube.RbacV1().ClusterRoles().Create(ctx, &rbacv1.ClusterRole{
			ObjectMeta: metav1.ObjectMeta{Name: "test-remediation-controller"},
			Rules: []rbacv1.PolicyRule{
				{APIGroups: []string{remediationv1alpha1.GroupName}, Resources: []string{"remediationrequests"}, Verbs: []string{"get", "list", "watch"}},
				{APIGroups: []string{remediationv1alpha1.GroupName}, Resources: []string{"remediationrequests/status"}, Verbs: []string{"update", "patch"}},
			},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: "test-remediation-controller"},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "test-remediation-controller"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: "default", Name: "remediation-controller"}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		controller = versioned.NewForConfigOrDie(tokenConfig(ctx, "default", "remediation-controller"))
	})

	It("refuses the server's identity a phase, finished or not, and lets it count", func(ctx SpecContext) {
		rr, err := admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metaCreate)
		Expect(err).NotTo(HaveOccurred())
		for _, phase := range []remediationv1alpha1.Phase{remediationv1alpha1.PhaseProcessing, remediationv1alpha1.PhaseCancelled} {
			expectForbidden(statusUpdateAs(ctx, server, rr, func(rr *remediationv1alpha1.RemediationRequest) {
				rr.Status.OverallPhase = phase
			}), phaseMessage)
		}
		// So it cannot finish a remediation in progress to delete it.
		expectForbidden(server.RemediationV1alpha1().RemediationRequests("default").Delete(ctx, rr.Name, metav1.DeleteOptions{}),
			"signal-apiserver may delete only finished RemediationRequests")
		Expect(statusUpdateAs(ctx, server, rr, func(rr *remediationv1alpha1.RemediationRequest) {
			rr.Status.Deduplication.OccurrenceCount++
			// The summary's counts must go on summing to the count.
			rr.Status.SignalSummary.Signals[0].Count++
		})).To(Succeed())
		got, err := admin.RemediationV1alpha1().RemediationRequests("default").Get(ctx, rr.Name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(got.Status.OverallPhase).To(BeEmpty())
		Expect(countOf(got)).To(Equal(int64(2)))
	})

	It("refuses anyone else a change to the count or the idempotency-key window, and lets them set the phase and conditions", func(ctx SpecContext) {
		s := newSignal("default")
		s.Spec.IdempotencyKey = "key-1"
		rr, err := admin.SignalsV1().Signals().Create(ctx, s, metaCreate)
		Expect(err).NotTo(HaveOccurred())
		for what, mutate := range map[string]func(*remediationv1alpha1.RemediationRequest){
			// What a controller's own Go type without the server's fields
			// writes back.
			"key window dropped": func(rr *remediationv1alpha1.RemediationRequest) { rr.Status.Deduplication.IdempotencyKeys = nil },
			// The summary raised with it, so the CRD's sum rule holds and
			// the policy is what refuses it.
			"count raised": func(rr *remediationv1alpha1.RemediationRequest) {
				rr.Status.SignalSummary.Signals[0].Count += 1000 - rr.Status.Deduplication.OccurrenceCount
				rr.Status.Deduplication.OccurrenceCount = 1000
			},
			"lastSeenAt changed": func(rr *remediationv1alpha1.RemediationRequest) {
				rr.Status.Deduplication.LastSeenAt = metav1.NewTime(rr.Status.Deduplication.LastSeenAt.Add(-3600e9))
			},
		} {
			By(what)
			expectForbidden(statusUpdateAs(ctx, controller, rr, mutate), dedupMessage)
		}
		Expect(statusUpdateAs(ctx, controller, rr, func(rr *remediationv1alpha1.RemediationRequest) {
			rr.Status.OverallPhase = remediationv1alpha1.PhaseExecuting
			meta.SetStatusCondition(&rr.Status.Conditions, metav1.Condition{Type: "Executing", Status: metav1.ConditionTrue, Reason: "Started", Message: "restarting"})
		})).To(Succeed())
		got, err := admin.RemediationV1alpha1().RemediationRequests("default").Get(ctx, rr.Name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(got.Status.OverallPhase).To(Equal(remediationv1alpha1.PhaseExecuting))
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, "Executing")).To(BeTrue())
		Expect(countOf(got)).To(Equal(int64(1)))
		Expect(keysIn(got)).To(Equal(1))

		// The server still counts on it.
		again, err := admin.SignalsV1().Signals().Create(ctx, newSignalLike(s, "key-2"), metaCreate)
		Expect(err).NotTo(HaveOccurred())
		Expect(countOf(again)).To(Equal(int64(2)))
	})

	It("refuses anyone else a change to the hold of a finished RemediationRequest, and lets them add conditions", func(ctx SpecContext) {
		rr, err := admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metaCreate)
		Expect(err).NotTo(HaveOccurred())
		Expect(statusUpdateAs(ctx, controller, rr, func(rr *remediationv1alpha1.RemediationRequest) {
			rr.Status.OverallPhase = remediationv1alpha1.PhaseFailed
		})).To(Succeed())
		// What the server writes when it finds the remediation finished
		// (this suite's server runs without holds, so the test writes it
		// with the server's own token).
		finishedAt := metav1.NewTime(time.Now().Truncate(time.Second))
		next := metav1.NewTime(finishedAt.Add(time.Minute))
		Expect(statusUpdateAs(ctx, server, rr, func(rr *remediationv1alpha1.RemediationRequest) {
			rr.Status.Recurrence = &remediationv1alpha1.RecurrenceStatus{
				FinishedAt: &finishedAt, Hold: remediationv1alpha1.HoldHeld, NextRemediationAt: &next, ConsecutiveFailures: 1,
			}
		})).To(Succeed())
		for what, mutate := range map[string]func(*remediationv1alpha1.RemediationRequest){
			// What a controller's own Go type without the field writes back.
			"recurrence dropped": func(rr *remediationv1alpha1.RemediationRequest) { rr.Status.Recurrence = nil },
			"hold released":      func(rr *remediationv1alpha1.RemediationRequest) { rr.Status.Recurrence.Hold = "" },
			"finish moved": func(rr *remediationv1alpha1.RemediationRequest) {
				earlier := metav1.NewTime(finishedAt.Add(-time.Hour))
				rr.Status.Recurrence.FinishedAt = &earlier
			},
		} {
			By(what)
			expectForbidden(statusUpdateAs(ctx, controller, rr, mutate), recurrenceMessage)
		}
		Expect(statusUpdateAs(ctx, controller, rr, func(rr *remediationv1alpha1.RemediationRequest) {
			meta.SetStatusCondition(&rr.Status.Conditions, metav1.Condition{Type: "RolledBack", Status: metav1.ConditionTrue, Reason: "Failed", Message: "rolled back"})
		})).To(Succeed())
		got, err := admin.RemediationV1alpha1().RemediationRequests("default").Get(ctx, rr.Name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(meta.IsStatusConditionTrue(got.Status.Conditions, "RolledBack")).To(BeTrue())
		Expect(got.Status.Recurrence.Hold).To(Equal(remediationv1alpha1.HoldHeld))
		Expect(got.Status.Recurrence.FinishedAt.Equal(&finishedAt)).To(BeTrue())
	})

	It("follows the server's ServiceAccount to another namespace through its ClusterRoleBinding", func(ctx SpecContext) {
		// Installed elsewhere: the server's ServiceAccount lives in another
		// namespace, and the binding names it there.
		moved := "moved-" + rand.String(6)
		_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: moved}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		_, err = kube.CoreV1().ServiceAccounts(moved).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: "signal-apiserver"}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		// What an install elsewhere binds: the server's ClusterRole to the
		// ServiceAccount there.
		bindings := kube.RbacV1().ClusterRoleBindings()
		_, err = bindings.Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: moved},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "signal-apiserver"},
			Subjects:   []rbacv1.Subject{{Kind: rbacv1.ServiceAccountKind, Namespace: moved, Name: "signal-apiserver"}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx context.Context) {
			Expect(bindings.Delete(ctx, moved, metav1.DeleteOptions{})).To(Succeed())
		})
		movedServer := versioned.NewForConfigOrDie(tokenConfig(ctx, moved, "signal-apiserver"))

		rr, err := admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metaCreate)
		Expect(err).NotTo(HaveOccurred())
		// RBAC's informer sees the new binding soon, not at once.
		Eventually(func() error {
			return statusUpdateAs(ctx, movedServer, rr, func(rr *remediationv1alpha1.RemediationRequest) {
				// The summary counts with it (the CRD's sum rule).
				rr.Status.Deduplication.OccurrenceCount++
				rr.Status.SignalSummary.Signals[0].Count++
			})
		}).WithContext(ctx).Should(Succeed())
		expectForbidden(statusUpdateAs(ctx, movedServer, rr, func(rr *remediationv1alpha1.RemediationRequest) {
			rr.Status.OverallPhase = remediationv1alpha1.PhaseCancelled
		}), phaseMessage)
		expectForbidden(movedServer.RemediationV1alpha1().RemediationRequests("default").Delete(ctx, rr.Name, metav1.DeleteOptions{}),
			"signal-apiserver may delete only finished RemediationRequests")
		Expect(statusUpdateAs(ctx, controller, rr, func(rr *remediationv1alpha1.RemediationRequest) {
			rr.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
		})).To(Succeed())
		Expect(movedServer.RemediationV1alpha1().RemediationRequests("default").Delete(ctx, rr.Name, metav1.DeleteOptions{})).To(Succeed())
	})

	It("names no namespace: the server is the ServiceAccount RBAC grants deduplicate", func() {
		policy, err := os.ReadFile(filepath.Join(repoRoot, "artifacts", "deploy", "policy.yaml"))
		Expect(err).NotTo(HaveOccurred())
		Expect(string(policy)).NotTo(ContainSubstring("system:serviceaccount:" + controlplane.ServerNamespace))
		Expect(strings.Count(string(policy), "check('deduplicate')")).To(Equal(2))
	})
})

// newSignalLike is s with another idempotency key.
func newSignalLike(s *signalsv1.Signal, key string) *signalsv1.Signal {
	c := s.DeepCopy()
	c.Spec.IdempotencyKey = key
	return c
}
