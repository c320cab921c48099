package reliability

import (
	"context"
	"fmt"
	"maps"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"time"

	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/retry"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	typedremediation "github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/typed/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/informers/externalversions"
)

// How the actors of the retention storm behave.
const (
	// retentionStormDuration is how long the controller and the deleters
	// work during the storm.
	retentionStormDuration = 60 * time.Second
	// An RR stays Pending, then Processing, for a random time up to these.
	maxPending    = 1200 * time.Millisecond
	maxProcessing = 1200 * time.Millisecond
	// The newest RR of a random fingerprint is deleted every so often, up
	// to this.
	maxBetweenNewestDeletions = 1500 * time.Millisecond
	// keyedShare of the storm's signals carry an idempotency key.
	keyedShare = 0.3
)

var terminalPhases = []remediationv1alpha1.Phase{
	remediationv1alpha1.PhaseCompleted, remediationv1alpha1.PhaseFailed, remediationv1alpha1.PhaseTimedOut,
	remediationv1alpha1.PhaseSkipped, remediationv1alpha1.PhaseCancelled,
}

// incarnation is one RemediationRequest object (a UID), as the actors saw it.
type incarnation struct {
	id          string // identity: name@uid
	key         string // namespace/name, its key in the informer's store
	fingerprint string
	added       time.Time
	// pendingFor and processingFor are how long the controller leaves it
	// in each phase.
	pendingFor, processingFor time.Duration
	processingAt              time.Time
	// terminal is set when the controller's terminal status update
	// succeeded; finalCount is the count that update stored, and
	// terminalAt when it returned: no write lands on it after that.
	terminal   bool
	finalCount int64
	terminalAt time.Time
	// deletedBy names the actor whose delete succeeded.
	deletedBy string
	deleting  bool
	// gone is set when the informer saw it deleted (by anyone: an actor,
	// or signal-apiserver replacing a finished one), with its last state:
	// goneKnown unless the informer only learnt it from a relist (a
	// tombstone), goneTerminal and goneCount from that state, goneAt when
	// the informer saw it.
	gone, goneKnown, goneTerminal bool
	goneCount                     int64
	goneAt                        time.Time
	// history is what every actor saw and did to it, in order.
	history []string
}

// note adds a line to inc's history; callers hold retention.mu.
func (inc *incarnation) note(format string, args ...any) {
	inc.history = append(inc.history, time.Now().Format("15:04:05.000")+" "+fmt.Sprintf(format, args...))
}

func describe(rr *remediationv1alpha1.RemediationRequest) string {
	phase := string(rr.Status.OverallPhase)
	if phase == "" {
		phase = "-"
	}
	return fmt.Sprintf("rv=%s phase=%s count=%d", rr.ResourceVersion, phase, countOf(rr))
}

// retention plays a remediation controller and two deleters against one
// namespace: the controller moves active RRs to Processing, then to a
// terminal phase, with resourceVersion-preconditioned status updates; a
// retention policy deletes each RR the moment it sees it terminal; an
// operator deletes the newest RR of a random fingerprint, whatever its phase.
// Every delete names the UID it means.
type retention struct {
	rrs          typedremediation.RemediationRequestInterface
	informer     cache.SharedIndexInformer
	fingerprints []string

	mu   sync.Mutex
	rnd  *rand.Rand
	seen map[types.UID]*incarnation
	// order holds each fingerprint's UIDs in the order they were added.
	order map[string][]types.UID
	// errs are the actors' unexpected errors.
	errs []string
	// stopped: no more deletes start; deletes tracks those in flight.
	stopped bool
	deletes sync.WaitGroup
}

func newRetention(admin versioned.Interface, namespace string, fingerprints []string) *retention {
	factory := externalversions.NewSharedInformerFactoryWithOptions(admin, 0, externalversions.WithNamespace(namespace))
	r := &retention{
		rrs:          admin.RemediationV1alpha1().RemediationRequests(namespace),
		informer:     factory.Remediation().V1alpha1().RemediationRequests().Informer(),
		fingerprints: fingerprints,
		rnd:          rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), 9)),
		seen:         map[types.UID]*incarnation{},
		order:        map[string][]types.UID{},
	}
	_, err := r.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    func(obj any) { r.observe(obj.(*remediationv1alpha1.RemediationRequest)) },
		UpdateFunc: func(_, obj any) { r.observe(obj.(*remediationv1alpha1.RemediationRequest)) },
		DeleteFunc: r.observeDeletion,
	})
	Expect(err).NotTo(HaveOccurred())
	return r
}

