package reliability

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"syscall"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// controllerBackoff spaces a controller's retries of a status update that
// lost to the storm's writes. client-go's DefaultRetry (5 tries within
// about 50 ms) loses to a hot RR written every few milliseconds on a
// loaded machine.
var controllerBackoff = wait.Backoff{Steps: 20, Duration: 5 * time.Millisecond, Factor: 1.5, Jitter: 1, Cap: 100 * time.Millisecond}

// notReadyFor asserts that s stays up and answers /readyz with anything but
// 200 for d.
func notReadyFor(ctx context.Context, s *controlplane.Server, d time.Duration) {
	Consistently(func(g Gomega) {
		g.Expect(s.Done()).NotTo(BeClosed(), "%s exited; log: %s", s.Name, s.LogPath)
		code, _, err := cp.ServerReadyz(ctx, s)
		if err == nil {
			g.Expect(code).NotTo(Equal(200), "%s ready", s.Name)
		}
	}).WithContext(ctx).WithTimeout(d).WithPolling(500 * time.Millisecond).Should(Succeed())
}

// Figures of each spec, printed at the end for docs/reliability.md.
var _ = ReportAfterEach(func(r SpecReport) {
	for _, e := range r.ReportEntries {
		if e.Name == "figures" {
			fmt.Fprintf(GinkgoWriter, "FIGURES %s: %s\n", r.LeafNodeText, e.Value.String())
		}
	}
})

