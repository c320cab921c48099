package e2e

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/rest"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
)

const (
	stormNamespace = "e2e-storm"
	// stormWorkers send keyed signals in paced loops, each about one of
	// stormTargets Deployments.
	stormWorkers  = 8
	stormTargets  = 6
	stormInterval = 100 * time.Millisecond
	// signalTimeout bounds one attempt; giveUpAfter bounds the retries of
	// one signal. A signal not acknowledged by then fails the spec.
	signalTimeout = 20 * time.Second
	giveUpAfter   = 3 * time.Minute
)

// Phases of the storm, in order.
const (
	phaseBefore  = "before"
	phaseRollout = "rollout restart"
	phaseBetween = "between"
	phaseDelete  = "delete pod"
	phaseAfter   = "after"
)

// storm sends keyed signals and records every attempt's answer by phase.
type storm struct {
	client rest.Interface

	mu       sync.Mutex
	phase    string
	answers  map[string]map[string]int // phase -> answer -> attempts
	acked    map[string]int64          // target -> acknowledged signals
	gaveUp   []string
	attempts int
}

func (s *storm) setPhase(p string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.phase = p
}

func (s *storm) record(answer string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.answers[s.phase] == nil {
		s.answers[s.phase] = map[string]int{}
	}
	s.answers[s.phase][answer]++
	s.attempts++
	return s.phase
}

// send sends one signal until it is acknowledged, retrying on 429, 503,
// 504 and connection errors with the same idempotency key, so that a
// retried signal that had been counted is not counted again.
func (s *storm) send(ctx context.Context, target, key string) {
	sig := &signalsv1.Signal{Spec: signalsv1.SignalSpec{
		Source: "e2e-storm", Name: "StormAlert", Severity: "warning",
		Target:         signalsv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: stormNamespace, Name: target},
		IdempotencyKey: key,
	}}
	deadline := time.Now().Add(giveUpAfter)
	backoff := 50 * time.Millisecond
	for {
		attemptCtx, cancel := context.WithTimeout(ctx, signalTimeout)
		var code int
		// client-go's own retries (on Retry-After) are off: every answer
		// is recorded as it came.
		err := s.client.Post().Resource("signals").Body(sig).MaxRetries(0).Do(attemptCtx).StatusCode(&code).Error()
		cancel()
		switch {
		case err == nil:
			s.record(fmt.Sprint(code))
			s.mu.Lock()
			s.acked[target]++
			s.mu.Unlock()
			return
		case code == http.StatusTooManyRequests || code == http.StatusServiceUnavailable || code == http.StatusGatewayTimeout:
			s.record(fmt.Sprint(code))
		case code == 0:
			s.record("connection error")
		default:
			phase := s.record(fmt.Sprint(code))
			GinkgoWriter.Printf("%s: %s answered %d: %v\n", phase, key, code, err)
			s.mu.Lock()
			s.gaveUp = append(s.gaveUp, fmt.Sprintf("%s: %d %v", key, code, err))
			s.mu.Unlock()
			return
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			s.mu.Lock()
			s.gaveUp = append(s.gaveUp, fmt.Sprintf("%s: last %d %v", key, code, err))
			s.mu.Unlock()
			return
		}
		time.Sleep(backoff)
		backoff = min(2*backoff, 2*time.Second)
	}
}

func rolloutSpecs() {
	Context("a storm of keyed signals across a rollout restart and a deleted replica", func() {
		It("acknowledges every signal, counts exactly, never opens two RemediationRequests for one target, and sees no 503", func(ctx SpecContext) {
			createNamespace(ctx, stormNamespace)
			// The clients send as users do: a ServiceAccount bound to
			// signal-sender, so every new replica authorizes them afresh.
			cfg := rest.AnonymousClientConfig(adminConf)
			cfg.BearerToken = boundSender(ctx, stormNamespace, "storm-sender")
			cfg.QPS, cfg.Burst = 5000, 5000
			s := &storm{
				client:  versioned.NewForConfigOrDie(cfg).SignalsV1().RESTClient(),
				phase:   phaseBefore,
				answers: map[string]map[string]int{},
				acked:   map[string]int64{},
			}

			By("watching for a second RemediationRequest of any target")
			duplicates := watchForDuplicates(ctx)

			stormCtx, stopStorm := context.WithCancel(ctx)
			var wg sync.WaitGroup
			for w := range stormWorkers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					defer GinkgoRecover()
					tick := time.NewTicker(stormInterval)
					defer tick.Stop()
					for seq := 0; ; seq++ {
						select {
						case <-stormCtx.Done():
							return
						case <-tick.C:
						}
						target := fmt.Sprintf("app-%d", (w+seq)%stormTargets)
						// ctx, not stormCtx: a signal once started is retried
						// until acknowledged, after the storm stops too.
						s.send(ctx, target, fmt.Sprintf("e2e-storm/%d/%d", w, seq))
					}
				}()
			}
			time.Sleep(10 * time.Second)

			By("kubectl rollout restart of the server during the storm")
			s.setPhase(phaseRollout)
			rolloutStart := time.Now()
			adminKubectl(ctx, "-n", serverNamespace, "rollout", "restart", "deployment/"+serverName)
			adminKubectl(ctx, "-n", serverNamespace, "rollout", "status", "deployment/"+serverName, "--timeout=5m")
			waitForTwoReplicas(ctx)
			rolloutTook := time.Since(rolloutStart)
			s.setPhase(phaseBetween)
			time.Sleep(10 * time.Second)

			By("kubectl delete pod of one replica during the storm")
			pods := podsOf(ctx, serverNamespace, serverName)
			Expect(pods).To(HaveLen(2))
			s.setPhase(phaseDelete)
			adminKubectl(ctx, "-n", serverNamespace, "delete", "pod", pods[0].Name)
			waitForTwoReplicas(ctx)
			s.setPhase(phaseAfter)
			time.Sleep(10 * time.Second)
			stopStorm()
			wg.Wait()

			report := stormReport(s, rolloutTook)
			GinkgoWriter.Println(report)
			AddReportEntry("storm", report)

			By("every signal acknowledged, exactly counted, on one RemediationRequest per target")
			Expect(s.gaveUp).To(BeEmpty())
			for target, acked := range s.acked {
				fp := fingerprintFor(ctx, target)
				rrs := rrsOf(ctx, stormNamespace, fp)
				Expect(rrs).To(HaveLen(1), target)
				Expect(countOf(&rrs[0])).To(Equal(acked), target)
			}
			Expect(s.acked).To(HaveLen(stormTargets))
			Expect(rrsIn(ctx, stormNamespace)).To(HaveLen(stormTargets))
			Expect(duplicates()).To(BeEmpty())

			By("graceful rollouts: no 503 while replicas were replaced")
			for _, phase := range []string{phaseRollout, phaseDelete} {
				Expect(s.answers[phase]["503"]).To(BeZero(), "503s during %s", phase)
			}
		})
	})
}

