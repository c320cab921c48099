package integration

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// probeTimeout bounds the wait for a replica to reach a state; it is reached
// in milliseconds.
const (
	probeTimeout = 30 * time.Second
	probePolling = 20 * time.Millisecond
)

// The interleavings of issue 9, made deterministic with a proxy between a
// replica and kube-apiserver that holds a write or pauses the replica's
// watch of RemediationRequests. Every step is something users do: send
// signals, move RemediationRequests to phases as a controller does, delete
// them as retention or an operator does. Waits are on the proxy's
// notifications and on dry-run signals, which answer what a replica would do
// without writing: never on time.
var _ = Describe("One active RemediationRequest per fingerprint while RemediationRequests are deleted", func() {
	It("interleaving 1: the active RR is deleted while a write on it is in flight and older RRs are long gone (one replica)", func(ctx SpecContext) {
		ns := namespaceWithPrefix(ctx, "interleave-1-")
		r := startProxiedReplica(ctx, "signal-apiserver-interleave-1")
		l := newLedger()
		sig := newSignal(ns)

		// Three remediations of the problem come and go: the controller
		// completes one, the next signal opens the next, and retention
		// deletes the completed one.
		active := l.send(ctx, r.client, sig)
		Expect(outcomeOf(active)).To(Equal("Created"))
		for range 3 {
			complete(ctx, active)
			next := l.send(ctx, r.client, sig)
			Expect(outcomeOf(next)).To(Equal("Created"))
			Expect(next.UID).NotTo(Equal(active.UID))
			retain(ctx, active)
			active = next
		}
		fp := active.Spec.SignalFingerprint
		// Another problem, counted through the same replica. Its deletion,
		// watched after the active RR's, tells when the replica has taken
		// in both.
		otherSig := newSignal(ns)
		other := l.send(ctx, r.client, otherSig)

		// A signal's status write is held on its way to kube-apiserver.
		hold := r.proxy.Hold(statusWritesIn(ns))
		first := l.sendAsync(ctx, r.client, sig)
		held, err := hold.Next(ctx)
		Expect(err).NotTo(HaveOccurred())
		hold.Stop()

		// The replica's watch is paused; an operator deletes the active RR
		// (and the other problem's), then the write reaches kube-apiserver.
		r.proxy.PauseWatches()
		deleteRR(ctx, active)
		deleteRR(ctx, other)
		held.Release()
		Expect(held.Answer(ctx)).To(Equal(http.StatusNotFound), "the held write should find its RR deleted")
		Expect(first.wait(ctx)).To(Succeed())

		// The replica sees both deletions, and nothing that came after them.
		delivered := r.proxy.PauseWatchesAfter(func(ev controlplane.WatchEvent) bool {
			return ev.Type == "DELETED" && ev.UID == other.UID
		})
		r.proxy.ResumeWatches()
		Eventually(ctx, delivered).WithTimeout(probeTimeout).Should(Receive())
		// The informer's delete handler runs after its cache is updated:
		// a replica done with the other problem's deletion is done with
		// the active RR's, which came first.
		Eventually(ctx, func() types.UID { return dryRun(ctx, r.client, otherSig).UID }).
			WithTimeout(probeTimeout).WithPolling(probePolling).
			ShouldNot(Equal(other.UID), "the replica still answers a dry run with %s, which it has seen deleted", other.Name)

		// A new signal of the problem.
		l.send(ctx, r.client, sig)
		r.proxy.ResumeWatches()

		l.expectOneActive(ctx, ns, fp)
		l.expectCounts(ctx, ns, fp)
	}, SpecTimeout(3*time.Minute))

	It("interleaving 2: retention deletes the newest RR, terminal, while one replica's cache lags (two replicas)", func(ctx SpecContext) {
		ns := namespaceWithPrefix(ctx, "interleave-2-")
		a := startProxiedReplica(ctx, "signal-apiserver-interleave-2a")
		b := startProxiedReplica(ctx, "signal-apiserver-interleave-2b")
		l := newLedger()
		sig := newSignal(ns)

		done := l.send(ctx, a.client, sig)
		fp := done.Spec.SignalFingerprint
		complete(ctx, done)
		cacheBarrier(ctx, ns, a, b)

		// B's watch is paused; retention deletes the terminal RR, and A's
		// cache sees it.
		b.proxy.PauseWatches()
		deleteRR(ctx, done)
		cacheBarrier(ctx, ns, a)

		// A signal to each replica.
		Expect(outcomeOf(l.send(ctx, a.client, sig))).To(Equal("Created"))
		l.send(ctx, b.client, sig)
		b.proxy.ResumeWatches()

		l.expectOneActive(ctx, ns, fp)
		l.expectCounts(ctx, ns, fp)
	}, SpecTimeout(3*time.Minute))

	It("interleaving 2, variant: a replica counting on an RR that was completed and deleted behind its back (two replicas)", func(ctx SpecContext) {
		ns := namespaceWithPrefix(ctx, "interleave-2v-")
		a := startProxiedReplica(ctx, "signal-apiserver-interleave-2va")
		b := startProxiedReplica(ctx, "signal-apiserver-interleave-2vb")
		l := newLedger()
		sig := newSignal(ns)

		done := l.send(ctx, a.client, sig)
		fp := done.Spec.SignalFingerprint
		complete(ctx, done)
		cacheBarrier(ctx, ns, a, b)
		// B opens the next RR and counts on it; retention deletes the
		// completed one.
		current := l.send(ctx, b.client, sig)
		Expect(outcomeOf(current)).To(Equal("Created"))
		retain(ctx, done)
		cacheBarrier(ctx, ns, a, b)

		// B's watch is paused; the controller completes the RR B counts on
		// and retention deletes it; A's cache sees both.
		b.proxy.PauseWatches()
		complete(ctx, current)
		deleteRR(ctx, current)
		cacheBarrier(ctx, ns, a)

		// A signal to each replica.
		Expect(outcomeOf(l.send(ctx, a.client, sig))).To(Equal("Created"))
		l.send(ctx, b.client, sig)
		b.proxy.ResumeWatches()

		l.expectOneActive(ctx, ns, fp)
		l.expectCounts(ctx, ns, fp)
	}, SpecTimeout(3*time.Minute))
})