// observe registers rr and hands it to retention once it is terminal.
func (r *retention) observe(rr *remediationv1alpha1.RemediationRequest) {
	r.mu.Lock()
	defer r.mu.Unlock()
	inc := r.incarnationOf(rr)
	inc.note("informer: %s", describe(rr))
	if rr.Status.OverallPhase.IsTerminal() && !inc.deleting && !r.stopped {
		inc.deleting = true
		r.deletes.Add(1)
		go func() {
			defer r.deletes.Done()
			r.delete(context.Background(), rr, "retention")
		}()
	}
}

// observeDeletion records that an RR is gone, and its last state: whoever
// deleted it, no count lands on it after that.
func (r *retention) observeDeletion(obj any) {
	known := true
	if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
		obj, known = tombstone.Obj, false
	}
	rr, ok := obj.(*remediationv1alpha1.RemediationRequest)
	if !ok {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	inc := r.incarnationOf(rr)
	inc.gone, inc.goneKnown, inc.goneAt = true, known, time.Now()
	inc.goneTerminal, inc.goneCount = rr.Status.OverallPhase.IsTerminal(), countOf(rr)
	what := "deleted"
	if !known {
		what = "deleted, learnt from a relist (last state seen)"
	}
	inc.note("informer: %s, %s", what, describe(rr))
}

// caughtUp reports whether the informer holds exactly the RRs of ids (the
// identities of a list read after every write).
func (r *retention) caughtUp(ids map[string]bool) bool {
	objs := r.informer.GetStore().List()
	if len(objs) != len(ids) {
		return false
	}
	for _, obj := range objs {
		if !ids[identity(obj.(*remediationv1alpha1.RemediationRequest))] {
			return false
		}
	}
	return true
}

func (r *retention) incarnationOf(rr *remediationv1alpha1.RemediationRequest) *incarnation {
	inc := r.seen[rr.UID]
	if inc == nil {
		inc = &incarnation{
			id:            identity(rr),
			key:           rr.Namespace + "/" + rr.Name,
			fingerprint:   rr.Spec.SignalFingerprint,
			added:         time.Now(),
			pendingFor:    time.Duration(r.rnd.Int64N(int64(maxPending))),
			processingFor: time.Duration(r.rnd.Int64N(int64(maxProcessing))),
		}
		r.seen[rr.UID] = inc
		r.order[inc.fingerprint] = append(r.order[inc.fingerprint], rr.UID)
	}
	return inc
}

// actorTimeout bounds each request of an actor. A request is not cut off
// when the actors stop: its answer must be known (a write that lands as its
// context ends would be one the actors do not know about).
const actorTimeout = 20 * time.Second

// delete deletes rr, and only that object.
func (r *retention) delete(ctx context.Context, rr *remediationv1alpha1.RemediationRequest, by string) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), actorTimeout)
	defer cancel()
	err := r.rrs.Delete(ctx, rr.Name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &rr.UID}})
	r.mu.Lock()
	defer r.mu.Unlock()
	r.seen[rr.UID].note("%s deletes it (%s): %v", by, describe(rr), errOrOK(err))
	switch {
	case err == nil:
		r.seen[rr.UID].deletedBy = by
	case apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Gone already, or the name holds another incarnation.
	default:
		r.errs = append(r.errs, fmt.Sprintf("%s deleting %s: %v", by, identity(rr), err))
	}
}

func errOrOK(err error) string {
	if err == nil {
		return "OK"
	}
	return err.Error()
}

// run runs the controller and the operator until ctx ends, then waits for
// every delete in flight. The informer runs until watch ends: it must see
// what happens after the actors stop (signal-apiserver replacing an RR
// they finished), up to the end of the spec.
func (r *retention) run(watch, ctx context.Context) {
	go r.informer.Run(watch.Done())
	Expect(cache.WaitForCacheSync(ctx.Done(), r.informer.HasSynced)).To(BeTrue())
	var wg sync.WaitGroup
	wg.Add(2)
	go func() {
		defer wg.Done()
		wait.UntilWithContext(ctx, r.control, 50*time.Millisecond)
	}()
	go func() {
		defer wg.Done()
		for {
			r.mu.Lock()
			pause := time.Duration(r.rnd.Int64N(int64(maxBetweenNewestDeletions)))
			r.mu.Unlock()
			select {
			case <-ctx.Done():
				return
			case <-time.After(pause):
			}
			r.deleteNewest(ctx)
		}
	}()
	wg.Wait()
	r.mu.Lock()
	r.stopped = true
	r.mu.Unlock()
	r.deletes.Wait()
}