// waitForTwoReplicas waits until the server runs as 2 ready Pods of the
// Deployment's current template and no other Pod, terminating or not.
func waitForTwoReplicas(ctx context.Context) {
	EventuallyWithOffset(1, func(g Gomega) {
		dep, err := kube.AppsV1().Deployments(serverNamespace).Get(ctx, serverName, metav1.GetOptions{})
		g.Expect(err).NotTo(HaveOccurred())
		g.Expect(dep.Status.UpdatedReplicas).To(Equal(int32(2)))
		g.Expect(dep.Status.ReadyReplicas).To(Equal(int32(2)))
		pods := podsOf(ctx, serverNamespace, serverName)
		g.Expect(pods).To(HaveLen(2))
		for _, pod := range pods {
			g.Expect(pod.DeletionTimestamp).To(BeNil())
			g.Expect(podReady(&pod)).To(BeTrue())
		}
	}).WithContext(ctx).Should(Succeed())
}

// fingerprintFor reads the fingerprint of target's RemediationRequest from
// an answer: a dry-run signal about it is counted nowhere.
func fingerprintFor(ctx context.Context, target string) string {
	rr, err := signals.SignalsV1().Signals().Create(ctx, &signalsv1.Signal{Spec: signalsv1.SignalSpec{
		Source: "e2e-storm", Name: "StormAlert",
		Target: signalsv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: stormNamespace, Name: target},
	}}, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return rr.Spec.SignalFingerprint
}

// watchForDuplicates watches the storm's RemediationRequests and returns a
// function that lists every moment a fingerprint had two active ones.
func watchForDuplicates(ctx context.Context) func() []string {
	w, err := signals.RemediationV1alpha1().RemediationRequests(stormNamespace).Watch(ctx, metav1.ListOptions{})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	var mu sync.Mutex
	var found []string
	active := map[string]map[string]bool{} // fingerprint -> active names
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ev := range w.ResultChan() {
			rr, ok := ev.Object.(*remediationv1alpha1.RemediationRequest)
			if !ok {
				continue
			}
			fp := rr.Spec.SignalFingerprint
			if active[fp] == nil {
				active[fp] = map[string]bool{}
			}
			if ev.Type == watch.Deleted || rr.Status.OverallPhase.IsTerminal() {
				delete(active[fp], rr.Name)
			} else {
				active[fp][rr.Name] = true
			}
			if len(active[fp]) > 1 {
				mu.Lock()
				found = append(found, fmt.Sprintf("%s: %v", fp, slices.Sorted(maps.Keys(active[fp]))))
				mu.Unlock()
			}
		}
	}()
	return func() []string {
		w.Stop()
		<-done
		mu.Lock()
		defer mu.Unlock()
		return found
	}
}

func stormReport(s *storm, rolloutTook time.Duration) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var b strings.Builder
	var acked int64
	for _, n := range s.acked {
		acked += n
	}
	fmt.Fprintf(&b, "storm: %d signals acknowledged in %d attempts; rollout restart took %s\n", acked, s.attempts, rolloutTook.Round(time.Second))
	for _, phase := range []string{phaseBefore, phaseRollout, phaseBetween, phaseDelete, phaseAfter} {
		answers := s.answers[phase]
		keys := slices.Collect(maps.Keys(answers))
		sort.Strings(keys)
		var parts []string
		for _, k := range keys {
			parts = append(parts, fmt.Sprintf("%s=%d", k, answers[k]))
		}
		fmt.Fprintf(&b, "  %-16s %s\n", phase+":", strings.Join(parts, " "))
	}
	if len(s.gaveUp) > 0 {
		fmt.Fprintf(&b, "  gave up: %s\n", strings.Join(s.gaveUp, "; "))
	}
	return b.String()
}
