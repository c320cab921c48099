package upgrade

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
)

// previousBinary is the previous release's signal-apiserver:
// $SIGNAL_APISERVER_PREVIOUS_BINARY, else what hack/build-previous-release.sh
// builds (once) from the commit in PREVIOUS_RELEASE.
func previousBinary() string {
	if b := os.Getenv("SIGNAL_APISERVER_PREVIOUS_BINARY"); b != "" {
		return b
	}
	start := time.Now()
	out, err := exec.Command(filepath.Join(repoRoot, "hack", "build-previous-release.sh")).Output()
	var stderr string
	if exitErr := (*exec.ExitError)(nil); errors.As(err, &exitErr) {
		stderr = string(exitErr.Stderr)
	}
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), stderr)
	AddReportEntry("previous release's binary", fmt.Sprintf("%s in %s", strings.TrimSpace(string(out)), time.Since(start).Round(100*time.Millisecond)))
	return strings.TrimSpace(string(out))
}

// The rolling update of a Deployment from the previous release: replicas of
// both releases serve signals at once, an Alertmanager resends each keyed
// delivery so that both see it, then the previous release's replica goes
// away and the redeliveries go on. Its own control plane, with this
// version's CRD and policies applied first, as `kubectl apply -k
// artifacts/deploy` does.
var _ = Describe("A rolling update from the previous release, both releases serving", Ordered, func() {
	const (
		ns = "rollout"
		// problems is the number of Deployments signalled about, keys the
		// number of deliveries (distinct idempotency keys) each gets while
		// both releases run, and after the number it gets afterwards.
		problems = 3
		keys     = 8
		after    = 4
	)
	var (
		mcp                *controlplane.ControlPlane
		previous, current  *controlplane.Server
		admin, toPrevious  *versioned.Clientset
		toCurrent, viaAggr *versioned.Clientset
	)
	signal := func(problem, key int) *signalsv1.Signal {
		return &signalsv1.Signal{Spec: signalsv1.SignalSpec{
			Source: "alertmanager", Name: "KubePodCrashLooping", Severity: "warning",
			Target:         signalsv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: fmt.Sprintf("web-%d", problem)},
			IdempotencyKey: fmt.Sprintf("alertmanager/web-%d/%02d", problem, key),
		}}
	}
	rrsOf := func(ctx context.Context, problem int) []remediationv1alpha1.RemediationRequest {
		t := remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: fmt.Sprintf("web-%d", problem)}
		list, err := admin.RemediationV1alpha1().RemediationRequests(ns).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("spec.signalFingerprint", fingerprint.ForObject("", t)).String(),
		})
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		return list.Items
	}
	send := func(ctx context.Context, c *versioned.Clientset, s *signalsv1.Signal) string {
		rr, err := c.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		return rr.Annotations[signalsv1.AnnotationOutcome]
	}

	BeforeAll(func(ctx SpecContext) {
		previousServer := previousBinary()
		var err error
		mcp, err = controlplane.Start(ctx, controlplane.Options{
			BinDir:       binDir,
			StateDir:     filepath.Join(GinkgoT().TempDir(), "state"),
			ServerBinary: serverBinary,
			RepoRoot:     repoRoot,
		})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func() {
			if !CurrentSpecReport().Failed() {
				return
			}
			GinkgoWriter.Printf("rolling update's control-plane state and logs: %s\n", mcp.StateDir())
		})
		DeferCleanup(mcp.Stop)
		cfg := mcp.RESTConfig()
		cfg.QPS, cfg.Burst = 1000, 1000
		admin = versioned.NewForConfigOrDie(cfg)
		viaAggr = admin
		_, err = kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())

		previous, err = mcp.StartServerFrom(ctx, previousServer, "signal-apiserver-previous")
		Expect(err).NotTo(HaveOccurred())
		current, err = mcp.StartServer(ctx, "signal-apiserver-current")
		Expect(err).NotTo(HaveOccurred())
		// The aggregator sends to the previous release's replica (the
		// Service's endpoint that is still there), and the current one is
		// reached directly, as kube-apiserver's proxy reaches a new
		// endpoint: every key reaches both.
		Expect(mcp.RegisterAPIService(ctx, previous)).To(Succeed())
		toPrevious = versioned.NewForConfigOrDie(mcp.FrontProxyClientConfig(previous, "system:admin", []string{"system:masters"}))
		toCurrent = versioned.NewForConfigOrDie(mcp.FrontProxyClientConfig(current, "system:admin", []string{"system:masters"}))
	}, NodeTimeout(10*time.Minute))

	It("counts each key once while both run, one after the other, whichever counted it first", func(ctx SpecContext) {
		for p := range problems {
			got := map[string]int{}
			for k := range keys {
				// Even keys reach the previous release first, odd ones this
				// one; then each is resent to both, and through the
				// aggregator.
				order := []*versioned.Clientset{toPrevious, toCurrent, viaAggr, toCurrent, toPrevious}
				if k%2 == 1 {
					order = []*versioned.Clientset{toCurrent, toPrevious, viaAggr, toPrevious, toCurrent}
				}
				for i, c := range order {
					outcome := send(ctx, c, signal(p, k))
					got[outcome]++
					if i > 0 {
						Expect(outcome).To(Equal("AlreadyCounted"), "problem %d key %d send %d", p, k, i)
					}
					// The previous release's write is a PUT of a type without
					// signalSummary: it removes the summary. It also writes on
					// a redelivery it does not count when this release wrote
					// last. This release, finding no summary, puts every count
					// it cannot place in otherSignals, even on a redelivery it
					// does not count.
					rr := rrsOf(ctx, p)[0]
					summary := rr.Status.SignalSummary
					if c != toCurrent {
						Expect(summary).To(BeNil(), "problem %d key %d send %d", p, k, i)
						continue
					}
					Expect(summary).NotTo(BeNil(), "problem %d key %d send %d", p, k, i)
					if outcome == "AlreadyCounted" {
						Expect(summary.OtherSignals).To(Equal(&remediationv1alpha1.OtherSignals{Count: countOf(&rr)}), "problem %d key %d send %d", p, k, i)
						Expect(summary.Signals).To(BeEmpty(), "problem %d key %d send %d", p, k, i)
						continue
					}
					Expect(summary.OtherSignals).To(Equal(&remediationv1alpha1.OtherSignals{Count: countOf(&rr) - 1}), "problem %d key %d send %d", p, k, i)
					Expect(summary.Signals).To(HaveLen(1), "problem %d key %d send %d", p, k, i)
					Expect(summary.Signals[0].Count).To(Equal(int64(1)), "problem %d key %d send %d", p, k, i)
				}
			}
			Expect(got).To(Equal(map[string]int{"Created": 1, "Deduplicated": keys - 1, "AlreadyCounted": 4 * keys}), "problem %d", p)
			rrs := rrsOf(ctx, p)
			Expect(rrs).To(HaveLen(1), "problem %d", p)
			Expect(rrs[0].Status.OverallPhase.IsTerminal()).To(BeFalse())
			Expect(countOf(&rrs[0])).To(Equal(int64(keys)), "problem %d", p)
		}
	})

	It("counts each key once when both get it at the same moment", func(ctx SpecContext) {
		// Each key is sent by 6 senders at once, 3 to each release.
		for p := range problems {
			base := countOf(&rrsOf(ctx, p)[0])
			got := map[string]int{}
			for k := keys; k < keys+after; k++ {
				var (
					wg sync.WaitGroup
					mu sync.Mutex
				)
				for i := range 6 {
					c := toPrevious
					if i%2 == 1 {
						c = toCurrent
					}
					wg.Go(func() {
						defer GinkgoRecover()
						outcome := send(ctx, c, signal(p, k))
						mu.Lock()
						got[outcome]++
						mu.Unlock()
					})
				}
				wg.Wait()
			}
			Expect(got).To(Equal(map[string]int{"Deduplicated": after, "AlreadyCounted": 5 * after}), "problem %d", p)
			rrs := rrsOf(ctx, p)
			Expect(rrs).To(HaveLen(1), "problem %d", p)
			Expect(countOf(&rrs[0])).To(Equal(base+after), "problem %d", p)
			// One more key, counted by the previous release alone, leaves
			// the RR as its last write left it: no summary.
			Expect(send(ctx, toPrevious, signal(p, keys+after))).To(Equal("Deduplicated"))
			rrs = rrsOf(ctx, p)
			Expect(countOf(&rrs[0])).To(Equal(base+after+1), "problem %d", p)
			Expect(rrs[0].Status.SignalSummary).To(BeNil(), "problem %d", p)
		}
	})

	It("loses a hold when a signal reaches the previous release: it deletes the finished RR and opens the next at once, with no history", func(ctx SpecContext) {
		held := func(key int) *signalsv1.Signal {
			s := signal(0, key)
			s.Spec.Target.Name = "held"
			s.Spec.IdempotencyKey = fmt.Sprintf("alertmanager/held/%02d", key)
			return s
		}
		rrs := admin.RemediationV1alpha1().RemediationRequests(ns)
		get := func() *remediationv1alpha1.RemediationRequest {
			list, err := rrs.List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.signalFingerprint", fingerprint.ForObject("", remediationv1alpha1.ResourceReference{
				APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: "held",
			})).String()})
			ExpectWithOffset(1, err).NotTo(HaveOccurred())
			ExpectWithOffset(1, list.Items).To(HaveLen(1))
			return &list.Items[0]
		}
		Expect(send(ctx, toCurrent, held(0))).To(Equal("Created"))
		rr := get()
		rr.Status.OverallPhase = remediationv1alpha1.PhaseFailed
		_, err := rrs.UpdateStatus(ctx, rr, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		// This release holds the next remediation (the default cooldown)
		// and counts the signal on the finished RR.
		Expect(send(ctx, toCurrent, held(1))).To(Equal("Held"))
		finished := get()
		Expect(finished.Status.Recurrence).NotTo(BeNil())
		Expect(finished.Status.Recurrence.Hold).To(Equal(remediationv1alpha1.HoldHeld))
		Expect(finished.Status.Recurrence.NextRemediationAt.Time).To(BeTemporally(">", time.Now()))
		Expect(countOf(finished)).To(Equal(int64(2)))

		// The previous release knows no holds: it deletes the finished RR
		// and opens the next one, without spec.history, so the finished
		// one's record (and the held signal counted on it) is gone.
		Expect(send(ctx, toPrevious, held(2))).To(Equal("Created"))
		next := get()
		Expect(next.UID).NotTo(Equal(finished.UID))
		Expect(next.Status.OverallPhase.IsTerminal()).To(BeFalse())
		Expect(countOf(next)).To(Equal(int64(1)))
		Expect(next.Spec.History).To(BeEmpty())
		Expect(next.Status.Recurrence).To(BeNil())
		// This release counts on it as on any active RR.
		Expect(send(ctx, toCurrent, held(3))).To(Equal("Deduplicated"))
		Expect(send(ctx, toPrevious, held(3))).To(Equal("AlreadyCounted"))
		Expect(countOf(get())).To(Equal(int64(2)))
	})

	It("counts each key once after the rollout completes; what the previous release counted is in the summary's otherSignals", func(ctx SpecContext) {
		Expect(previous.Stop()).To(Succeed())
		Expect(mcp.RegisterAPIService(ctx, current)).To(Succeed())
		// Keys 0 to counted-1 were counted while both ran; as many new
		// ones follow.
		counted := keys + after + 1
		for p := range problems {
			got := map[string]int{}
			for k := range counted + after {
				for _, c := range []*versioned.Clientset{viaAggr, toCurrent} {
					got[send(ctx, c, signal(p, k))]++
				}
			}
			Expect(got).To(Equal(map[string]int{"AlreadyCounted": 2*counted + after, "Deduplicated": after}), "problem %d", p)
			rrs := rrsOf(ctx, p)
			Expect(rrs).To(HaveLen(1), "problem %d", p)
			Expect(rrs[0].Status.OverallPhase.IsTerminal()).To(BeFalse())
			Expect(countOf(&rrs[0])).To(Equal(int64(counted+after)), "problem %d", p)
			summary := rrs[0].Status.SignalSummary
			Expect(summary).NotTo(BeNil(), "problem %d", p)
			Expect(summary.OtherSignals).To(Equal(&remediationv1alpha1.OtherSignals{Count: int64(counted)}), "problem %d", p)
			Expect(summary.Signals).To(HaveLen(1), "problem %d", p)
			Expect(summary.Signals[0].Count).To(Equal(int64(after)), "problem %d", p)
		}
	})
})
