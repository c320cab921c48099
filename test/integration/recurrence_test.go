package integration

import (
	"context"
	"os/exec"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
)

// loopRun is one fingerprint firing every 100 ms while a controller (the
// test) finishes each RemediationRequest a second after it opens.
type loopRun struct {
	mu      sync.Mutex
	acked   map[types.UID]int64 // firing signals acknowledged as counted, per RR
	answers map[string]int      // outcomes
	errs    []error
	opened  map[types.UID]bool
	last    map[types.UID]*remediationv1alpha1.RemediationRequest // each RR as last seen
}

// sent is how many signals were answered 2xx.
func (r *loopRun) sent() int {
	n := 0
	for _, c := range r.answers {
		n += c
	}
	return n
}

// runLoop fires s every 100 ms through client for d, finishing every RR in
// phase one second after it opened, and returns what happened.
func runLoop(ctx context.Context, client versioned.Interface, s *signalsv1.Signal, phase remediationv1alpha1.Phase, d time.Duration) *loopRun {
	r := &loopRun{acked: map[types.UID]int64{}, answers: map[string]int{}, opened: map[types.UID]bool{}, last: map[types.UID]*remediationv1alpha1.RemediationRequest{}}
	fp := fingerprintOf(s)
	rrs := admin.RemediationV1alpha1().RemediationRequests(s.Spec.Target.Namespace)
	stop := make(chan struct{})
	var controller sync.WaitGroup
	controller.Add(1)
	go func() {
		defer GinkgoRecover()
		defer controller.Done()
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			list, err := rrs.List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.signalFingerprint", fp).String()})
			if err != nil {
				continue
			}
			for i := range list.Items {
				rr := &list.Items[i]
				r.mu.Lock()
				r.opened[rr.UID] = true
				r.last[rr.UID] = rr.DeepCopy()
				r.mu.Unlock()
				if rr.Status.OverallPhase.IsTerminal() || time.Since(rr.CreationTimestamp.Time) < time.Second {
					continue
				}
				rr.Status.OverallPhase = phase
				_, _ = rrs.UpdateStatus(ctx, rr, metav1.UpdateOptions{}) // a conflict is retried on the next tick
			}
		}
	}()

	var senders sync.WaitGroup
	tick := time.NewTicker(100 * time.Millisecond)
	deadline := time.After(d)
loop:
	for {
		select {
		case <-deadline:
			break loop
		case <-tick.C:
		}
		senders.Add(1)
		go func() {
			defer senders.Done()
			rr, err := client.SignalsV1().Signals().Create(ctx, s.DeepCopy(), metav1.CreateOptions{})
			r.mu.Lock()
			defer r.mu.Unlock()
			if err != nil {
				r.errs = append(r.errs, err)
				return
			}
			outcome := rr.Annotations[signalsv1.AnnotationOutcome]
			r.answers[outcome]++
			switch outcome {
			case signalsv1.OutcomeCreated, signalsv1.OutcomeDeduplicated, signalsv1.OutcomeHeld, signalsv1.OutcomeBlocked:
				r.acked[rr.UID]++
			}
		}()
	}
	tick.Stop()
	senders.Wait()
	close(stop)
	controller.Wait()
	return r
}

// finalCounts returns the count of every RR of fp: the one at the name as
// stored, and the replaced ones as the history of the one at the name
// records them.
func finalCounts(ctx context.Context, namespace, fp string) (map[types.UID]int64, *remediationv1alpha1.RemediationRequest) {
	all := rrsOf(ctx, namespace, fp)
	ExpectWithOffset(1, all).To(HaveLen(1))
	current := &all[0]
	counts := map[types.UID]int64{current.UID: countOf(current)}
	for _, h := range current.Spec.History {
		counts[h.UID] = h.OccurrenceCount
	}
	return counts, current
}

