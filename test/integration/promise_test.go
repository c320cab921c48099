package integration

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"sync"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// statusUpdateError applies mutate to the current RemediationRequest name
// and returns the error of the status update.
func statusUpdateError(ctx context.Context, name string, mutate func(*remediationv1alpha1.RemediationRequest)) error {
	rrs := admin.RemediationV1alpha1().RemediationRequests("default")
	current, err := rrs.Get(ctx, name, metav1.GetOptions{})
	Expect(err).NotTo(HaveOccurred())
	mutate(current)
	_, err = rrs.UpdateStatus(ctx, current, metav1.UpdateOptions{})
	return err
}

var _ = Describe("The RemediationRequest CRD, for any client", func() {
	It("refuses a new RemediationRequest not named after its fingerprint, and so a second one of a fingerprint", func(ctx SpecContext) {
		first, err := admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metaCreate)
		Expect(err).NotTo(HaveOccurred())
		Expect(first.Name).To(Equal(remediationv1alpha1.NameFor(first.Spec.SignalFingerprint)))

		rrs := admin.RemediationV1alpha1().RemediationRequests("default")
		other := &remediationv1alpha1.RemediationRequest{
			ObjectMeta: metav1.ObjectMeta{Name: "rr-" + first.Spec.SignalFingerprint[:16] + "-1"},
			Spec:       first.Spec,
		}
		_, err = rrs.Create(ctx, other, metaCreate)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("must be named rr-<first 60 hex digits of spec.signalFingerprint>"))

		other.GenerateName, other.Name = "rr-", ""
		_, err = rrs.Create(ctx, other, metaCreate)
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "generateName: %v", err)

		other.GenerateName, other.Name = "", first.Name
		_, err = rrs.Create(ctx, other, metaCreate)
		Expect(apierrors.IsAlreadyExists(err)).To(BeTrue(), "%v", err)
		Expect(rrsOf(ctx, "default", first.Spec.SignalFingerprint)).To(HaveLen(1))
	})

	It("lets signal-apiserver's ServiceAccount delete finished RemediationRequests only (artifacts/deploy/policy.yaml)", func(ctx SpecContext) {
		rr, err := admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metaCreate)
		Expect(err).NotTo(HaveOccurred())
		conf, err := cp.AddUser(controlplane.ServerUser, controlplane.ServerGroups)
		Expect(err).NotTo(HaveOccurred())
		asServer := versioned.NewForConfigOrDie(conf).RemediationV1alpha1().RemediationRequests("default")
		err = asServer.Delete(ctx, rr.Name, metav1.DeleteOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "%v", err)
		Expect(err.Error()).To(ContainSubstring("signal-apiserver may delete only finished RemediationRequests"))

		Expect(statusUpdateError(ctx, rr.Name, func(rr *remediationv1alpha1.RemediationRequest) {
			rr.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
		})).To(Succeed())
		Expect(asServer.Delete(ctx, rr.Name, metav1.DeleteOptions{})).To(Succeed())
	})

	It("keeps a terminal phase final and the count from decreasing whatever a status update leaves out", func(ctx SpecContext) {
		rr, err := admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metaCreate)
		Expect(err).NotTo(HaveOccurred())

		for what, mutate := range map[string]func(*remediationv1alpha1.RemediationRequest){
			"deduplication dropped": func(rr *remediationv1alpha1.RemediationRequest) { rr.Status.Deduplication = nil },
			"status dropped": func(rr *remediationv1alpha1.RemediationRequest) {
				rr.Status = remediationv1alpha1.RemediationRequestStatus{}
			},
			"count lowered": func(rr *remediationv1alpha1.RemediationRequest) { rr.Status.Deduplication.OccurrenceCount = 0 },
		} {
			err := statusUpdateError(ctx, rr.Name, mutate)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s: %v", what, err)
			Expect(err.Error()).To(ContainSubstring("occurrenceCount never decreases and is never removed"), what)
		}

		Expect(statusUpdateError(ctx, rr.Name, func(rr *remediationv1alpha1.RemediationRequest) {
			rr.Status.OverallPhase = remediationv1alpha1.PhaseFailed
		})).To(Succeed())
		for what, mutate := range map[string]func(*remediationv1alpha1.RemediationRequest){
			"phase dropped": func(rr *remediationv1alpha1.RemediationRequest) { rr.Status.OverallPhase = "" },
			"status dropped": func(rr *remediationv1alpha1.RemediationRequest) {
				rr.Status = remediationv1alpha1.RemediationRequestStatus{}
			},
			"phase changed": func(rr *remediationv1alpha1.RemediationRequest) {
				rr.Status.OverallPhase = remediationv1alpha1.PhasePending
			},
		} {
			err := statusUpdateError(ctx, rr.Name, mutate)
			Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s: %v", what, err)
			Expect(err.Error()).To(ContainSubstring("a terminal overallPhase is final"), what)
		}
		got, err := admin.RemediationV1alpha1().RemediationRequests("default").Get(ctx, rr.Name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(got.Status.OverallPhase).To(Equal(remediationv1alpha1.PhaseFailed))
		Expect(countOf(got)).To(Equal(int64(1)))
	})
})

