package dedup

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	clienttesting "k8s.io/client-go/testing"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/fake"
)

const (
	testFingerprint   = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"
	legacyFingerprint = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210"
)

var testName = remediationv1alpha1.NameFor(testFingerprint)

// activeRR is the RemediationRequest of s at its name, active, with count 3.
func activeRR(s Signal, uid types.UID) *remediationv1alpha1.RemediationRequest {
	return &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: s.Namespace, Name: remediationv1alpha1.NameFor(s.Fingerprint), UID: uid, ResourceVersion: "7"},
		Spec:       s.Spec,
		Status: remediationv1alpha1.RemediationRequestStatus{
			OverallPhase:  remediationv1alpha1.PhaseProcessing,
			Deduplication: &remediationv1alpha1.DeduplicationStatus{FirstSeenAt: s.Spec.ReceivedTime, LastSeenAt: s.Spec.ReceivedTime, OccurrenceCount: 3},
		},
	}
}

// finishedRR is the RemediationRequest of s at its name, Completed with
// count 7, number 1.
func finishedRR(s Signal, uid types.UID) *remediationv1alpha1.RemediationRequest {
	rr := activeRR(s, uid)
	rr.Spec.RemediationNumber = 1
	rr.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
	rr.Status.Deduplication.OccurrenceCount = 7
	return rr
}

// checkDeletePreconditions makes the fake client refuse a delete whose UID
// precondition does not match, as kube-apiserver does (409), and records
// the UID of every delete.
func checkDeletePreconditions(client *fake.Clientset) *[]types.UID {
	var uids []types.UID
	client.PrependReactor("delete", "remediationrequests", func(action clienttesting.Action) (bool, runtime.Object, error) {
		d := action.(clienttesting.DeleteAction)
		pre := d.GetDeleteOptions().Preconditions
		if pre == nil || pre.UID == nil {
			return false, nil, nil
		}
		uids = append(uids, *pre.UID)
		obj, err := client.Tracker().Get(action.GetResource(), d.GetNamespace(), d.GetName())
		if err != nil {
			return true, nil, err
		}
		if obj.(*remediationv1alpha1.RemediationRequest).UID != *pre.UID {
			return true, nil, apierrors.NewConflict(remediationv1alpha1.Resource("remediationrequests"), d.GetName(), errors.New("Precondition failed: UID"))
		}
		return false, nil, nil
	})
	return &uids
}

// staticCache is a Cache that holds what the test put in it.
type staticCache struct {
	rrs []*remediationv1alpha1.RemediationRequest
}

func (c *staticCache) ByFingerprint(namespace, fingerprint string) ([]*remediationv1alpha1.RemediationRequest, error) {
	var out []*remediationv1alpha1.RemediationRequest
	for _, rr := range c.rrs {
		if rr.Namespace == namespace && rr.Spec.SignalFingerprint == fingerprint {
			out = append(out, rr)
		}
	}
	return out, nil
}

func (c *staticCache) Get(namespace, name string) (*remediationv1alpha1.RemediationRequest, bool) {
	for _, rr := range c.rrs {
		if rr.Namespace == namespace && rr.Name == name {
			return rr, true
		}
	}
	return nil, false
}

func (c *staticCache) HasSynced() bool { return true }

func testSignal() Signal {
	now := time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC)
	return Signal{
		Namespace:   "default",
		Fingerprint: testFingerprint,
		ReceivedAt:  now,
		Spec: remediationv1alpha1.RemediationRequestSpec{
			SignalFingerprint: testFingerprint,
			SignalName:        "KubePodCrashLooping",
			SignalSource:      "test",
			ReceivedTime:      metav1.NewTime(now),
			FiringTime:        metav1.NewTime(now),
		},
	}
}

// writeInterceptor intercepts status updates: it counts them, can fail the
// first ones with a conflict, and can hold the first one until released.
type writeInterceptor struct {
	calls     atomic.Int32
	conflicts int32
	hold      chan struct{}
	held      chan struct{}
}

