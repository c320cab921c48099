package reliability

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
)

const (
	// requestTimeout is every signal's client timeout: an answer must come
	// within it.
	requestTimeout = 20 * time.Second
	// stormWorkers send signals in closed loops.
	stormWorkers = 12
	// hotShare is the share of signals on the one hot fingerprint; the rest
	// spread over otherTargets other fingerprints.
	hotShare     = 0.5
	otherTargets = 6
)

// sender sends signals through one client, with client-go's retries off so
// that every HTTP answer is recorded as it came.
type sender struct {
	name   string
	client rest.Interface
}

type answerKey struct{}

// answer is what the round tripper saw of the HTTP response.
type answer struct {
	code       int
	retryAfter string
}

// newSender returns a sender for cfg that records the Retry-After header of
// status code and Retry-After header of each answer into the *answer in the
// request's context.
func newSender(name string, cfg *rest.Config) sender {
	cfg = rest.CopyConfig(cfg)
	cfg.QPS, cfg.Burst = 5000, 5000
	cfg.WrapTransport = transport.Wrappers(cfg.WrapTransport, func(rt http.RoundTripper) http.RoundTripper {
		return roundTripperFunc(func(req *http.Request) (*http.Response, error) {
			resp, err := rt.RoundTrip(req)
			if a, ok := req.Context().Value(answerKey{}).(*answer); ok && resp != nil {
				a.code, a.retryAfter = resp.StatusCode, resp.Header.Get("Retry-After")
			}
			return resp, err
		})
	})
	return sender{name: name, client: versioned.NewForConfigOrDie(cfg).SignalsV1().RESTClient()}
}

type roundTripperFunc func(*http.Request) (*http.Response, error)