// control moves every active RR that has been in its phase long enough on.
func (r *retention) control(ctx context.Context) {
	for _, obj := range r.informer.GetStore().List() {
		rr := obj.(*remediationv1alpha1.RemediationRequest)
		if rr.Status.OverallPhase.IsTerminal() {
			continue
		}
		r.mu.Lock()
		inc := r.incarnationOf(rr)
		var to remediationv1alpha1.Phase
		switch {
		case inc.terminal:
		case inc.processingAt.IsZero() && time.Since(inc.added) >= inc.pendingFor:
			to = remediationv1alpha1.PhaseProcessing
		case !inc.processingAt.IsZero() && time.Since(inc.processingAt) >= inc.processingFor:
			to = terminalPhases[r.rnd.IntN(len(terminalPhases))]
		}
		r.mu.Unlock()
		if to != "" {
			r.setPhase(ctx, rr, to)
		}
	}
}

// setPhase writes phase on rr as a controller does: on the version it has,
// and on a fresh read after a conflict. It gives up when rr is gone.
func (r *retention) setPhase(ctx context.Context, rr *remediationv1alpha1.RemediationRequest, phase remediationv1alpha1.Phase) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), actorTimeout)
	defer cancel()
	current := rr.DeepCopy()
	err := retry.RetryOnConflict(controllerBackoff, func() error {
		if current == nil {
			got, err := r.rrs.Get(ctx, rr.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if got.UID != rr.UID {
				return apierrors.NewNotFound(remediationv1alpha1.Resource("remediationrequests"), rr.Name)
			}
			current = got
		}
		current.Status.OverallPhase = phase
		updated, err := r.rrs.UpdateStatus(ctx, current, metav1.UpdateOptions{})
		r.mu.Lock()
		defer r.mu.Unlock()
		inc := r.seen[rr.UID]
		inc.note("controller: %s → %s: %v", describe(current), phase, errOrOK(err))
		if err != nil {
			current = nil
			return err
		}
		if phase.IsTerminal() {
			inc.terminal, inc.finalCount, inc.terminalAt = true, countOf(updated), time.Now()
		} else {
			inc.processingAt = time.Now()
		}
		return nil
	})
	switch {
	case err == nil, apierrors.IsNotFound(err), apierrors.IsConflict(err):
		// Deleted under the controller, or still contended: it tries
		// again on its next pass if the RR is still there.
	default:
		r.mu.Lock()
		r.errs = append(r.errs, fmt.Sprintf("controller setting %s on %s: %v", phase, identity(rr), err))
		r.mu.Unlock()
	}
}

// deleteNewest deletes the newest RR of a random fingerprint, whatever its
// phase, as an operator cleaning up would.
func (r *retention) deleteNewest(ctx context.Context) {
	r.mu.Lock()
	fp := r.fingerprints[r.rnd.IntN(len(r.fingerprints))]
	var keys []string
	for _, uid := range r.order[fp] {
		keys = append(keys, r.seen[uid].key)
	}
	uids := slices.Clone(r.order[fp])
	r.mu.Unlock()
	for i, uid := range slices.Backward(uids) {
		obj, ok, _ := r.informer.GetStore().GetByKey(keys[i])
		if rr, _ := obj.(*remediationv1alpha1.RemediationRequest); ok && rr.UID == uid {
			r.delete(ctx, rr, "operator")
			return
		}
	}
}

// retentionFigures summarize a retention storm.
type retentionFigures struct {
	figures
	alreadyCounted int
	// snapshots were listed; violations showed two active RRs for one
	// fingerprint.
	snapshots, violations int
	// opened RRs (UIDs); madeTerminal by the controller; deleted by
	// retention, or as the newest (of which deletedWhileActive were
	// active).
	opened, madeTerminal, deletedTerminal, deletedNewest, deletedWhileActive int
	// finishedUnrecorded were made terminal by a controller write whose
	// answer it did not get, and deleted: checked with their last state.
	finishedUnrecorded int
	// unrecorded are their histories.
	unrecorded []string
	// exact and bounded count the RRs whose count was checked, exactly or
	// within the unacknowledged signals that may have counted on them.
	exact, bounded int
}

func (f retentionFigures) String() string {
	return fmt.Sprintf("%s, AlreadyCounted %d; %d snapshots, %d with two active RRs for one fingerprint; RRs opened %d, made terminal %d, "+
		"deleted by retention %d, deleted as the newest %d (%d of them active, left out of the count check), finished without the controller learning it and deleted %d; counts checked exactly %d, within the unacknowledged %d",
		f.figures, f.alreadyCounted, f.snapshots, f.violations, f.opened, f.madeTerminal,
		f.deletedTerminal, f.deletedNewest, f.deletedWhileActive, f.finishedUnrecorded, f.exact, f.bounded)
}