func (w *writeInterceptor) install(client *fake.Clientset) {
	client.PrependReactor("update", "remediationrequests", func(action clienttesting.Action) (bool, runtime.Object, error) {
		if action.GetSubresource() != "status" {
			return false, nil, nil
		}
		n := w.calls.Add(1)
		if n == 1 && w.hold != nil {
			close(w.held)
			<-w.hold
		}
		if n <= w.conflicts {
			return true, nil, apierrors.NewConflict(remediationv1alpha1.Resource("remediationrequests"), "x", errors.New("stale"))
		}
		return false, nil, nil
	})
}

func storedCount(t *testing.T, client *fake.Clientset, name string) int64 {
	t.Helper()
	rr, err := client.RemediationV1alpha1().RemediationRequests("default").Get(context.Background(), name, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if rr.Status.Deduplication == nil {
		return 0
	}
	return rr.Status.Deduplication.OccurrenceCount
}

// TestGroupCommit holds the first status write and sends 49 more signals
// meanwhile: they must share the second write.
func TestGroupCommit(t *testing.T) {
	client := fake.NewSimpleClientset()
	writes := &writeInterceptor{hold: make(chan struct{}), held: make(chan struct{})}
	writes.install(client)
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{})
	ctx := context.Background()

	first := make(chan *Result, 1)
	go func() {
		res, err := e.Submit(ctx, testSignal())
		if err != nil {
			t.Error(err)
		}
		first <- res
	}()
	<-writes.held

	var wg sync.WaitGroup
	results := make([]*Result, 49)
	for i := range results {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res, err := e.Submit(ctx, testSignal())
			if err != nil {
				t.Error(err)
			}
			results[i] = res
		}()
	}
	c := e.counters[indexKey("default", testFingerprint)]
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.pending != nil && len(c.pending.ops) == 49
	})
	close(writes.hold)
	wg.Wait()

	if res := <-first; res.Outcome != OutcomeCreated || res.RemediationRequest.Status.Deduplication.OccurrenceCount != 1 {
		t.Errorf("first signal: %s with count %d, want Created with count 1", res.Outcome, res.RemediationRequest.Status.Deduplication.OccurrenceCount)
	}
	for i, res := range results {
		if res.Outcome != OutcomeDeduplicated || res.RemediationRequest.Status.Deduplication.OccurrenceCount != 50 {
			t.Errorf("signal %d: %s with count %d, want Deduplicated with count 50", i, res.Outcome, res.RemediationRequest.Status.Deduplication.OccurrenceCount)
		}
	}
	if got := writes.calls.Load(); got != 2 {
		t.Errorf("status writes = %d, want 2", got)
	}
	if got := storedCount(t, client, testName); got != 50 {
		t.Errorf("stored occurrenceCount = %d, want 50", got)
	}
}

// TestWithdrawnSignalIsNotCounted: a signal whose caller gives up before
// its write started is never written.
func TestWithdrawnSignalIsNotCounted(t *testing.T) {
	client := fake.NewSimpleClientset()
	writes := &writeInterceptor{hold: make(chan struct{}), held: make(chan struct{})}
	writes.install(client)
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{})

	done := make(chan error, 1)
	go func() {
		_, err := e.Submit(context.Background(), testSignal())
		done <- err
	}()
	<-writes.held

	ctx, cancel := context.WithCancel(context.Background())
	gaveUp := make(chan error, 1)
	go func() {
		_, err := e.Submit(ctx, testSignal())
		gaveUp <- err
	}()
	c := e.counters[indexKey("default", testFingerprint)]
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.pending != nil && len(c.pending.ops) == 1
	})
	cancel()
	if err := <-gaveUp; !errors.Is(err, context.Canceled) {
		t.Fatalf("cancelled signal: got %v, want context.Canceled", err)
	}
	close(writes.hold)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return !c.writing
	})
	if got := writes.calls.Load(); got != 1 {
		t.Errorf("status writes = %d, want 1: an all-withdrawn batch writes nothing", got)
	}
	if got := storedCount(t, client, testName); got != 1 {
		t.Errorf("stored occurrenceCount = %d, want 1", got)
	}
}