var _ = Describe("signal-apiserver under faults", Ordered, func() {
	// replicas[0] is the APIService's backend; replicas[1] is reached
	// directly, as a second replica behind a Service would be.
	var (
		replicas [2]*controlplane.Server
		admin    *versioned.Clientset
		core     *kubernetes.Clientset
	)
	BeforeAll(func() {
		cfg := cp.RESTConfig()
		cfg.QPS, cfg.Burst = 1000, 1000
		admin = versioned.NewForConfigOrDie(cfg)
		core = kubernetes.NewForConfigOrDie(cfg)
	})

	newNamespace := func(ctx context.Context, name string) string {
		_, err := core.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		return name
	}
	// running starts what the specs before a spec start, when it runs
	// without them (--ginkgo.focus): the CRDs and replicas 0 to n-1, the
	// first behind the APIService.
	running := func(ctx context.Context, n int) {
		if replicas[n-1] != nil {
			return
		}
		Expect(cp.InstallCRDs(ctx)).To(Succeed())
		for i := range n {
			if replicas[i] == nil {
				var err error
				replicas[i], err = cp.StartServer(ctx, fmt.Sprintf("signal-apiserver-%d", i), holdsOff...)
				Expect(err).NotTo(HaveOccurred())
			}
		}
		Expect(cp.RegisterAPIService(ctx, replicas[0])).To(Succeed())
	}
	viaAggregator := func() sender { return newSender("via-aggregator", cp.RESTConfig()) }
	direct := func(i int) sender {
		return newSender(fmt.Sprintf("direct-%d", i), cp.FrontProxyClientConfig(replicas[i], "system:admin", []string{"system:masters"}))
	}

	It("starts before the CRD exists: not ready, no crash, ready once it is installed", func(ctx SpecContext) {
		var err error
		replicas[0], err = cp.StartServerNoWait("signal-apiserver-0", holdsOff...)
		Expect(err).NotTo(HaveOccurred())
		notReadyFor(ctx, replicas[0], 5*time.Second)

		Expect(cp.InstallCRDs(ctx)).To(Succeed())
		installed := time.Now()
		Expect(cp.WaitForServerReady(ctx, replicas[0])).To(Succeed())
		AddReportEntry("figures", fmt.Sprintf("ready %s after the CRD was Established", time.Since(installed).Round(100*time.Millisecond)))
		Expect(replicas[0].Done()).NotTo(BeClosed())
		Expect(cp.RegisterAPIService(ctx, replicas[0])).To(Succeed())
	}, SpecTimeout(2*time.Minute))

	It("starts while kube-apiserver is down: not ready, no crash, ready once it is back", func(ctx SpecContext) {
		running(ctx, 1)
		Expect(cp.KillAPIServer()).To(Succeed())
		var err error
		replicas[1], err = cp.StartServerNoWait("signal-apiserver-1", holdsOff...)
		Expect(err).NotTo(HaveOccurred())
		notReadyFor(ctx, replicas[1], 5*time.Second)

		Expect(cp.StartAPIServer()).To(Succeed())
		back := time.Now()
		Expect(cp.WaitForServerReady(ctx, replicas[1])).To(Succeed())
		AddReportEntry("figures", fmt.Sprintf("ready %s after kube-apiserver's /healthz", time.Since(back).Round(100*time.Millisecond)))
		Expect(replicas[1].Done()).NotTo(BeClosed())
		// The replica that was running all along is ready again too.
		Expect(cp.WaitForServerReady(ctx, replicas[0])).To(Succeed())
		Expect(replicas[0].Done()).NotTo(BeClosed())
	}, SpecTimeout(3*time.Minute))

	It("keeps both promises when a replica is killed mid-storm and restarts", func(ctx SpecContext) {
		running(ctx, 2)
		s := newStorm(newNamespace(ctx, "kill-replica"))
		senders := []sender{viaAggregator(), direct(0), direct(1)}
		s.run(ctx, admin, senders, 1500*time.Millisecond, 2500*time.Millisecond, func(ctx context.Context) {
			Expect(replicas[0].Kill()).To(Succeed())
			time.Sleep(time.Second)
			var err error
			replicas[0], err = cp.RestartServer(ctx, replicas[0])
			Expect(err).NotTo(HaveOccurred())
		})
		// Connections to the killed process break: those requests have no
		// HTTP answer, and kube-apiserver's aggregator, whose backend it is,
		// resets its streams (no answer) and then answers 503 without
		// Retry-After while it is down. The restarted process accepts
		// connections only once it can verify the front-proxy certificate,
		// so none of its answers is a 401 (docs/reliability.md).
		f := s.check(func(r Request) bool {
			return r.Sender == "direct-0" || r.Sender == "via-aggregator"
		}, false)
		AddReportEntry("figures", fmt.Sprintf("%s; %s", f, s.duration.Round(100*time.Millisecond)))
	}, SpecTimeout(3*time.Minute))

	It("keeps both promises when kube-apiserver restarts mid-storm", func(ctx SpecContext) {
		running(ctx, 2)
		s := newStorm(newNamespace(ctx, "restart-kube-apiserver"))
		senders := []sender{viaAggregator(), direct(0), direct(1)}
		s.run(ctx, admin, senders, 1500*time.Millisecond, 2500*time.Millisecond, func(context.Context) {
			Expect(cp.KillAPIServer()).To(Succeed())
			Expect(cp.StartAPIServer()).To(Succeed())
		})
		// While kube-apiserver is down, nothing answers its port; as it
		// comes back, its aggregator answers 503 until the APIService is
		// Available again.
		f := s.check(func(r Request) bool { return r.Sender == "via-aggregator" }, false)
		AddReportEntry("figures", fmt.Sprintf("%s; %s", f, s.duration.Round(100*time.Millisecond)))
	}, SpecTimeout(3*time.Minute))

	It("keeps both promises when etcd is paused for 5 seconds mid-storm", func(ctx SpecContext) {
		running(ctx, 2)
		s := newStorm(newNamespace(ctx, "pause-etcd"))
		senders := []sender{viaAggregator(), direct(1)}
		pid, err := cp.EtcdPID()
		Expect(err).NotTo(HaveOccurred())
		s.run(ctx, admin, senders, 1500*time.Millisecond, 2500*time.Millisecond, func(context.Context) {
			Expect(syscall.Kill(pid, syscall.SIGSTOP)).To(Succeed())
			time.Sleep(5 * time.Second)
			Expect(syscall.Kill(pid, syscall.SIGCONT)).To(Succeed())
		})
		f := s.check(func(Request) bool { return false }, false)
		AddReportEntry("figures", fmt.Sprintf("%s; %s", f, s.duration.Round(100*time.Millisecond)))
	}, SpecTimeout(3*time.Minute))

	It("keeps both promises when the hot fingerprint's RR is deleted, and its successor turned terminal, mid-storm", func(ctx SpecContext) {
		running(ctx, 2)
		s := newStorm(newNamespace(ctx, "delete-and-terminal"))
		senders := []sender{viaAggregator(), direct(1)}
		rrs := admin.RemediationV1alpha1().RemediationRequests(s.namespace)
		active := func(ctx context.Context) string {
			list, err := rrs.List(ctx, metav1.ListOptions{FieldSelector: fields.OneTermEqualSelector("spec.signalFingerprint", s.hot).String()})
			Expect(err).NotTo(HaveOccurred())
			for _, rr := range list.Items {
				if !rr.Status.OverallPhase.IsTerminal() {
					return identity(&rr)
				}
			}
			return ""
		}
		var deleted, terminal string
		s.run(ctx, admin, senders, 1500*time.Millisecond, 2500*time.Millisecond, func(ctx context.Context) {
			deleted = active(ctx)
			Expect(deleted).NotTo(BeEmpty())
			// The engine creates the deleted slot again: same name, new UID.
			Expect(rrs.Delete(ctx, strings.Split(deleted, "@")[0], metav1.DeleteOptions{})).To(Succeed())
			Eventually(active).WithContext(ctx).WithTimeout(30 * time.Second).ShouldNot(Or(BeEmpty(), Equal(deleted)))
			time.Sleep(time.Second)
			terminal = active(ctx)
			Expect(retry.RetryOnConflict(controllerBackoff, func() error {
				rr, err := rrs.Get(ctx, strings.Split(terminal, "@")[0], metav1.GetOptions{})
				if err != nil {
					return err
				}
				rr.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
				_, err = rrs.UpdateStatus(ctx, rr, metav1.UpdateOptions{})
				return err
			})).To(Succeed())
		})
		f := s.check(func(Request) bool { return false }, true, deleted)
		Expect(active(ctx)).NotTo(Or(BeEmpty(), Equal(terminal)))
		AddReportEntry("figures", fmt.Sprintf("%s; %s", f, s.duration.Round(100*time.Millisecond)))
	}, SpecTimeout(3*time.Minute))

	It("keeps one active RR per fingerprint and exact counts while a controller finishes RRs and retention deletes them", func(ctx SpecContext) {
		running(ctx, 2)
		s := newStorm(newNamespace(ctx, "retention"))
		s.keyed = keyedShare
		var r *retention
		s.run(ctx, admin, []sender{viaAggregator(), direct(1)}, 0, 0, func(ctx context.Context) {
			r = newRetention(admin, s.namespace, slices.Collect(maps.Values(s.fingerprints)))
			actors, stop := context.WithTimeout(ctx, retentionStormDuration)
			defer stop()
			r.run(ctx, actors)
		})
		// The informer sees every deletion up to the last read.
		last := map[string]bool{}
		s.mu.Lock()
		for _, rd := range s.reads {
			if rd.Call.Equal(s.reads[len(s.reads)-1].Call) {
				last[rd.RR] = true
			}
		}
		s.mu.Unlock()
		Eventually(func() bool { return r.caughtUp(last) }).WithContext(ctx).WithTimeout(30 * time.Second).Should(BeTrue())
		f, problems := checkRetention(s, r)
		AddReportEntry("figures", fmt.Sprintf("%s; %s", f, s.duration.Round(100*time.Millisecond)))
		if len(f.unrecorded) > 0 {
			AddReportEntry("finished without the controller learning it", strings.Join(f.unrecorded, "\n"))
		}
		if len(problems) > 0 {
			Fail("the retention storm broke the promises:\n" + strings.Join(problems, "\n"))
		}
	}, SpecTimeout(3*time.Minute))
})