// proxiedReplica is a signal-apiserver process that reaches kube-apiserver
// through its own proxy, called directly as kube-apiserver's aggregator
// would call it.
type proxiedReplica struct {
	server *controlplane.Server
	proxy  *controlplane.Proxy
	client versioned.Interface
}

func startProxiedReplica(ctx context.Context, name string) *proxiedReplica {
	p, err := cp.StartProxy(name + "-proxy")
	Expect(err).NotTo(HaveOccurred())
	s, err := cp.StartServer(ctx, name, append([]string{controlplane.ThroughProxy(p)}, holdsOff...)...)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		// Whatever a failed spec left held goes through first, so the
		// server stops at once.
		p.Unblock()
		Expect(s.Stop()).To(Succeed())
		Expect(p.Close()).To(Succeed())
	})
	client := versioned.NewForConfigOrDie(cp.FrontProxyClientConfig(s, "system:admin", []string{"system:masters"}))
	return &proxiedReplica{server: s, proxy: p, client: client}
}

func namespaceWithPrefix(ctx context.Context, prefix string) string {
	kube := kubernetes.NewForConfigOrDie(adminConf)
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: prefix}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return ns.Name
}

// statusWritesIn matches the status writes of RemediationRequests in ns.
func statusWritesIn(ns string) func(controlplane.Request) bool {
	return func(r controlplane.Request) bool {
		return (r.Verb == "update" || r.Verb == "patch") && r.Resource == "remediationrequests" &&
			r.Subresource == "status" && r.Namespace == ns
	}
}

// ledger records, per RemediationRequest (by UID), how many signals were
// acknowledged as counted on it.
type ledger struct {
	acked map[types.UID]int64
	// by names the signal that opened each RemediationRequest, for failure
	// messages.
	opened map[types.UID]string
	sent   int
}

func newLedger() *ledger {
	return &ledger{acked: map[types.UID]int64{}, opened: map[types.UID]string{}}
}