// TestConflictReappliesTheBatch: a write that lost a race is applied again
// to a fresh read, once.
func TestConflictReappliesTheBatch(t *testing.T) {
	client := fake.NewSimpleClientset()
	writes := &writeInterceptor{conflicts: 2}
	writes.install(client)
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{})

	for range 3 {
		if _, err := e.Submit(context.Background(), testSignal()); err != nil {
			t.Fatal(err)
		}
	}
	if got := writes.calls.Load(); got != 5 {
		t.Errorf("status writes = %d, want 5 (2 conflicts, then one per signal)", got)
	}
	if got := storedCount(t, client, testName); got != 3 {
		t.Errorf("stored occurrenceCount = %d, want 3", got)
	}
}

// TestFinishedIsReplacedAtTheSameName: a finished RemediationRequest is
// never counted on; the signal deletes exactly it (UID precondition) and
// opens the next one at the same name, which summarizes it.
func TestFinishedIsReplacedAtTheSameName(t *testing.T) {
	s := testSignal()
	done := finishedRR(s, "uid-1")
	client := fake.NewSimpleClientset(done.DeepCopy())
	deletes := checkDeletePreconditions(client)
	writes := &writeInterceptor{}
	writes.install(client)

	// The cache still shows it active: the engine must find out.
	stale := done.DeepCopy()
	stale.Status.OverallPhase = remediationv1alpha1.PhaseProcessing
	stale.ResourceVersion = "6"
	client.PrependReactor("update", "remediationrequests", func(action clienttesting.Action) (bool, runtime.Object, error) {
		obj := action.(clienttesting.UpdateAction).GetObject().(*remediationv1alpha1.RemediationRequest)
		if obj.ResourceVersion == "6" {
			return true, nil, apierrors.NewConflict(remediationv1alpha1.Resource("remediationrequests"), obj.Name, errors.New("stale"))
		}
		return false, nil, nil
	})
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{rrs: []*remediationv1alpha1.RemediationRequest{stale}})

	res, err := e.Submit(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rr := res.RemediationRequest
	if rr.Name != testName || res.Outcome != OutcomeCreated || rr.Status.Deduplication.OccurrenceCount != 1 {
		t.Errorf("got %s (%s) count %d, want %s (Created) count 1", rr.Name, res.Outcome, rr.Status.Deduplication.OccurrenceCount, testName)
	}
	if want := []types.UID{"uid-1"}; !slices.Equal(*deletes, want) {
		t.Errorf("deletes with UID preconditions %v, want %v", *deletes, want)
	}
	wantHistory := []remediationv1alpha1.RemediationRecord{{
		UID: "uid-1", RemediationNumber: 1, Phase: remediationv1alpha1.PhaseCompleted, OccurrenceCount: 7,
		OpenedAt: &s.Spec.ReceivedTime,
	}}
	if rr.Spec.RemediationNumber != 2 || rr.Spec.Previous != nil || !equality.Semantic.DeepEqual(rr.Spec.History, wantHistory) {
		t.Errorf("remediationNumber %d history %+v previous %+v, want 2 and %+v", rr.Spec.RemediationNumber, rr.Spec.History, rr.Spec.Previous, wantHistory)
	}
}

// TestReplacementLosesToANewerOne: when the name already holds a newer
// RemediationRequest (the UID precondition fails), the signal counts there
// and deletes nothing.
func TestReplacementLosesToANewerOne(t *testing.T) {
	s := testSignal()
	newer := activeRR(s, "uid-2")
	client := fake.NewSimpleClientset(newer)
	deletes := checkDeletePreconditions(client)
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{rrs: []*remediationv1alpha1.RemediationRequest{finishedRR(s, "uid-1")}})

	res, err := e.Submit(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeDeduplicated || res.RemediationRequest.UID != "uid-2" {
		t.Errorf("got %s on %s, want Deduplicated on uid-2", res.Outcome, res.RemediationRequest.UID)
	}
	if len(*deletes) != 1 || storedCount(t, client, testName) != 4 {
		t.Errorf("deletes %v, count %d; want one refused delete and count 4", *deletes, storedCount(t, client, testName))
	}
}

