// Package upgrade tests an upgrade from the previous release: its CRD and
// the RemediationRequests its server made (testdata/, captured from that
// server), then this version's CRD and server.
package upgrade

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
)

// namespace holds the captured RemediationRequests.
const namespace = "upgrade"

var (
	cp       *controlplane.ControlPlane
	repoRoot string
	binDir   string
	// serverBinary is this version's signal-apiserver.
	serverBinary string
)

func TestUpgrade(t *testing.T) {
	RegisterFailHandler(Fail)
	RunSpecs(t, "signal-apiserver upgrade from the previous release")
}

var _ = BeforeSuite(func(ctx SpecContext) {
	var err error
	repoRoot, err = controlplane.FindRepoRoot()
	Expect(err).NotTo(HaveOccurred())
	binDir, err = controlplane.FindBinDir(repoRoot)
	Expect(err).NotTo(HaveOccurred())
	serverBinary = os.Getenv("SIGNAL_APISERVER_BINARY")
	if serverBinary == "" {
		serverBinary, err = gexec.Build("github.com/signal-apiserver/signal-apiserver/cmd/signal-apiserver")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(gexec.CleanupBuildArtifacts)
	}
	cp, err = controlplane.Start(ctx, controlplane.Options{
		BinDir:       binDir,
		StateDir:     filepath.Join(GinkgoT().TempDir(), "state"),
		ServerBinary: serverBinary,
		RepoRoot:     repoRoot,
		WithoutCRDs:  true,
	})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() {
		Expect(cp.Stop()).To(Succeed())
	})
}, NodeTimeout(5*time.Minute))

var _ = ReportAfterSuite("state", func(r Report) {
	if !r.SuiteSucceeded && cp != nil {
		GinkgoWriter.Printf("control-plane state and logs: %s\n", cp.StateDir())
	}
})

// previousRRs are the RemediationRequests of testdata/rrs-previous.yaml, as
// the previous release's server left them.
func previousRRs() []remediationv1alpha1.RemediationRequest {
	raw, err := os.ReadFile(filepath.Join("testdata", "rrs-previous.yaml"))
	Expect(err).NotTo(HaveOccurred())
	var list remediationv1alpha1.RemediationRequestList
	Expect(yaml.Unmarshal(raw, &list)).To(Succeed())
	Expect(list.Items).NotTo(BeEmpty())
	return list.Items
}

// restore creates rr as it was captured: the object, then its status (a
// create drops status) as its writers wrote it: the phase by client, a
// remediation controller, and the deduplication block by server, the
// previous release's server (artifacts/deploy/policy.yaml lets nobody else
// write it, and the server no phase).
func restore(ctx context.Context, client, server versioned.Interface, rr remediationv1alpha1.RemediationRequest) {
	rrs := client.RemediationV1alpha1().RemediationRequests(rr.Namespace)
	fresh := &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: rr.Name, Namespace: rr.Namespace, Annotations: rr.Annotations, Labels: rr.Labels},
		Spec:       rr.Spec,
	}
	created, err := rrs.Create(ctx, fresh, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	created.Status = rr.Status
	created.Status.Deduplication = nil
	created, err = rrs.UpdateStatus(ctx, created, metav1.UpdateOptions{})
	Expect(err).NotTo(HaveOccurred())
	created.Status.Deduplication = rr.Status.Deduplication
	_, err = server.RemediationV1alpha1().RemediationRequests(rr.Namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
	Expect(err).NotTo(HaveOccurred())
}

// deployment is a signal about the Deployment name in the namespace.
func deployment(name string) *signalsv1.Signal {
	return &signalsv1.Signal{Spec: signalsv1.SignalSpec{
		Source: "alertmanager", Name: "KubePodCrashLooping",
		Target: signalsv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: namespace, Name: name},
	}}
}

// problem lists the RemediationRequests of a Deployment under this
// version's fingerprint and the previous one.
func problem(ctx context.Context, client versioned.Interface, name string) []remediationv1alpha1.RemediationRequest {
	t := remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: namespace, Name: name}
	var all []remediationv1alpha1.RemediationRequest
	for _, fp := range []string{fingerprint.ForObject("", t), fingerprint.LegacyForObject("", t)} {
		list, err := client.RemediationV1alpha1().RemediationRequests(namespace).List(ctx, metav1.ListOptions{
			FieldSelector: fields.OneTermEqualSelector("spec.signalFingerprint", fp).String(),
		})
		Expect(err).NotTo(HaveOccurred())
		all = append(all, list.Items...)
	}
	return all
}

