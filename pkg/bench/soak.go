package bench

import (
	"context"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// The soak's traffic.
const (
	soakNamespace      = "soak"
	soakFreshNamespace = "soak-fresh"
	// soakTargets is the number of targets of the steady traffic: after
	// warm-up the RemediationRequests of soakNamespace stop growing.
	soakTargets = 1000
	// soakHot targets get half the steady traffic.
	soakHot = 10
	// soakKeys is the number of idempotency keys, so that keys repeat.
	soakKeys = 50
	// soakChurn is how often the RemediationRequests of the fresh targets
	// are deleted, as a remediation system deletes finished ones.
	soakChurn = 30 * time.Second
	// soakSample is how often memory is sampled.
	soakSample = 10 * time.Second
)

// SoakSample is the memory of signal-apiserver at one moment.
type SoakSample struct {
	Seconds float64 `json:"seconds"`
	// RSSBytes is VmRSS of the process.
	RSSBytes int64 `json:"rssBytes"`
	// HeapInuseBytes and Goroutines are from the server's /metrics.
	HeapInuseBytes float64 `json:"heapInuseBytes"`
	Goroutines     float64 `json:"goroutines"`
	Requests       int64   `json:"requests"`
}

// RunSoak starts a control plane and one signal-apiserver and sends mixed
// signals from concurrency clients for d: firing signals spread over a
// fixed set of targets (half of them to a few hot ones), some with repeating
// idempotency keys, Resolved signals, invalid signals, and signals about
// fresh targets whose RemediationRequests are deleted every 30 seconds. It
// samples the server's RSS and heap every 10 seconds, and fails if any
// answer is unexpected (a 5xx among them) or the counts of the steady
// targets differ from the 2xx answers that counted.
func RunSoak(ctx context.Context, o Options, d time.Duration, concurrency int) (retErr error) {
	fmt.Fprintf(o.Log, "starting etcd, kube-apiserver and signal-apiserver (state and logs in %s); load average %s\n", o.StateDir, loadAverage())
	cp, server, err := controlplane.StartWithServer(ctx, controlplane.Options{
		BinDir: o.BinDir, StateDir: o.StateDir, ServerBinary: o.ServerBinary, RepoRoot: o.RepoRoot,
	}, "signal-apiserver")
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, cp.Stop()) }()
	cpu, err := newCPUMeter(o.ServerBinary)
	if err != nil {
		return err
	}
	pid := cpu.pids["signal-apiserver"][0]
	admin := cp.RESTConfig()
	admin.QPS, admin.Burst = clientQPS, clientQPS
	admin.WarningHandler = rest.NoWarnings{}
	core := kubernetes.NewForConfigOrDie(admin)
	cs := versioned.NewForConfigOrDie(admin)
	for _, ns := range []string{soakNamespace, soakFreshNamespace} {
		b := &bench{core: core}
		if err := b.createNamespace(ctx, ns); err != nil {
			return err
		}
	}
	direct := cp.FrontProxyClientConfig(server, "system:admin", []string{"system:masters"})
	metricsClient := kubernetes.NewForConfigOrDie(direct).CoreV1().RESTClient()

	var (
		requests atomic.Int64
		mu       sync.Mutex
		answers  = map[string]int{}
		counted  int
		samples  []SoakSample
	)
	record := func(kind string, counts bool) {
		mu.Lock()
		defer mu.Unlock()
		answers[kind]++
		if counts {
			counted++
		}
	}
	began := time.Now()
	sample := func() error {
		rss, err := rssBytes(pid)
		if err != nil {
			return err
		}
		heap, goroutines, err := scrapeMemory(ctx, metricsClient)
		if err != nil {
			return err
		}
		s := SoakSample{Seconds: time.Since(began).Seconds(), RSSBytes: rss, HeapInuseBytes: heap, Goroutines: goroutines, Requests: requests.Load()}
		samples = append(samples, s)
		fmt.Fprintf(o.Log, "%5.0fs  rss %6.1f MiB  heap in use %6.1f MiB  goroutines %5.0f  requests %d\n",
			s.Seconds, mib(float64(s.RSSBytes)), mib(s.HeapInuseBytes), s.Goroutines, s.Requests)
		return nil
	}
	if err := sample(); err != nil {
		return err
	}

	runCtx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var wg sync.WaitGroup
	var fresh atomic.Int64
	for w := range concurrency {
		wg.Go(func() {
			rnd := mathrand.New(mathrand.NewPCG(orderSeed, uint64(w)))
			for runCtx.Err() == nil {
				kind, sig := soakSignal(rnd, &fresh)
				// Sent with ctx, not runCtx: a request cancelled at the
				// deadline may have been counted without its answer.
				rr, err := cs.SignalsV1().Signals().Create(ctx, sig, metav1.CreateOptions{})
				requests.Add(1)
				if err != nil {
					record(fmt.Sprintf("%s: %s %s", kind, apierrors.ReasonForError(err), errCode(err)), false)
					continue
				}
				outcome := rr.Annotations[signalsv1.AnnotationOutcome]
				steadyCount := kind != "fresh" && (outcome == "Created" || outcome == "Deduplicated")
				record(kind+": "+outcome, steadyCount)
			}
		})
	}
	ticker := time.NewTicker(soakSample)
	churn := time.NewTicker(soakChurn)
	var loopErr error