// TestDeletedIsOpenedAgain: a signal whose RemediationRequest was deleted
// under its write opens it again at the same name.
func TestDeletedIsOpenedAgain(t *testing.T) {
	s := testSignal()
	client := fake.NewSimpleClientset()
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{rrs: []*remediationv1alpha1.RemediationRequest{activeRR(s, "uid-1")}})
	res, err := e.Submit(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeCreated || res.RemediationRequest.Spec.Previous != nil || storedCount(t, client, testName) != 1 {
		t.Errorf("got %s previous %+v count %d, want Created, no previous, count 1", res.Outcome, res.RemediationRequest.Spec.Previous, storedCount(t, client, testName))
	}
}

// TestPreviousBeingDeleted: a finished RemediationRequest that a finalizer
// keeps is not replaced yet: the signal is told to come back.
func TestPreviousBeingDeleted(t *testing.T) {
	s := testSignal()
	done := finishedRR(s, "uid-1")
	now := metav1.Now()
	done.DeletionTimestamp, done.Finalizers = &now, []string{"example.com/cleanup"}
	client := fake.NewSimpleClientset(done)
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{rrs: []*remediationv1alpha1.RemediationRequest{done}})
	if _, err := e.Submit(context.Background(), s); !errors.Is(err, ErrPreviousBeingDeleted) {
		t.Fatalf("got %v, want ErrPreviousBeingDeleted", err)
	}
}

// TestActiveBeingDeletedTakesNoCounts: an active RemediationRequest whose
// deletion has begun (a finalizer keeps it) counts as finished: a count on
// it would vanish with it, so the signal is told to come back (503), nothing
// is written and nothing is deleted, whether the cache has seen the deletion
// or still shows the RemediationRequest as it was before.
func TestActiveBeingDeletedTakesNoCounts(t *testing.T) {
	for _, tc := range []struct {
		name        string
		cacheSeesIt bool
		resolved    bool
	}{
		{name: "cache has seen the deletion", cacheSeesIt: true},
		{name: "cache is behind"},
		{name: "resolved signal", cacheSeesIt: true, resolved: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := testSignal()
			s.Resolved = tc.resolved
			deleting := activeRR(s, "uid-1")
			now := metav1.Now()
			deleting.DeletionTimestamp, deleting.Finalizers = &now, []string{"example.com/cleanup"}
			deleting.ResourceVersion = "8"
			client := fake.NewSimpleClientset(deleting.DeepCopy())
			deletes := checkDeletePreconditions(client)
			cached := deleting
			if !tc.cacheSeesIt {
				cached = activeRR(s, "uid-1") // rv 7: the update at it conflicts
				client.PrependReactor("update", "remediationrequests", func(action clienttesting.Action) (bool, runtime.Object, error) {
					obj := action.(clienttesting.UpdateAction).GetObject().(*remediationv1alpha1.RemediationRequest)
					if obj.ResourceVersion != "8" {
						return true, nil, apierrors.NewConflict(remediationv1alpha1.Resource("remediationrequests"), obj.Name, errors.New("stale"))
					}
					return false, nil, nil
				})
			}
			e := NewEngine(client.RemediationV1alpha1(), &staticCache{rrs: []*remediationv1alpha1.RemediationRequest{cached}})
			if _, err := e.Submit(context.Background(), s); !errors.Is(err, ErrPreviousBeingDeleted) {
				t.Fatalf("got %v, want ErrPreviousBeingDeleted", err)
			}
			got, err := client.RemediationV1alpha1().RemediationRequests("default").Get(context.Background(), testName, metav1.GetOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if got.ResourceVersion != "8" || got.Status.Deduplication.OccurrenceCount != 3 || len(*deletes) != 0 {
				t.Errorf("stored rv %s count %d, deletes %v; want rv 8, count 3, no delete", got.ResourceVersion, got.Status.Deduplication.OccurrenceCount, *deletes)
			}
		})
	}
}

