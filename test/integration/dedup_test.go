package integration

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
)

var _ = Describe("Deduplication", func() {
	It("counts 5 concurrent identical signals on exactly 1 RemediationRequest, 20 times over", func(ctx SpecContext) {
		for round := range 20 {
			s := newSignal("default")
			results := sendConcurrently(ctx, s, 5, admin)
			Expect(outcomes(results)).To(Equal(map[string]int{"Created": 1, "Deduplicated": 4}), "round %d", round)

			rrs := rrsOf(ctx, "default", fingerprintOf(s))
			Expect(rrs).To(HaveLen(1), "round %d", round)
			Expect(countOf(&rrs[0])).To(Equal(int64(5)), "round %d", round)
			for _, r := range results {
				Expect(r.rr.Name).To(Equal(rrs[0].Name))
			}
		}
	})

	It("counts 1 signal and then 3 concurrent duplicates as 4", func(ctx SpecContext) {
		s := newSignal("default")
		first, err := admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(countOf(first)).To(Equal(int64(1)))

		Expect(outcomes(sendConcurrently(ctx, s, 3, admin))).To(Equal(map[string]int{"Deduplicated": 3}))
		rrs := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		Expect(rrs[0].Name).To(Equal(first.Name))
		Expect(countOf(&rrs[0])).To(Equal(int64(4)))
	})

	It("counts 200 concurrent identical signals on exactly 1 RemediationRequest", func(ctx SpecContext) {
		s := newSignal("default")
		results := sendConcurrently(ctx, s, 200, admin)
		Expect(outcomes(results)).To(Equal(map[string]int{"Created": 1, "Deduplicated": 199}))

		rrs := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(Equal(int64(200)))
		// Every answer is the RemediationRequest as it stood after that
		// signal was counted, so the answers' counts are all different
		// except where signals shared a write.
		var highest int64
		for _, r := range results {
			highest = max(highest, countOf(r.rr))
		}
		Expect(highest).To(Equal(int64(200)))
	})

	It("replaces a terminal RemediationRequest at the same name with the next one, which summarizes it", func(ctx SpecContext) {
		s := newSignal("default")
		first, err := admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(first.Spec.RemediationNumber).To(Equal(int64(1)))
		Expect(first.Spec.History).To(BeEmpty())

		rrs := admin.RemediationV1alpha1().RemediationRequests("default")
		old, err := rrs.Get(ctx, first.Name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		old.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
		_, err = rrs.UpdateStatus(ctx, old, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())

		results := sendConcurrently(ctx, s, 5, admin)
		Expect(outcomes(results)).To(Equal(map[string]int{"Created": 1, "Deduplicated": 4}))
		all := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(all).To(HaveLen(1))
		next := all[0]
		Expect(next.Name).To(Equal(first.Name))
		Expect(next.UID).NotTo(Equal(first.UID))
		Expect(next.Status.OverallPhase.IsTerminal()).To(BeFalse())
		Expect(countOf(&next)).To(Equal(int64(5)))
		Expect(next.Spec.RemediationNumber).To(Equal(int64(2)))
		Expect(next.Spec.Previous).To(BeNil())
		Expect(next.Spec.History).To(Equal([]remediationv1alpha1.RemediationRecord{{
			UID: first.UID, RemediationNumber: 1, Phase: remediationv1alpha1.PhaseCompleted, OccurrenceCount: 1,
			OpenedAt: &first.Status.Deduplication.FirstSeenAt,
		}}))
	})

	It("creates a deleted active RemediationRequest again at the same name", func(ctx SpecContext) {
		s := newSignal("default")
		first, err := admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(admin.RemediationV1alpha1().RemediationRequests("default").Delete(ctx, first.Name, metav1.DeleteOptions{})).To(Succeed())

		results := sendConcurrently(ctx, s, 5, admin)
		Expect(outcomes(results)).To(Equal(map[string]int{"Created": 1, "Deduplicated": 4}))
		rrs := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		Expect(rrs[0].Name).To(Equal(first.Name))
		Expect(rrs[0].UID).NotTo(Equal(first.UID))
		Expect(countOf(&rrs[0])).To(Equal(int64(5)))
	})

	It("opens a new RemediationRequest, number 1 again, when retention deleted the terminal one", func(ctx SpecContext) {
		s := newSignal("default")
		first, err := admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		rrs := admin.RemediationV1alpha1().RemediationRequests("default")
		current, err := rrs.Get(ctx, first.Name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		current.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
		_, err = rrs.UpdateStatus(ctx, current, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rrs.Delete(ctx, first.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &first.UID}})).To(Succeed())

		Expect(outcomes(sendConcurrently(ctx, s, 5, admin))).To(Equal(map[string]int{"Created": 1, "Deduplicated": 4}))
		all := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(all).To(HaveLen(1))
		Expect(all[0].Name).To(Equal(first.Name))
		Expect(all[0].UID).NotTo(Equal(first.UID))
		Expect(countOf(&all[0])).To(Equal(int64(5)))
		Expect(all[0].Spec.RemediationNumber).To(Equal(int64(1)))
		Expect(all[0].Spec.History).To(BeEmpty())
	})

	It("refuses to move a terminal RemediationRequest back to an active phase", func(ctx SpecContext) {
		rr, err := admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		rrs := admin.RemediationV1alpha1().RemediationRequests("default")
		current, err := rrs.Get(ctx, rr.Name, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		current.Status.OverallPhase = remediationv1alpha1.PhaseFailed
		current, err = rrs.UpdateStatus(ctx, current, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		current.Status.OverallPhase = remediationv1alpha1.PhaseProcessing
		_, err = rrs.UpdateStatus(ctx, current, metav1.UpdateOptions{})
		Expect(err).To(MatchError(ContainSubstring("a terminal overallPhase is final")))
	})

	It("keeps one RemediationRequest and an exact count with two server replicas", func(ctx SpecContext) {
		second, err := cp.StartServer(ctx, "signal-apiserver-1", holdsOff...)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(second.Stop)
		// The second replica is called directly, as kube-apiserver's
		// aggregator would call it: front-proxy certificate and headers.
		direct := versioned.NewForConfigOrDie(cp.FrontProxyClientConfig(second, "system:admin", []string{"system:masters"}))

		s := newSignal("default")
		results := sendConcurrently(ctx, s, 100, admin, direct)
		Expect(outcomes(results)).To(Equal(map[string]int{"Created": 1, "Deduplicated": 99}))
		rrs := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(Equal(int64(100)))
	})

	It("counts a delivery once however often its idempotency key is sent, across two replicas", func(ctx SpecContext) {
		second, err := cp.StartServer(ctx, "signal-apiserver-idem", holdsOff...)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(second.Stop)
		direct := versioned.NewForConfigOrDie(cp.FrontProxyClientConfig(second, "system:admin", []string{"system:masters"}))

		s := newSignal("default")
		s.Spec.IdempotencyKey = "alertmanager/3f2a9c/2026-11-28T02:00:00Z"
		// Exactly one delivery is counted. It is the creating one unless the
		// other replica's status write landed first: then the creator's own
		// write finds its key counted, and answers AlreadyCounted.
		got := outcomes(sendConcurrently(ctx, s, 60, admin, direct))
		Expect(got["AlreadyCounted"]).To(Equal(59), "outcomes %v", got)
		Expect(got["Created"]+got["Deduplicated"]).To(Equal(1), "outcomes %v", got)

		other := s.DeepCopy()
		other.Spec.IdempotencyKey = "alertmanager/3f2a9c/2026-11-28T03:00:00Z"
		Expect(outcomes(sendConcurrently(ctx, other, 20, admin, direct))).To(Equal(map[string]int{"Deduplicated": 1, "AlreadyCounted": 19}))

		rrs := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(Equal(int64(2)))
		Expect(keysIn(&rrs[0])).To(Equal(2))
	})

	It("sets lastResolvedAt for a Resolved signal without counting it or creating anything", func(ctx SpecContext) {
		s := newSignal("default")
		resolved := s.DeepCopy()
		resolved.Spec.Status = "Resolved"
		_, err := admin.SignalsV1().Signals().Create(ctx, resolved, metav1.CreateOptions{})
		Expect(err).To(MatchError(ContainSubstring("no active RemediationRequest")))
		Expect(rrsOf(ctx, "default", fingerprintOf(s))).To(BeEmpty())

		_, err = admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		rr, err := admin.SignalsV1().Signals().Create(ctx, resolved, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(countOf(rr)).To(Equal(int64(1)))
		Expect(rr.Status.Deduplication.LastResolvedAt).NotTo(BeNil())
	})
})

var _ context.Context