var _ = Describe("Recurrence of a finished problem", Ordered, func() {
	var direct versioned.Interface

	BeforeAll(func(ctx SpecContext) {
		s, err := cp.StartServer(ctx, "signal-apiserver-recurrence")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(s.Stop)
		// Called directly, as kube-apiserver's aggregator calls it.
		direct = versioned.NewForConfigOrDie(cp.FrontProxyClientConfig(s, "system:admin", []string{"system:masters"}))
	})

	for _, phase := range []remediationv1alpha1.Phase{remediationv1alpha1.PhaseCompleted, remediationv1alpha1.PhaseFailed} {
		It("opens one remediation, not one per controller cycle, for a problem that keeps firing after it finished "+string(phase), func(ctx SpecContext) {
			s := newSignal("default")
			r := runLoop(ctx, direct, s, phase, 60*time.Second)
			Expect(r.errs).To(BeEmpty())
			// Default cooldown 5m after Completed, backoff 1m after Failed:
			// the 60 s run opens one RemediationRequest (without the policy:
			// one a second).
			Expect(r.opened).To(HaveLen(1))
			Expect(r.answers[signalsv1.OutcomeCreated]).To(Equal(1))
			// Deduplicated while it was active, Held after: nothing else.
			Expect(r.answers).To(HaveKey(signalsv1.OutcomeHeld))
			Expect(r.answers[signalsv1.OutcomeCreated] + r.answers[signalsv1.OutcomeDeduplicated] + r.answers[signalsv1.OutcomeHeld]).To(Equal(r.sent()))
			counts, current := finalCounts(ctx, "default", fingerprintOf(s))
			Expect(counts).To(Equal(r.acked))
			Expect(current.Status.OverallPhase).To(Equal(phase))
			rc := current.Status.Recurrence
			Expect(rc).NotTo(BeNil())
			Expect(rc.Hold).To(Equal(remediationv1alpha1.HoldHeld))
			Expect(rc.HeldCount).To(Equal(int64(r.answers[signalsv1.OutcomeHeld])))
			// The held signals are in the finished one's summary too.
			Expect(signalCounts(current)).To(Equal(map[string]int64{s.Spec.Name: countOf(current)}))
			wait := 5 * time.Minute
			if phase == remediationv1alpha1.PhaseFailed {
				wait = time.Minute
			}
			Expect(rc.NextRemediationAt.Sub(rc.FinishedAt.Time)).To(Equal(wait))
			held := meta.FindStatusCondition(current.Status.Conditions, remediationv1alpha1.ConditionHeld)
			Expect(held).NotTo(BeNil())
			Expect(held.Status).To(Equal(metav1.ConditionTrue))
		})
	}

	It("opens the next RR at once when the problem resolved after the remediation finished, and holds a flapping problem", func(ctx SpecContext) {
		s := newSignal("default")
		resolved := s.DeepCopy()
		resolved.Spec.Status = signalsv1.SignalStatusResolved
		send := func(sig *signalsv1.Signal) *remediationv1alpha1.RemediationRequest {
			rr, err := direct.SignalsV1().Signals().Create(ctx, sig.DeepCopy(), metav1.CreateOptions{})
			ExpectWithOffset(1, err).NotTo(HaveOccurred())
			return rr
		}
		finish := func(rr *remediationv1alpha1.RemediationRequest) {
			rrs := admin.RemediationV1alpha1().RemediationRequests(rr.Namespace)
			Eventually(func() error {
				cur, err := rrs.Get(ctx, rr.Name, metav1.GetOptions{})
				if err != nil {
					return err
				}
				cur.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
				_, err = rrs.UpdateStatus(ctx, cur, metav1.UpdateOptions{})
				return err
			}).WithContext(ctx).Should(Succeed())
		}
		outcome := func(rr *remediationv1alpha1.RemediationRequest) string {
			return rr.Annotations[signalsv1.AnnotationOutcome]
		}

		// Episodes 1 to 3 (the flap threshold): fire, finish, a firing
		// signal is held, resolve, fire opens the next at once.
		first := send(s)
		Expect(outcome(first)).To(Equal(signalsv1.OutcomeCreated))
		for episode := int64(1); episode <= 3; episode++ {
			rr := rrsOf(ctx, "default", fingerprintOf(s))[0]
			Expect(rr.Spec.RemediationNumber).To(Equal(episode))
			finish(&rr)
			Expect(outcome(send(s))).To(Equal(signalsv1.OutcomeHeld))
			Expect(outcome(send(resolved))).To(Equal(signalsv1.OutcomeResolved))
			next := send(s)
			if episode < 3 {
				Expect(outcome(next)).To(Equal(signalsv1.OutcomeCreated))
				Expect(next.Spec.RemediationNumber).To(Equal(episode + 1))
				Expect(next.Spec.History[0].UID).To(Equal(rr.UID))
				Expect(next.Spec.History[0].Resolved).To(BeTrue())
				Expect(next.Spec.History[0].OccurrenceCount).To(Equal(int64(2)))
				continue
			}
			// Three remediations within the flap window: the resolution
			// no longer ends the cooldown.
			Expect(outcome(next)).To(Equal(signalsv1.OutcomeHeld))
			Expect(next.UID).To(Equal(rr.UID))
			held := meta.FindStatusCondition(next.Status.Conditions, remediationv1alpha1.ConditionHeld)
			Expect(held.Reason).To(Equal("Flapping"))
			Expect(countOf(next)).To(Equal(int64(3)))
		}
	})
})