// TestEarlierVersionsActiveIsCountedOn: an active RemediationRequest that an
// earlier version opened under its own name and the legacy fingerprint is
// counted on; none is opened.
func TestEarlierVersionsActiveIsCountedOn(t *testing.T) {
	s := testSignal()
	s.LegacyFingerprint = legacyFingerprint
	legacy := activeRR(s, "uid-old")
	legacy.Name, legacy.Spec.SignalFingerprint = "rr-"+legacyFingerprint[:16]+"-3", legacyFingerprint
	client := fake.NewSimpleClientset(legacy)
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{rrs: []*remediationv1alpha1.RemediationRequest{legacy}})
	res, err := e.Submit(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res.RemediationRequest.Name != legacy.Name || res.Outcome != OutcomeDeduplicated || storedCount(t, client, legacy.Name) != 4 {
		t.Errorf("got %s (%s) count %d, want %s (Deduplicated) count 4", res.RemediationRequest.Name, res.Outcome, storedCount(t, client, legacy.Name), legacy.Name)
	}
	for _, a := range client.Actions() {
		if a.GetVerb() == "create" || a.GetVerb() == "delete" {
			t.Errorf("unexpected %s", a.GetVerb())
		}
	}

	// Once it finished, the next signal opens the fingerprint's own
	// RemediationRequest, number 5 after slot 3, and leaves the old one.
	finished := legacy.DeepCopy()
	finished.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
	client = fake.NewSimpleClientset(finished)
	e = NewEngine(client.RemediationV1alpha1(), &staticCache{rrs: []*remediationv1alpha1.RemediationRequest{finished}})
	res, err = e.Submit(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	rr := res.RemediationRequest
	if rr.Name != testName || res.Outcome != OutcomeCreated || rr.Spec.RemediationNumber != 5 || len(rr.Spec.History) != 1 || rr.Spec.History[0].UID != legacy.UID {
		t.Errorf("got %s (%s) number %d history %+v, want %s (Created) number 5 after %s", rr.Name, res.Outcome, rr.Spec.RemediationNumber, rr.Spec.History, testName, legacy.Name)
	}
	if _, err := client.RemediationV1alpha1().RemediationRequests("default").Get(context.Background(), legacy.Name, metav1.GetOptions{}); err != nil {
		t.Errorf("the earlier version's RemediationRequest: %v, want it left alone", err)
	}
}

func TestResolvedWithoutActive(t *testing.T) {
	client := fake.NewSimpleClientset()
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{})
	s := testSignal()
	s.Resolved = true
	if _, err := e.Submit(context.Background(), s); !errors.Is(err, ErrNoActiveRemediation) {
		t.Fatalf("got %v, want ErrNoActiveRemediation", err)
	}
	// One read makes sure the cache did not miss a new one; nothing else.
	if got := client.Actions(); len(got) != 1 || got[0].GetVerb() != "get" {
		t.Errorf("actions %v, want one get", got)
	}
}

// TestResolvedFindsAnUncachedActive: a Resolved signal whose active
// RemediationRequest is not in the cache yet still resolves it.
func TestResolvedFindsAnUncachedActive(t *testing.T) {
	s := testSignal()
	client := fake.NewSimpleClientset(activeRR(s, "uid-1"))
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{})
	s.Resolved = true
	res, err := e.Submit(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res.Outcome != OutcomeResolved || res.RemediationRequest.Status.Deduplication.LastResolvedAt == nil || res.RemediationRequest.Status.Deduplication.OccurrenceCount != 3 {
		t.Errorf("got %s %+v, want Resolved with lastResolvedAt and count 3", res.Outcome, res.RemediationRequest.Status.Deduplication)
	}
}