loop:
	for {
		select {
		case <-runCtx.Done():
			break loop
		case <-ticker.C:
			if err := sample(); err != nil {
				loopErr = err
				cancel()
			}
		case <-churn.C:
			err := cs.RemediationV1alpha1().RemediationRequests(soakFreshNamespace).DeleteCollection(runCtx, metav1.DeleteOptions{}, metav1.ListOptions{})
			if err != nil && runCtx.Err() == nil {
				loopErr = err
				cancel()
			}
		}
	}
	ticker.Stop()
	churn.Stop()
	wg.Wait()
	if loopErr != nil {
		return loopErr
	}
	if err := sample(); err != nil {
		return err
	}

	rrs, err := cs.RemediationV1alpha1().RemediationRequests(soakNamespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return err
	}
	var sum int64
	for _, rr := range rrs.Items {
		if rr.Status.Deduplication != nil {
			sum += rr.Status.Deduplication.OccurrenceCount
		}
	}
	fmt.Fprintf(o.Out, "\nsoak %s, %d clients, %d requests (%.0f/s); load average %s\n", d, concurrency, requests.Load(),
		float64(requests.Load())/time.Since(began).Seconds(), loadAverage())
	kinds := make([]string, 0, len(answers))
	for k := range answers {
		kinds = append(kinds, k)
	}
	slices.Sort(kinds)
	var failures []string
	for _, k := range kinds {
		fmt.Fprintf(o.Out, "  %-40s %d\n", k, answers[k])
		if !expectedSoakAnswer(k) {
			failures = append(failures, fmt.Sprintf("unexpected answer %q (%d times)", k, answers[k]))
		}
	}
	fmt.Fprintf(o.Out, "steady targets: %d RemediationRequests, sum of counts %d, counting 2xx answers %d\n", len(rrs.Items), sum, counted)
	if sum != int64(counted) {
		failures = append(failures, fmt.Sprintf("sum of counts %d != counting 2xx answers %d", sum, counted))
	}
	first, last := samples[0], samples[len(samples)-1]
	peak := slices.MaxFunc(samples, func(a, b SoakSample) int { return int(a.RSSBytes - b.RSSBytes) })
	peakHeap := slices.MaxFunc(samples, func(a, b SoakSample) int { return int(a.HeapInuseBytes - b.HeapInuseBytes) })
	fmt.Fprintf(o.Out, "RSS MiB: start %.1f, peak %.1f (at %.0fs), end %.1f\n", mib(float64(first.RSSBytes)), mib(float64(peak.RSSBytes)), peak.Seconds, mib(float64(last.RSSBytes)))
	fmt.Fprintf(o.Out, "heap in use MiB: start %.1f, peak %.1f (at %.0fs), end %.1f; goroutines start %.0f, end %.0f\n",
		mib(first.HeapInuseBytes), mib(peakHeap.HeapInuseBytes), peakHeap.Seconds, mib(last.HeapInuseBytes), first.Goroutines, last.Goroutines)
	if err := writeJSON(o.JSONPath, map[string]any{"samples": samples, "answers": answers, "counted": counted, "sumOfCounts": sum}); err != nil {
		return err
	}
	for _, f := range failures {
		fmt.Fprintln(o.Out, "FAIL:", f)
	}
	if len(failures) > 0 {
		return ErrChecksFailed
	}
	return nil
}