var _ = Describe("A problem whose remediations keep failing", func() {
	It("is Blocked after 3 failures in a row, says so with an Event, and a person unblocks it with kubectl annotate", func(ctx SpecContext) {
		s, err := cp.StartServer(ctx, "signal-apiserver-blocking", "--recurrence-backoff=1s", "--recurrence-backoff-max=4s")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(s.Stop)
		direct := versioned.NewForConfigOrDie(cp.FrontProxyClientConfig(s, "system:admin", []string{"system:masters"}))

		sig := newSignal("default")
		fp := fingerprintOf(sig)
		// Fail at 1 s, back off 1 s, fail, back off 2 s, fail: Blocked
		// after some 6 s; the rest of the run is answered Blocked.
		r := runLoop(ctx, direct, sig, remediationv1alpha1.PhaseFailed, 12*time.Second)
		Expect(r.errs).To(BeEmpty())
		Expect(r.opened).To(HaveLen(3))
		Expect(r.answers[signalsv1.OutcomeCreated]).To(Equal(3))
		Expect(r.answers).To(HaveKey(signalsv1.OutcomeBlocked))
		Expect(r.answers[signalsv1.OutcomeCreated] + r.answers[signalsv1.OutcomeDeduplicated] + r.answers[signalsv1.OutcomeHeld] + r.answers[signalsv1.OutcomeBlocked]).To(Equal(r.sent()))
		counts, current := finalCounts(ctx, "default", fp)
		Expect(counts).To(Equal(r.acked))
		Expect(current.Spec.RemediationNumber).To(Equal(int64(3)))
		rc := current.Status.Recurrence
		Expect(rc.Hold).To(Equal(remediationv1alpha1.HoldBlocked))
		Expect(rc.ConsecutiveFailures).To(Equal(int64(3)))
		Expect(rc.NextRemediationAt).To(BeNil())
		held := meta.FindStatusCondition(current.Status.Conditions, remediationv1alpha1.ConditionHeld)
		Expect(held.Reason).To(Equal("Blocked"))
		Expect(held.Message).To(ContainSubstring("kubectl annotate rr " + current.Name + " signals.remediation.io/unblock=now"))

		kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
		Eventually(func(g Gomega) {
			events, err := kube.CoreV1().Events("default").List(ctx, metav1.ListOptions{
				FieldSelector: fields.OneTermEqualSelector("involvedObject.uid", string(current.UID)).String(),
			})
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(events.Items).To(HaveLen(1))
			g.Expect(events.Items[0].Type).To(Equal(corev1.EventTypeWarning))
			g.Expect(events.Items[0].Reason).To(Equal("Blocked"))
			g.Expect(events.Items[0].Source.Component).To(Equal("signal-apiserver"))
		}).WithContext(ctx).WithTimeout(10 * time.Second).Should(Succeed())

		// Still blocked well after every backoff would have ended.
		rr, err := direct.SignalsV1().Signals().Create(ctx, sig.DeepCopy(), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rr.Annotations[signalsv1.AnnotationOutcome]).To(Equal(signalsv1.OutcomeBlocked))

		// The documented way out.
		out, err := exec.CommandContext(ctx, cp.KubectlPath(), "--kubeconfig", cp.KubeconfigPath(), "-n", "default",
			"annotate", "rr", current.Name, "signals.remediation.io/unblock=now").CombinedOutput()
		Expect(err).NotTo(HaveOccurred(), string(out))
		Eventually(func() string {
			rr, err := direct.SignalsV1().Signals().Create(ctx, sig.DeepCopy(), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			return rr.Annotations[signalsv1.AnnotationOutcome]
		}).WithContext(ctx).WithTimeout(10 * time.Second).Should(Equal(signalsv1.OutcomeCreated))
		all := rrsOf(ctx, "default", fp)
		Expect(all).To(HaveLen(1))
		next := all[0]
		Expect(next.Status.OverallPhase.IsTerminal()).To(BeFalse())
		Expect(next.Spec.RemediationNumber).To(Equal(int64(4)))
		Expect(next.Spec.History).To(HaveLen(3))
		Expect(next.Spec.History[0].UID).To(Equal(current.UID))
		Expect(next.Spec.History[0].Unblocked).To(BeTrue())
		Expect(next.Spec.History[0].Phase).To(Equal(remediationv1alpha1.PhaseFailed))
	})
})