// checkRetention checks what a retention storm recorded and returns the
// figures and every violation of the promises: two active RRs for one
// fingerprint in any snapshot; an answer neither 2xx nor retryable; for each
// RR whose final count is known (made terminal by the controller, or still
// there at the end), acknowledged <= count <= acknowledged + unacknowledged
// signals of its fingerprint sent before it ended; a history that is not
// linearizable.
func checkRetention(s *storm, r *retention) (retentionFigures, []string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r.mu.Lock()
	defer r.mu.Unlock()

	var f retentionFigures
	f.figures = figures{sent: len(s.requests), byCode: map[int]int{}}
	var problems []string
	acked := map[string]int64{}
	var unacked []Request
	for _, rq := range s.requests {
		f.byCode[rq.Code]++
		switch {
		case rq.Acknowledged():
			f.acknowledged++
			if rq.Counted() {
				acked[rq.RR]++
			} else {
				f.alreadyCounted++
			}
			continue
		case (rq.Code == 429 || rq.Code == 503 || rq.Code == 504) && rq.RetryAfter != "":
			f.retryable++
		default:
			problems = append(problems, fmt.Sprintf("%s: %d: %s", rq.Sender, rq.Code, rq.Err))
		}
		unacked = append(unacked, rq)
	}
	problems = append(problems, r.errs...)

	f.snapshots = s.snapshots
	f.violations = len(s.overlaps)
	if len(s.overlaps) > 0 {
		shown := s.overlaps[:min(len(s.overlaps), 10)]
		problems = append(problems, fmt.Sprintf("%d snapshots show two active RemediationRequests for one fingerprint, e.g.:\n  %s",
			len(s.overlaps), strings.Join(shown, "\n  ")))
	}

	// The end state: the last read.
	last := s.reads[len(s.reads)-1].Call
	atEnd := map[string]int64{}
	for _, rd := range s.reads {
		if rd.Call.Equal(last) {
			atEnd[rd.RR] = rd.Count
		}
	}
	fingerprintOf := map[string]string{}
	for _, inc := range r.seen {
		fingerprintOf[inc.id] = inc.fingerprint
	}
	for _, rq := range s.requests {
		if rq.Acknowledged() {
			fingerprintOf[rq.RR] = rq.Fingerprint
		}
	}
	byID := map[string]*incarnation{}
	for _, inc := range r.seen {
		byID[inc.id] = inc
		f.opened++
		if inc.terminal {
			f.madeTerminal++
		}
		switch inc.deletedBy {
		case "retention":
			f.deletedTerminal++
		case "operator":
			f.deletedNewest++
		}
	}
	end := time.Now()
	for id, fp := range fingerprintOf {
		inc := byID[id]
		var count int64
		var ended time.Time
		switch c, ok := atEnd[id]; {
		case inc != nil && inc.terminal:
			count, ended = inc.finalCount, inc.terminalAt
		case ok:
			count, ended = c, end
		case inc != nil && inc.gone && inc.goneKnown && inc.goneTerminal:
			// Finished, though the controller did not learn that its write
			// landed (its context ended, or the answer was lost), and then
			// deleted: its last state has its final count.
			count, ended = inc.goneCount, inc.goneAt
			f.finishedUnrecorded++
			f.unrecorded = append(f.unrecorded, inc.id+":\n  "+strings.Join(inc.history, "\n  "))
		case inc != nil && inc.deletedBy != "":
			f.deletedWhileActive++
			continue
		default:
			problems = append(problems, fmt.Sprintf("RR %s was answered for but neither made terminal, deleted, nor there at the end", id))
			continue
		}
		var ambiguous int64
		for _, rq := range unacked {
			if rq.Fingerprint == fp && rq.Call.Before(ended) {
				ambiguous++
			}
		}
		f.counted += int(count)
		if ambiguous == 0 {
			f.exact++
		} else {
			f.bounded++
		}
		if count < acked[id] || count > acked[id]+ambiguous {
			problems = append(problems, fmt.Sprintf("RR %s: count %d, acknowledged %d, unacknowledged that may have counted %d",
				id, count, acked[id], ambiguous))
		}
	}
	if err := CheckHistory(s.requests, s.reads); err != nil {
		problems = append(problems, err.Error())
	}
	if len(problems) > 0 {
		problems = append(problems, r.histories(acked))
	}
	return f, problems
}

// histories is every RR's history, in the order they were first seen, with
// the signals acknowledged as counted on it: what a failure needs to be
// explained. Callers hold r.mu.
func (r *retention) histories(acked map[string]int64) string {
	incs := slices.Collect(maps.Values(r.seen))
	slices.SortFunc(incs, func(a, b *incarnation) int { return a.added.Compare(b.added) })
	var b strings.Builder
	b.WriteString("every RR's history:")
	for _, inc := range incs {
		fmt.Fprintf(&b, "\n%s (%d acknowledged as counted on it):", inc.id, acked[inc.id])
		for _, line := range inc.history {
			b.WriteString("\n  " + line)
		}
	}
	return b.String()
}