func TestForgetKeepsANewerCounter(t *testing.T) {
	s := testSignal()
	client := fake.NewSimpleClientset(activeRR(s, "uid-2"))
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{rrs: []*remediationv1alpha1.RemediationRequest{activeRR(s, "uid-2")}})
	if _, err := e.Submit(context.Background(), s); err != nil {
		t.Fatal(err)
	}
	key := indexKey("default", testFingerprint)
	e.Forget("default", testFingerprint, testName, "uid-1")
	if e.counters[key] == nil {
		t.Fatal("the delete of an older RemediationRequest at the name dropped the counter of the newer one")
	}
	e.Forget("default", testFingerprint, testName, "uid-2")
	if e.counters[key] != nil {
		t.Fatal("the counter of a deleted RemediationRequest was kept")
	}
}

func TestClassifyCreate(t *testing.T) {
	gr := remediationv1alpha1.Resource("remediationrequests")
	missing := apierrors.NewNotFound(schema.GroupResource{Resource: "namespaces"}, "gone")
	terminating := apierrors.NewForbidden(gr, "x", errors.New("unable to create new content in namespace gone because it is being terminated"))
	terminating.ErrStatus.Details.Causes = []metav1.StatusCause{{Type: corev1.NamespaceTerminatingCause, Field: "metadata.namespace"}}
	tests := []struct {
		err  error
		want error
	}{
		{missing, ErrNamespaceNotFound},
		{terminating, ErrNamespaceTerminating},
		{apierrors.NewNotFound(gr, "x"), nil},
		{apierrors.NewForbidden(gr, "x", errors.New("rbac")), nil},
	}
	for _, tt := range tests {
		got := classifyCreate(tt.err)
		if !errors.Is(got, tt.err) || (tt.want != nil) != errors.Is(got, tt.want) {
			t.Errorf("classifyCreate(%v) = %v, want %v", tt.err, got, tt.want)
		}
		for _, sentinel := range []error{ErrNamespaceNotFound, ErrNamespaceTerminating} {
			if !errors.Is(tt.want, sentinel) && errors.Is(got, sentinel) {
				t.Errorf("classifyCreate(%v) is %v", tt.err, sentinel)
			}
		}
	}
}

func TestLegacyNumber(t *testing.T) {
	for name, want := range map[string]int64{
		"rr-0123456789abcdef-0": 1, "rr-0123456789abcdef-12": 13, "rr-0123456789abcdef-01": 0,
		"rr-0123456789abcdef-": 0, "rr-0123456789abcdef--1": 0, testName: 0, "web": 0,
	} {
		if got := legacyNumber(name); got != want {
			t.Errorf("legacyNumber(%q) = %d, want %d", name, got, want)
		}
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not met within 10s")
		}
		time.Sleep(time.Millisecond)
	}
}

// TestConcurrentSignalsShareOneCreate: the signals that arrive while the
// create of their RemediationRequest is in flight wait for it instead of
// sending creates of their own.
func TestConcurrentSignalsShareOneCreate(t *testing.T) {
	client := fake.NewSimpleClientset()
	var createCalls atomic.Int32
	hold, held := make(chan struct{}), make(chan struct{})
	client.PrependReactor("create", "remediationrequests", func(clienttesting.Action) (bool, runtime.Object, error) {
		if createCalls.Add(1) == 1 {
			close(held)
			<-hold
		}
		return false, nil, nil
	})
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{})

	var wg sync.WaitGroup
	outcomes := make(chan Outcome, 20)
	submit := func() {
		defer wg.Done()
		res, err := e.Submit(context.Background(), testSignal())
		if err != nil {
			t.Error(err)
			return
		}
		outcomes <- res.Outcome
	}
	wg.Add(1)
	go submit()
	<-held
	for range 19 {
		wg.Add(1)
		go submit()
	}
	time.Sleep(10 * time.Millisecond) // let the 19 reach the shared create; the assertions below do not depend on it
	close(hold)
	wg.Wait()
	close(outcomes)

	got := map[Outcome]int{}
	for o := range outcomes {
		got[o]++
	}
	if got[OutcomeCreated] != 1 || got[OutcomeDeduplicated] != 19 {
		t.Errorf("outcomes = %v, want 1 Created and 19 Deduplicated", got)
	}
	if n := createCalls.Load(); n != 1 {
		t.Errorf("creates = %d, want 1", n)
	}
	if c := storedCount(t, client, testName); c != 20 {
		t.Errorf("stored occurrenceCount = %d, want 20", c)
	}
}