// soakSignal picks the next signal of the mix and names its kind.
func soakSignal(rnd *mathrand.Rand, fresh *atomic.Int64) (string, *signalsv1.Signal) {
	sig := &signalsv1.Signal{Spec: signalsv1.SignalSpec{
		Source:   "signal-bench-soak",
		Name:     "KubePodCrashLooping",
		Severity: "critical",
		Target:   signalsv1.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: soakNamespace},
		Labels:   map[string]string{"team": "platform", "alertname": "KubePodCrashLooping"},
	}}
	target := func(n int) string { return "app-" + strconv.Itoa(rnd.IntN(n)) }
	switch p := rnd.IntN(100); {
	case p < 45:
		sig.Spec.Target.Name = target(soakHot)
		return "hot", sig
	case p < 75:
		sig.Spec.Target.Name = target(soakTargets)
		return "spread", sig
	case p < 85:
		sig.Spec.Target.Name = target(soakTargets)
		sig.Spec.IdempotencyKey = "delivery-" + strconv.Itoa(rnd.IntN(soakKeys))
		return "keyed", sig
	case p < 90:
		sig.Spec.Target.Name = target(soakTargets)
		sig.Spec.Status = "Resolved"
		return "resolved", sig
	case p < 95:
		sig.Spec.Target.Namespace = soakFreshNamespace
		sig.Spec.Target.Name = "fresh-" + strconv.FormatInt(fresh.Add(1), 10)
		return "fresh", sig
	default:
		sig.Spec.Target.Name = "app-0"
		sig.Spec.Target.Kind = "not a kind"
		return "invalid", sig
	}
}

// expectedSoakAnswer says whether an answer, as recorded, is one the mix
// should get: 2xx outcomes, 404 for Resolved signals with nothing to
// resolve, 422 for invalid signals. Everything else, a 5xx above all, is a
// failure.
func expectedSoakAnswer(k string) bool {
	kind, answer, _ := strings.Cut(k, ": ")
	switch kind {
	case "invalid":
		return answer == "Invalid 422"
	case "resolved":
		return answer == "Resolved" || answer == "NotFound 404"
	case "keyed":
		return answer == "Created" || answer == "Deduplicated" || answer == "AlreadyCounted"
	default:
		return answer == "Created" || answer == "Deduplicated"
	}
}

func errCode(err error) string {
	var status apierrors.APIStatus
	if errors.As(err, &status) {
		return strconv.Itoa(int(status.Status().Code))
	}
	return err.Error()
}

// rssBytes reads VmRSS of process pid.
func rssBytes(pid int) (int64, error) {
	v := procField(fmt.Sprintf("/proc/%d/status", pid), "VmRSS")
	kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(v), " kB"), 10, 64)
	if err != nil {
		return 0, fmt.Errorf("VmRSS of %d: %q: %w", pid, v, err)
	}
	return kb << 10, nil
}

// scrapeMemory reads go_memstats_heap_inuse_bytes and go_goroutines from a
// server's /metrics.
func scrapeMemory(ctx context.Context, client rest.Interface) (heap, goroutines float64, err error) {
	body, err := client.Get().AbsPath("/metrics").SetHeader("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain))).Stream(ctx)
	if err != nil {
		return 0, 0, fmt.Errorf("GET /metrics: %w", err)
	}
	defer body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(body)
	if err != nil {
		return 0, 0, fmt.Errorf("parsing metrics: %w", err)
	}
	gauge := func(name string) (float64, error) {
		f, ok := families[name]
		if !ok || len(f.GetMetric()) == 0 {
			return 0, fmt.Errorf("no metric %s", name)
		}
		return f.GetMetric()[0].GetGauge().GetValue(), nil
	}
	if heap, err = gauge("go_memstats_heap_inuse_bytes"); err != nil {
		return 0, 0, err
	}
	goroutines, err = gauge("go_goroutines")
	return heap, goroutines, err
}

func mib(b float64) float64 { return b / (1 << 20) }