func active(rrs []remediationv1alpha1.RemediationRequest) []remediationv1alpha1.RemediationRequest {
	var out []remediationv1alpha1.RemediationRequest
	for _, rr := range rrs {
		if !rr.Status.OverallPhase.IsTerminal() {
			out = append(out, rr)
		}
	}
	return out
}

func countOf(rr *remediationv1alpha1.RemediationRequest) int64 {
	if rr.Status.Deduplication == nil {
		return 0
	}
	return rr.Status.Deduplication.OccurrenceCount
}

var _ = Describe("Upgrading from the previous release", Ordered, func() {
	var (
		admin *versioned.Clientset
		// asServer writes what only the server may (policy.yaml).
		asServer *versioned.Clientset
		server   *controlplane.Server
		byName   = map[string]remediationv1alpha1.RemediationRequest{}
	)
	send := func(ctx context.Context, s *signalsv1.Signal) *remediationv1alpha1.RemediationRequest {
		rr, err := admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		ExpectWithOffset(1, err).NotTo(HaveOccurred())
		return rr
	}

	BeforeAll(func(ctx SpecContext) {
		cfg := cp.RESTConfig()
		cfg.QPS, cfg.Burst = 1000, 1000
		admin = versioned.NewForConfigOrDie(cfg)
		Expect(cp.InstallCRDsFrom(ctx, filepath.Join("testdata", "crd-previous.yaml"))).To(Succeed())
		_, err := kubernetes.NewForConfigOrDie(cfg).CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: namespace}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		serverConf, err := cp.AddUser(controlplane.ServerUser, controlplane.ServerGroups)
		Expect(err).NotTo(HaveOccurred())
		asServer = versioned.NewForConfigOrDie(serverConf)
		for _, rr := range previousRRs() {
			restore(ctx, admin, asServer, rr)
			byName[rr.Name] = rr
		}
	})

	It("does not serve while the previous CRD accepts RemediationRequests under any name", func(ctx SpecContext) {
		var err error
		server, err = cp.StartServerNoWait("signal-apiserver-0")
		Expect(err).NotTo(HaveOccurred())
		Consistently(func(g Gomega) {
			code, body, err := cp.ServerReadyz(ctx, server)
			if err == nil {
				g.Expect(code).NotTo(Equal(200))
				g.Expect(body).To(ContainSubstring("[-]remediationrequest-name-rule failed"))
			}
		}).WithContext(ctx).WithTimeout(5 * time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		log, err := os.ReadFile(server.LogPath)
		Expect(err).NotTo(HaveOccurred())
		Expect(string(log)).To(ContainSubstring("apply the CRD of this version (artifacts/crd) first"))
	})

	It("serves once this version's CRD is applied, and then no replica of any version can open an RR under another name", func(ctx SpecContext) {
		Expect(cp.InstallCRDs(ctx)).To(Succeed())
		Eventually(func() (int, error) {
			code, _, err := cp.ServerReadyz(ctx, server)
			return code, err
		}).WithContext(ctx).WithTimeout(time.Minute).Should(Equal(200))
		Expect(cp.RegisterAPIService(ctx, server)).To(Succeed())

		// What a replica of the previous release still running would do
		// when its RR finished: open the next slot. Refused.
		conf, err := cp.AddUser(controlplane.ServerUser, controlplane.ServerGroups)
		Expect(err).NotTo(HaveOccurred())
		var slot remediationv1alpha1.RemediationRequest
		for _, rr := range byName {
			slot = rr
			break
		}
		next := &remediationv1alpha1.RemediationRequest{
			ObjectMeta: metav1.ObjectMeta{Name: strings.TrimSuffix(slot.Name, slot.Name[strings.LastIndex(slot.Name, "-"):]) + "-99", Namespace: namespace},
			Spec:       slot.Spec,
		}
		_, err = versioned.NewForConfigOrDie(conf).RemediationV1alpha1().RemediationRequests(namespace).Create(ctx, next, metav1.CreateOptions{})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "%v", err)
	})

	It("counts on a problem's active RR of the previous release, honouring its idempotency keys, and opens none", func(ctx SpecContext) {
		before := active(problem(ctx, admin, "checkout"))
		Expect(before).To(HaveLen(1))
		legacy := before[0]
		Expect(legacy.Name).To(MatchRegexp(`^rr-[0-9a-f]{16}-0$`))
		Expect(countOf(&legacy)).To(Equal(int64(3)))
		Expect(legacy.Status.Deduplication.RecentIdempotencyKeys).To(HaveLen(1))

		rr := send(ctx, deployment("checkout"))
		Expect(rr.Name).To(Equal(legacy.Name))
		Expect(rr.UID).To(Equal(legacy.UID))
		Expect(rr.Annotations[signalsv1.AnnotationOutcome]).To(Equal("Deduplicated"))
		Expect(countOf(rr)).To(Equal(int64(4)))

		keyed := deployment("checkout")
		keyed.Spec.IdempotencyKey = "am/checkout/1" // counted by the previous release
		rr = send(ctx, keyed)
		Expect(rr.Annotations[signalsv1.AnnotationOutcome]).To(Equal("AlreadyCounted"))
		Expect(countOf(rr)).To(Equal(int64(4)))
		Expect(rr.Status.Deduplication.RecentIdempotencyKeys).To(BeEmpty())
		Expect(rr.Status.Deduplication.IdempotencyKeys).To(HaveLen(remediationv1alpha1.IdempotencyKeyDigestSize))

		all := problem(ctx, admin, "checkout")
		Expect(all).To(HaveLen(1))

		// A sender's own fingerprint did not change; its RR is counted on.
		withKey := deployment("db")
		withKey.Spec.Fingerprint = "incident-7"
		rr = send(ctx, withKey)
		Expect(rr.Name).To(MatchRegexp(`^rr-[0-9a-f]{16}-0$`))
		Expect(countOf(rr)).To(Equal(int64(3)))

		// The newest active slot, after older ones finished and one was
		// deleted.
		rr = send(ctx, deployment("cart"))
		Expect(rr.Name).To(MatchRegexp(`^rr-[0-9a-f]{16}-2$`))
		Expect(countOf(rr)).To(Equal(int64(2)))
		Expect(active(problem(ctx, admin, "cart"))).To(HaveLen(1))
	})

	It("opens this version's RR at the fingerprint's name after the previous release's finished, numbered after it", func(ctx SpecContext) {
		rr := send(ctx, deployment("search"))
		Expect(rr.Annotations[signalsv1.AnnotationOutcome]).To(Equal("Created"))
		Expect(rr.Name).To(Equal(remediationv1alpha1.NameFor(rr.Spec.SignalFingerprint)))
		Expect(rr.Spec.RemediationNumber).To(Equal(int64(3)))
		Expect(rr.Spec.History).To(HaveLen(1))
		Expect(rr.Spec.History[0].Phase).To(Equal(remediationv1alpha1.PhaseCompleted))
		all := problem(ctx, admin, "search")
		for _, o := range all {
			if o.UID == rr.Spec.History[0].UID {
				Expect(o.Name).To(MatchRegexp(`^rr-[0-9a-f]{16}-1$`))
			}
		}
		Expect(all).To(HaveLen(3))
		Expect(active(all)).To(HaveLen(1))

		// The active one of checkout finishes: the next signal opens this
		// version's RR and leaves the old one for retention.
		legacy := active(problem(ctx, admin, "checkout"))[0]
		legacy.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
		_, err := admin.RemediationV1alpha1().RemediationRequests(namespace).UpdateStatus(ctx, &legacy, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		rr = send(ctx, deployment("checkout"))
		Expect(rr.Annotations[signalsv1.AnnotationOutcome]).To(Equal("Created"))
		Expect(rr.Name).To(Equal(remediationv1alpha1.NameFor(rr.Spec.SignalFingerprint)))
		Expect(rr.Spec.RemediationNumber).To(Equal(int64(2)))
		Expect(rr.Spec.History).To(HaveLen(1))
		Expect(rr.Spec.History[0].UID).To(Equal(legacy.UID))
		Expect(rr.Spec.History[0].OccurrenceCount).To(Equal(int64(4)))
		all = problem(ctx, admin, "checkout")
		Expect(all).To(HaveLen(2))
		Expect(active(all)).To(HaveLen(1))
	})

	It("holds a finished RR of the current release at the fingerprint's name, counting the failure its spec.previous records", func(ctx SpecContext) {
		// As the current release leaves a second failed remediation: at the
		// fingerprint's name, spec.previous, a signal summary, no
		// status.recurrence. The controller wrote the phase, the server the
		// count and the summary.
		t := remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: namespace, Name: "ledger"}
		fp := fingerprint.ForObject("", t)
		now := time.Now()
		opened, lastSeen := metav1.NewTime(now.Add(-10*time.Minute)), metav1.NewTime(now.Add(-9*time.Minute))
		earlierOpened, earlierLast := metav1.NewTime(now.Add(-30*time.Minute)), metav1.NewTime(now.Add(-20*time.Minute))
		rrs := admin.RemediationV1alpha1().RemediationRequests(namespace)
		created, err := rrs.Create(ctx, &remediationv1alpha1.RemediationRequest{
			ObjectMeta: metav1.ObjectMeta{Name: remediationv1alpha1.NameFor(fp), Namespace: namespace},
			Spec: remediationv1alpha1.RemediationRequestSpec{
				SignalFingerprint: fp, SignalName: "KubePodCrashLooping", SignalSource: "alertmanager",
				TargetResource: t, FiringTime: opened, ReceivedTime: opened, RemediationNumber: 2,
				Previous: &remediationv1alpha1.PreviousRemediation{
					Name: remediationv1alpha1.NameFor(fp), UID: "0b8a1b52-6c55-4b6e-9d1e-1f0f3b0c0001", RemediationNumber: 1,
					Phase: remediationv1alpha1.PhaseFailed, OccurrenceCount: 3, FirstSeenAt: &earlierOpened, LastSeenAt: &earlierLast,
				},
			},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		// The count while it was active, then the phase (the server under
		// test stamps the finish as soon as it sees it).
		created.Status.Deduplication = &remediationv1alpha1.DeduplicationStatus{FirstSeenAt: opened, LastSeenAt: lastSeen, OccurrenceCount: 2}
		created.Status.SignalSummary = &remediationv1alpha1.SignalSummary{
			HighestSeverity: "warning",
			Signals: []remediationv1alpha1.SignalRecord{{
				Source: "alertmanager", Name: "KubePodCrashLooping", Count: 2, HighestSeverity: "warning",
				State: remediationv1alpha1.SignalFiring, FirstSeenAt: opened, LastSeenAt: &lastSeen,
			}},
		}
		created, err = asServer.RemediationV1alpha1().RemediationRequests(namespace).UpdateStatus(ctx, created, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())
		created.Status.OverallPhase = remediationv1alpha1.PhaseFailed
		_, err = rrs.UpdateStatus(ctx, created, metav1.UpdateOptions{})
		Expect(err).NotTo(HaveOccurred())

		rr := send(ctx, deployment("ledger"))
		Expect(rr.Annotations[signalsv1.AnnotationOutcome]).To(Equal("Held"))
		Expect(rr.UID).To(Equal(created.UID))
		Expect(countOf(rr)).To(Equal(int64(3)))
		rc := rr.Status.Recurrence
		Expect(rc).NotTo(BeNil())
		Expect(rc.Hold).To(Equal(remediationv1alpha1.HoldHeld))
		Expect(rc.ConsecutiveFailures).To(Equal(int64(2)))
		Expect(rc.HeldCount).To(Equal(int64(1)))
		// The held signal is in the summary too: it sums to the count.
		Expect(rr.Status.SignalSummary.Signals).To(HaveLen(1))
		Expect(rr.Status.SignalSummary.Signals[0].Count).To(Equal(int64(3)))
		// The second failure in a row: twice the default backoff of 1m.
		Expect(rc.NextRemediationAt.Sub(rc.FinishedAt.Time)).To(Equal(2 * time.Minute))
		Expect(active(problem(ctx, admin, "ledger"))).To(BeEmpty())
	})
})