var _ = Describe("An active RemediationRequest that is being deleted", func() {
	It("takes no counts: its signals get 503 with Retry-After until it is gone, then open the next one", func(ctx SpecContext) {
		s := newSignal("default")
		first, err := admin.SignalsV1().Signals().Create(ctx, s, metaCreate)
		Expect(err).NotTo(HaveOccurred())
		rrs := admin.RemediationV1alpha1().RemediationRequests("default")
		held, err := rrs.Get(ctx, first.Name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		held.Finalizers = append(held.Finalizers, "example.com/hold")
		_, err = rrs.Update(ctx, held, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rrs.Delete(ctx, first.Name, metav1.DeleteOptions{})).To(Succeed())

		// A plain HTTP client: client-go would retry the 503 by itself.
		httpClient, err := rest.HTTPClientFor(adminConf)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(httpClient.CloseIdleConnections)
		for range 3 {
			a := postSignal(httpClient, adminConf.Host, s)
			Expect(a.code).To(Equal(http.StatusServiceUnavailable), a.body)
			Expect(a.retryAfter).To(Equal("1"))
			Expect(a.body).To(ContainSubstring("still being deleted"))
		}
		deleting, err := rrs.Get(ctx, first.Name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(deleting.DeletionTimestamp).NotTo(BeNil())
		Expect(deleting.UID).To(Equal(first.UID))
		Expect(countOf(deleting)).To(Equal(int64(1)))

		deleting.Finalizers = nil
		_, err = rrs.Update(ctx, deleting, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		// The server's cache may still show it for a moment: 503 until then.
		var next rawAnswer
		Eventually(func() int {
			next = postSignal(httpClient, adminConf.Host, s)
			return next.code
		}).WithContext(ctx).Should(Equal(http.StatusCreated))
		var opened remediationv1alpha1.RemediationRequest
		Expect(json.Unmarshal([]byte(next.body), &opened)).To(Succeed())
		Expect(opened.Annotations).To(HaveKeyWithValue("signals.remediation.io/outcome", "Created"))
		Expect(opened.UID).NotTo(Equal(first.UID))
		Expect(countOf(&opened)).To(Equal(int64(1)))
		Expect(rrsOf(ctx, "default", fingerprintOf(s))).To(HaveLen(1))
	})
})

var _ = Describe("Signals about a namespace that cannot hold RemediationRequests", func() {
	It("get 422 naming spec.target.namespace, for a missing and for a terminating namespace, dry-run too", func(ctx SpecContext) {
		kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
		// Without kube-controller-manager a deleted namespace stays
		// Terminating: exactly the state to test.
		terminating, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "terminating-"}}, metaCreate)
		Expect(err).NotTo(HaveOccurred())
		Expect(kube.CoreV1().Namespaces().Delete(ctx, terminating.Name, metav1.DeleteOptions{})).To(Succeed())

		for _, ns := range []string{"does-not-exist", terminating.Name} {
			for _, dryRun := range [][]string{nil, {metav1.DryRunAll}} {
				s := newSignal(ns)
				_, err := admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{DryRun: dryRun})
				Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%s dry-run %v: %v", ns, dryRun, err)
				causes := err.(apierrors.APIStatus).Status().Details.Causes
				Expect(causes).To(HaveLen(1))
				Expect(causes[0].Field).To(Equal("spec.target.namespace"))
			}
		}
	})

	It("are Rejected one by one in an Alertmanager notification; the others are recorded", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		body := webhookBody(ns,
			webhookAlert("firing", ns, "ok-0", "a111111111111111"),
			webhookAlert("firing", "does-not-exist", "lost-0", "a222222222222222"),
		)
		code, raw := postNotification(ctx, adminConf, body, false)
		Expect(code).To(Equal(http.StatusCreated), string(raw))
		var got signalsv1.AlertmanagerNotification
		Expect(json.Unmarshal(raw, &got)).To(Succeed())
		Expect(got.Results).To(HaveLen(2))
		Expect(got.Results[0].Outcome).To(Equal("Created"))
		Expect(got.Results[1].Outcome).To(Equal("Rejected"))
		Expect(got.Results[1].Reason).To(Equal(metav1.StatusReasonInvalid))
		Expect(got.Results[1].Message).To(ContainSubstring("the namespace does not exist"))
		Expect(podRR(ctx, ns, "ok-0")()).To(haveCount(1))

		// A resend records nothing twice and is answered the same way.
		code, raw = postNotification(ctx, adminConf, body, false)
		Expect(code).To(Equal(http.StatusCreated), string(raw))
		Expect(json.Unmarshal(raw, &got)).To(Succeed())
		Expect(got.Results[0].Outcome).To(Equal("AlreadyCounted"))
		Expect(got.Results[1].Outcome).To(Equal("Rejected"))
	})
})