func (f roundTripperFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// send sends one signal and records what came back.
func (s sender) send(ctx context.Context, sig *signalsv1.Signal, fp string) Request {
	var a answer
	ctx, cancel := context.WithTimeout(context.WithValue(ctx, answerKey{}, &a), requestTimeout)
	defer cancel()
	r := Request{Sender: s.name, Fingerprint: fp, Call: time.Now()}
	res := s.client.Post().Resource("signals").Body(sig).MaxRetries(0).Do(ctx)
	r.Return = time.Now()
	r.Code, r.RetryAfter = a.code, a.retryAfter
	rr := &remediationv1alpha1.RemediationRequest{}
	err := res.Error()
	if err == nil {
		err = res.Into(rr)
	}
	if err != nil {
		r.Err = err.Error()
		if r.Acknowledged() {
			// Headers came, the body did not (the connection died): no
			// acknowledgement.
			r.Err = fmt.Sprintf("%d, then: %s", r.Code, r.Err)
			r.Code = 0
		}
		return r
	}
	r.RR = identity(rr)
	r.Outcome = rr.Annotations[signalsv1.AnnotationOutcome]
	if rr.Status.Deduplication != nil {
		r.Count = rr.Status.Deduplication.OccurrenceCount
	}
	return r
}

// storm sends signals from stormWorkers workers, half of them on one hot
// fingerprint, while a reader lists the namespace's RemediationRequests.
type storm struct {
	namespace string
	targets   []string
	// fingerprints are the targets' fingerprints, as the server computes
	// them; hot is targets[0]'s. run fills both in.
	fingerprints map[string]string
	hot          string
	// keyed is the share of signals that carry an idempotency key, drawn
	// from keysPerTarget keys per target, so that some are redeliveries.
	keyed float64

	mu       sync.Mutex
	requests []Request
	reads    []Read
	// snapshots counts the lists; overlaps are those that saw two active
	// RRs for one fingerprint.
	snapshots int
	overlaps  []string
	started   time.Time
	duration  time.Duration
}

// keysPerTarget is how many idempotency keys keyed signals of one target
// draw from.
const keysPerTarget = 40

func newStorm(namespace string) *storm {
	s := &storm{namespace: namespace, fingerprints: map[string]string{}}
	for i := range otherTargets + 1 {
		s.targets = append(s.targets, fmt.Sprintf("app-%d", i))
	}
	return s
}

// learnFingerprints asks the server, with a dry run of each target's
// signal, for the fingerprint it gives the target.
func (s *storm) learnFingerprints(ctx context.Context, admin versioned.Interface) {
	rnd := rand.New(rand.NewPCG(0, 0))
	for _, target := range s.targets {
		rr, err := admin.SignalsV1().Signals().Create(ctx, s.signal(target, rnd), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		Expect(err).NotTo(HaveOccurred())
		s.fingerprints[target] = rr.Spec.SignalFingerprint
	}
	s.hot = s.fingerprints[s.targets[0]]
}

// signal is a firing signal about target; severity and labels vary, the
// fingerprint does not.
func (s *storm) signal(target string, rnd *rand.Rand) *signalsv1.Signal {
	severity := []string{"critical", "warning", "info"}[rnd.IntN(3)]
	var key string
	if rnd.Float64() < s.keyed {
		key = fmt.Sprintf("%s/delivery-%d", target, rnd.IntN(keysPerTarget))
	}
	return &signalsv1.Signal{Spec: signalsv1.SignalSpec{
		IdempotencyKey: key,
		Source:         "reliability-test",
		Name:           "KubePodCrashLooping",
		Severity:       severity,
		Target: signalsv1.TargetReference{
			APIVersion: "apps/v1", Kind: "Deployment", Namespace: s.namespace, Name: target,
		},
		Labels: map[string]string{"pod": fmt.Sprintf("pod-%d", rnd.IntN(5))},
	}}
}

// run sends signals through senders, in turn, for before, then during
// fault(ctx), then for after; then it reads every RemediationRequest once
// more, retrying until kube-apiserver answers.
func (s *storm) run(ctx context.Context, admin versioned.Interface, senders []sender, before, after time.Duration, fault func(context.Context)) {
	s.learnFingerprints(ctx, admin)
	stormCtx, stop := context.WithCancel(ctx)
	defer stop()
	s.started = time.Now()
	var wg sync.WaitGroup
	for w := range stormWorkers {
		wg.Add(1)
		go func() {
			defer GinkgoRecover()
			defer wg.Done()
			rnd := rand.New(rand.NewPCG(uint64(w), uint64(s.started.UnixNano())))
			snd := senders[w%len(senders)]
			for stormCtx.Err() == nil {
				target := s.targets[0]
				if rnd.Float64() >= hotShare {
					target = s.targets[1+rnd.IntN(otherTargets)]
				}
				// The storm's own end cancels nothing in flight: requests
				// finish on ctx, bounded by requestTimeout.
				r := snd.send(ctx, s.signal(target, rnd), s.fingerprints[target])
				s.mu.Lock()
				s.requests = append(s.requests, r)
				s.mu.Unlock()
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer GinkgoRecover()
		defer wg.Done()
		for stormCtx.Err() == nil {
			s.read(ctx, admin)
			time.Sleep(200 * time.Millisecond)
		}
	}()

	time.Sleep(before)
	fault(ctx)
	time.Sleep(after)
	stop()
	wg.Wait()
	s.duration = time.Since(s.started)
	Eventually(func() bool { return s.read(ctx, admin) }).WithTimeout(time.Minute).Should(BeTrue())
}

// read lists the namespace's RemediationRequests and records each count.
func (s *storm) read(ctx context.Context, admin versioned.Interface) bool {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	call := time.Now()
	list, err := admin.RemediationV1alpha1().RemediationRequests(s.namespace).List(ctx, metav1.ListOptions{})
	ret := time.Now()
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snapshots++
	active := map[string][]string{}
	for _, rr := range list.Items {
		s.reads = append(s.reads, Read{RR: identity(&rr), Count: countOf(&rr), Call: call, Return: ret})
		if !rr.Status.OverallPhase.IsTerminal() {
			active[rr.Spec.SignalFingerprint] = append(active[rr.Spec.SignalFingerprint], rr.Name)
		}
	}
	for fp, names := range active {
		if len(names) > 1 {
			s.overlaps = append(s.overlaps, fmt.Sprintf("%s: %v at %s", fp, names, ret.Format(time.RFC3339Nano)))
		}
	}
	return true
}

// identity names one RemediationRequest object: a deleted slot is created
// again under the same name, with a count of its own.
func identity(rr *remediationv1alpha1.RemediationRequest) string {
	return rr.Name + "@" + string(rr.UID)
}

func countOf(rr *remediationv1alpha1.RemediationRequest) int64 {
	if rr.Status.Deduplication == nil {
		return 0
	}
	return rr.Status.Deduplication.OccurrenceCount
}

// figures summarize a storm for docs/reliability.md.
type figures struct {
	sent, acknowledged, counted, retryable, noAnswer int
	// bare503 are 503s without Retry-After (kube-apiserver's aggregator
	// when the APIService's backend is down).
	bare503 int
	// unauthorized are 401s; any is a failure.
	unauthorized int
	byCode       map[int]int
}

func (f figures) String() string {
	var codes []string
	for _, c := range slices.Sorted(maps.Keys(f.byCode)) {
		codes = append(codes, fmt.Sprintf("%d:%d", c, f.byCode[c]))
	}
	return fmt.Sprintf("sent %d, acknowledged %d, counted %d, retryable %d (of which 503 without Retry-After %d), 401 %d, no answer %d, codes %s",
		f.sent, f.acknowledged, f.counted, f.retryable, f.bare503, f.unauthorized, f.noAnswer, strings.Join(codes, " "))
}

// check asserts the promises on what the storm recorded: every request got
// a 2xx or a retryable answer with Retry-After (or, where allowed says so,
// no HTTP answer at all or a 503 without Retry-After); one active RR per fingerprint in every read
// and at the end; per RR acknowledged <= occurrenceCount <= acknowledged +
// unacknowledged on its fingerprint, with equality where exact; and the
// history linearizable. deleted RRs are left out of the end-state checks.
func (s *storm) check(allowed func(Request) bool, exact bool, deleted ...string) figures {
	s.mu.Lock()
	defer s.mu.Unlock()
	f := figures{sent: len(s.requests), byCode: map[int]int{}}
	var bad []string
	acked := map[string]int64{}
	unacked := map[string]int64{}
	for _, r := range s.requests {
		f.byCode[r.Code]++
		switch {
		case r.Acknowledged():
			f.acknowledged++
			if r.Counted() {
				acked[r.RR]++
			}
			continue
		case r.Code == 429 || r.Code == 503 || r.Code == 504:
			f.retryable++
			if r.RetryAfter == "" && r.Code == 503 && allowed(r) {
				f.bare503++
			} else if r.RetryAfter == "" {
				bad = append(bad, fmt.Sprintf("%s: %d without Retry-After: %s", r.Sender, r.Code, r.Err))
			}
		case r.Code == 401:
			// A restarted replica accepts connections only once it can
			// verify the front-proxy certificate (pkg/cmd/server
			// listener.go), so no request is ever anonymous.
			f.unauthorized++
			bad = append(bad, fmt.Sprintf("%s: 401: %s", r.Sender, r.Err))
		case r.Code == 0:
			f.noAnswer++
			if !allowed(r) {
				bad = append(bad, fmt.Sprintf("%s: no answer after %s: %s", r.Sender, r.Return.Sub(r.Call), r.Err))
			}
		default:
			bad = append(bad, fmt.Sprintf("%s: %d: %s", r.Sender, r.Code, r.Err))
		}
		unacked[r.Fingerprint]++
	}
	Expect(bad).To(BeEmpty(), "answers that are neither 2xx nor retryable")
	Expect(s.overlaps).To(BeEmpty(), "two active RemediationRequests for one fingerprint")

	// The last read is the end state.
	last := s.reads[len(s.reads)-1].Call
	for _, rd := range s.reads {
		if !rd.Call.Equal(last) || slices.Contains(deleted, rd.RR) {
			continue
		}
		f.counted += int(rd.Count)
		fp := fingerprintOfRR(s.requests, rd.RR)
		Expect(rd.Count).To(BeNumerically(">=", acked[rd.RR]), "RR %s: fewer counted than acknowledged", rd.RR)
		Expect(rd.Count).To(BeNumerically("<=", acked[rd.RR]+unacked[fp]), "RR %s: more counted than sent", rd.RR)
		if exact {
			Expect(rd.Count).To(Equal(acked[rd.RR]), "RR %s", rd.RR)
		}
	}
	Expect(CheckHistory(s.requests, s.reads)).To(Succeed())
	return f
}

func fingerprintOfRR(requests []Request, rr string) string {
	for _, r := range requests {
		if r.RR == rr {
			return r.Fingerprint
		}
	}
	return ""
}