// send sends sig through client and expects it counted.
func (l *ledger) send(ctx context.Context, client versioned.Interface, sig *signalsv1.Signal) *remediationv1alpha1.RemediationRequest {
	GinkgoHelper()
	rr, err := client.SignalsV1().Signals().Create(ctx, sig.DeepCopy(), metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	l.record(rr)
	return rr
}

func (l *ledger) record(rr *remediationv1alpha1.RemediationRequest) {
	l.sent++
	switch outcomeOf(rr) {
	case "AlreadyCounted":
		return
	case "Created":
		l.opened[rr.UID] = fmt.Sprintf("signal %d", l.sent)
	}
	l.acked[rr.UID]++
}

// pending is a signal on its way.
type pending struct {
	l    *ledger
	done chan struct{}
	rr   *remediationv1alpha1.RemediationRequest
	err  error
}

// sendAsync sends sig through client in the background; wait records it.
func (l *ledger) sendAsync(ctx context.Context, client versioned.Interface, sig *signalsv1.Signal) *pending {
	p := &pending{l: l, done: make(chan struct{})}
	go func() {
		defer close(p.done)
		p.rr, p.err = client.SignalsV1().Signals().Create(ctx, sig.DeepCopy(), metav1.CreateOptions{})
	}()
	return p
}

func (p *pending) wait(ctx context.Context) error {
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	if p.err != nil {
		return p.err
	}
	p.l.record(p.rr)
	return nil
}

// expectOneActive asserts that fingerprint fp has exactly one active
// RemediationRequest in ns, as kube-apiserver lists them.
func (l *ledger) expectOneActive(ctx context.Context, ns, fp string) {
	GinkgoHelper()
	var active []string
	for _, rr := range rrsOf(ctx, ns, fp) {
		if !rr.Status.OverallPhase.IsTerminal() {
			active = append(active, l.describe(&rr))
		}
	}
	Expect(active).To(HaveLen(1), "active RemediationRequests of fingerprint %s:\n%s", fp, strings.Join(active, "\n"))
}

// expectCounts asserts that every RemediationRequest of fp in ns counts
// exactly the signals acknowledged on it.
func (l *ledger) expectCounts(ctx context.Context, ns, fp string) {
	GinkgoHelper()
	for _, rr := range rrsOf(ctx, ns, fp) {
		Expect(countOf(&rr)).To(Equal(l.acked[rr.UID]), "occurrenceCount of %s", l.describe(&rr))
	}
}

func (l *ledger) describe(rr *remediationv1alpha1.RemediationRequest) string {
	opened := l.opened[rr.UID]
	if opened == "" {
		opened = "no signal was answered Created"
	}
	return fmt.Sprintf("%s (uid %s, phase %q, count %d, acknowledged %d, opened by %s)",
		rr.Name, rr.UID, rr.Status.OverallPhase, countOf(rr), l.acked[rr.UID], opened)
}

func outcomeOf(rr *remediationv1alpha1.RemediationRequest) string {
	return rr.Annotations[signalsv1.AnnotationOutcome]
}

// complete moves rr to Completed as a remediation controller does: a status
// update preconditioned on the resourceVersion it read.
func complete(ctx context.Context, rr *remediationv1alpha1.RemediationRequest) {
	GinkgoHelper()
	rrs := admin.RemediationV1alpha1().RemediationRequests(rr.Namespace)
	Expect(retry.RetryOnConflict(retry.DefaultRetry, func() error {
		current, err := rrs.Get(ctx, rr.Name, metav1.GetOptions{})
		if err != nil {
			return err
		}
		Expect(current.UID).To(Equal(rr.UID), "%s was replaced", rr.Name)
		current.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
		_, err = rrs.UpdateStatus(ctx, current, metav1.UpdateOptions{})
		return err
	})).To(Succeed())
}

// deleteRR deletes rr, and only that object, which must still be there.
func deleteRR(ctx context.Context, rr *remediationv1alpha1.RemediationRequest) {
	GinkgoHelper()
	Expect(admin.RemediationV1alpha1().RemediationRequests(rr.Namespace).Delete(ctx, rr.Name,
		metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &rr.UID}})).To(Succeed())
}

// retain deletes rr if it is still there, as retention does with terminal
// RemediationRequests: the server may have removed it already.
func retain(ctx context.Context, rr *remediationv1alpha1.RemediationRequest) {
	GinkgoHelper()
	err := admin.RemediationV1alpha1().RemediationRequests(rr.Namespace).Delete(ctx, rr.Name,
		metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &rr.UID}})
	// NotFound: gone; Conflict: the name holds another object now.
	if !apierrors.IsNotFound(err) && !apierrors.IsConflict(err) {
		Expect(err).NotTo(HaveOccurred())
	}
}

// dryRun answers what client's replica would do with sig, writing nothing.
func dryRun(ctx context.Context, client versioned.Interface, sig *signalsv1.Signal) *remediationv1alpha1.RemediationRequest {
	GinkgoHelper()
	rr, err := client.SignalsV1().Signals().Create(ctx, sig.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	Expect(err).NotTo(HaveOccurred())
	return rr
}

// cacheBarrier returns once the RemediationRequest caches of replicas hold
// everything written before it: it opens an RR for a problem of its own
// through the aggregator (another replica) and waits until each replica
// answers a dry run of that problem with that very RR. Watch events come in
// the order of writes, so each replica has then seen every earlier one.
func cacheBarrier(ctx context.Context, ns string, replicas ...*proxiedReplica) {
	GinkgoHelper()
	sig := newSignal(ns)
	rr, err := admin.SignalsV1().Signals().Create(ctx, sig, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	for _, r := range replicas {
		Eventually(ctx, func() types.UID { return dryRun(ctx, r.client, sig).UID }).
			WithTimeout(probeTimeout).WithPolling(probePolling).Should(Equal(rr.UID), "%s never saw %s", r.server.Name, rr.Name)
	}
}