var _ = Describe("The idempotency-key window", func() {
	// sendKeyed sends one signal per key, 16 at a time, and returns the
	// outcomes.
	sendKeyed := func(ctx context.Context, s *signalsv1.Signal, keys []string) map[string]int {
		var mu sync.Mutex
		got := map[string]int{}
		work := make(chan string)
		var wg sync.WaitGroup
		for range 16 {
			wg.Add(1)
			go func() {
				defer GinkgoRecover()
				defer wg.Done()
				for key := range work {
					sig := s.DeepCopy()
					sig.Spec.IdempotencyKey = key
					rr, err := admin.SignalsV1().Signals().Create(ctx, sig, metaCreate)
					Expect(err).NotTo(HaveOccurred())
					mu.Lock()
					got[rr.Annotations[signalsv1.AnnotationOutcome]]++
					mu.Unlock()
				}
			}()
		}
		for _, k := range keys {
			work <- k
		}
		close(work)
		wg.Wait()
		return got
	}
	keys := func(prefix string, n int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%s/%d", prefix, i)
		}
		return out
	}

	It("counts 1,000 distinct deliveries once each, however often they are all resent", func(ctx SpecContext) {
		s := newSignal("default")
		first := keys("am/"+s.Spec.Target.Name, 1000)
		got := sendKeyed(ctx, s, first)
		Expect(got["Created"] + got["Deduplicated"]).To(Equal(1000))
		Expect(sendKeyed(ctx, s, first)).To(Equal(map[string]int{"AlreadyCounted": 1000}))
		rrs := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(Equal(int64(1000)))
		Expect(keysIn(&rrs[0])).To(Equal(1000))
		Expect(rrs[0].Status.Deduplication.EvictedIdempotencyKeys).To(BeZero())
		Expect(meta.FindStatusCondition(rrs[0].Status.Conditions, remediationv1alpha1.ConditionIdempotencyKeysEvicted)).To(BeNil())
	})

	It("makes an overflow visible in the RemediationRequest and a metric, never silent", func(ctx SpecContext) {
		before := value(scrape(ctx), "signal_apiserver_idempotency_keys_evicted_total", nil)
		s := newSignal("default")
		all := keys("ev/"+s.Spec.Target.Name, remediationv1alpha1.MaxIdempotencyKeys+6)
		got := sendKeyed(ctx, s, all)
		Expect(got["Created"] + got["Deduplicated"]).To(Equal(len(all)))
		rrs := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		rr := &rrs[0]
		Expect(countOf(rr)).To(Equal(int64(len(all))))
		Expect(keysIn(rr)).To(Equal(remediationv1alpha1.MaxIdempotencyKeys))
		Expect(rr.Status.Deduplication.EvictedIdempotencyKeys).To(Equal(int64(6)))
		c := meta.FindStatusCondition(rr.Status.Conditions, remediationv1alpha1.ConditionIdempotencyKeysEvicted)
		Expect(c).NotTo(BeNil())
		Expect(c.Status).To(Equal(metav1.ConditionTrue))
		Expect(c.Message).To(HavePrefix("6 idempotency keys were evicted"))
		Expect(value(scrape(ctx), "signal_apiserver_idempotency_keys_evicted_total", nil) - before).To(Equal(6.0))
		Expect(strings.Count(c.Message, "counted again")).To(Equal(1))
	})
})