// TestIdempotencyKeyCountsOnce: a key is counted once, across writes, across
// a conflict that makes the batch apply again, and within one batch.
func TestIdempotencyKeyCountsOnce(t *testing.T) {
	client := fake.NewSimpleClientset()
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{})
	keyed := func(key string) Signal {
		s := testSignal()
		s.IdempotencyKey = key
		return s
	}
	want := []Outcome{OutcomeCreated, OutcomeAlreadyCounted, OutcomeDeduplicated, OutcomeAlreadyCounted, OutcomeDeduplicated}
	for i, key := range []string{"a", "a", "b", "b", ""} {
		res, err := e.Submit(context.Background(), keyed(key))
		if err != nil {
			t.Fatal(err)
		}
		if res.Outcome != want[i] {
			t.Errorf("signal %d (key %q): outcome %s, want %s", i, key, res.Outcome, want[i])
		}
	}
	if got := storedCount(t, client, testName); got != 3 {
		t.Errorf("stored occurrenceCount = %d, want 3 (a, b and the unkeyed one)", got)
	}

	// A batch holding key c three times and a conflict on its first try.
	writes := &writeInterceptor{conflicts: 2, hold: make(chan struct{}), held: make(chan struct{})}
	writes.install(client)
	errs := make(chan error, 4)
	go func() {
		_, err := e.Submit(context.Background(), keyed("d"))
		errs <- err
	}()
	<-writes.held
	for range 3 {
		go func() {
			_, err := e.Submit(context.Background(), keyed("c"))
			errs <- err
		}()
	}
	c := e.counters[indexKey("default", testFingerprint)]
	waitFor(t, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.pending != nil && len(c.pending.ops) == 3
	})
	close(writes.hold)
	for range 4 {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	rr, err := client.RemediationV1alpha1().RemediationRequests("default").Get(context.Background(), testName, metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rr.Status.Deduplication.OccurrenceCount; got != 5 {
		t.Errorf("stored occurrenceCount = %d, want 5", got)
	}
	if got := len(rr.Status.Deduplication.IdempotencyKeys); got != 4*8 {
		t.Errorf("idempotencyKeys holds %d bytes, want 4 digests (a, b, d, c)", got)
	}
}

// TestNameCollisionIsRefusedNotMerged: an RR at the fingerprint's name with
// another fingerprint (which would take a 240-bit SHA-256 collision) is
// never counted on.
func TestNameCollisionIsRefusedNotMerged(t *testing.T) {
	s := testSignal()
	other := activeRR(s, "uid-other")
	other.Spec.SignalFingerprint = testFingerprint[:60] + "ffff"
	client := fake.NewSimpleClientset(other)
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{rrs: []*remediationv1alpha1.RemediationRequest{other}})
	if _, err := e.Submit(context.Background(), s); !errors.Is(err, ErrNameCollision) {
		t.Fatalf("got %v, want ErrNameCollision", err)
	}
	if got := storedCount(t, client, testName); got != 3 {
		t.Errorf("the other fingerprint's count = %d, want 3 (untouched)", got)
	}
}

// TestLongContentionIsRetriedUntilTheWriteTimeout: a write that loses 15
// races in a row (more than client-go's retry.RetryOnConflict would try
// with this backoff: it stops at the cap, after 12) still lands.
func TestLongContentionIsRetriedUntilTheWriteTimeout(t *testing.T) {
	client := fake.NewSimpleClientset()
	writes := &writeInterceptor{conflicts: 15}
	writes.install(client)
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{})
	if _, err := e.Submit(context.Background(), testSignal()); err != nil {
		t.Fatal(err)
	}
	if got := writes.calls.Load(); got != 16 {
		t.Errorf("status writes = %d, want 16", got)
	}
	if got := storedCount(t, client, testName); got != 1 {
		t.Errorf("stored occurrenceCount = %d, want 1", got)
	}
}
