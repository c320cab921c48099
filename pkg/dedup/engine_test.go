package dedup

import (
	"context"
	"errors"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	clienttesting "k8s.io/client-go/testing"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/fake"
)

const testFingerprint = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

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
	if got := storedCount(t, client, SlotName(testFingerprint, 0)); got != 50 {
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
	if got := storedCount(t, client, SlotName(testFingerprint, 0)); got != 1 {
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
	if got := storedCount(t, client, SlotName(testFingerprint, 0)); got != 3 {
		t.Errorf("stored occurrenceCount = %d, want 3", got)
	}
}

// TestTerminalMovesToTheNextSlot: a terminal RemediationRequest is never
// counted on; the signal opens the next slot.
func TestTerminalMovesToTheNextSlot(t *testing.T) {
	s := testSignal()
	done := &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: SlotName(testFingerprint, 0), ResourceVersion: "7"},
		Spec:       s.Spec,
		Status:     remediationv1alpha1.RemediationRequestStatus{OverallPhase: remediationv1alpha1.PhaseCompleted},
	}
	client := fake.NewSimpleClientset(done.DeepCopy())
	writes := &writeInterceptor{}
	writes.install(client)

	// The cache still shows slot 0 active: the engine must find out.
	stale := done.DeepCopy()
	stale.Status.OverallPhase = remediationv1alpha1.PhaseProcessing
	stale.ResourceVersion = "6"
	client.PrependReactor("update", "remediationrequests", func(action clienttesting.Action) (bool, runtime.Object, error) {
		obj := action.(clienttesting.UpdateAction).GetObject().(*remediationv1alpha1.RemediationRequest)
		if obj.Name == done.Name && obj.ResourceVersion == "6" {
			return true, nil, apierrors.NewConflict(remediationv1alpha1.Resource("remediationrequests"), obj.Name, errors.New("stale"))
		}
		return false, nil, nil
	})
	e := NewEngine(client.RemediationV1alpha1(), &staticCache{rrs: []*remediationv1alpha1.RemediationRequest{stale}})

	res, err := e.Submit(context.Background(), s)
	if err != nil {
		t.Fatal(err)
	}
	if res.RemediationRequest.Name != SlotName(testFingerprint, 1) || res.Outcome != OutcomeCreated {
		t.Errorf("got %s (%s), want %s (Created)", res.RemediationRequest.Name, res.Outcome, SlotName(testFingerprint, 1))
	}
	if got := storedCount(t, client, SlotName(testFingerprint, 0)); got != 0 {
		t.Errorf("terminal RemediationRequest count = %d, want 0", got)
	}
	if got := storedCount(t, client, SlotName(testFingerprint, 1)); got != 1 {
		t.Errorf("new RemediationRequest count = %d, want 1", got)
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
	if len(client.Actions()) != 0 {
		t.Errorf("a Resolved signal without an active RemediationRequest made API calls: %v", client.Actions())
	}
}

func TestSlotNames(t *testing.T) {
	for _, slot := range []int{0, 1, 9, 10, 12345} {
		name := SlotName(testFingerprint, slot)
		if got, ok := slotOf(testFingerprint, name); !ok || got != slot {
			t.Errorf("slotOf(%q) = %d, %v; want %d", name, got, ok, slot)
		}
	}
	for _, name := range []string{"rr-0123456789abcdef-", "rr-0123456789abcdef-01", "rr-0123456789abcdef--1", "rr-0123456789abcdee-1", "web"} {
		if slot, ok := slotOf(testFingerprint, name); ok {
			t.Errorf("slotOf(%q) = %d, want no slot", name, slot)
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
	key := indexKey("default", testFingerprint) + "/0"
	waitFor(t, func() bool {
		e.mu.Lock()
		defer e.mu.Unlock()
		return e.creating[key] != nil
	})
	time.Sleep(10 * time.Millisecond) // let the 19 reach the wait; the assertions below do not depend on it
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
	if c := storedCount(t, client, SlotName(testFingerprint, 0)); c != 20 {
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
	if got := storedCount(t, client, SlotName(testFingerprint, 0)); got != 3 {
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
	rr, err := client.RemediationV1alpha1().RemediationRequests("default").Get(context.Background(), SlotName(testFingerprint, 0), metav1.GetOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rr.Status.Deduplication.OccurrenceCount; got != 5 {
		t.Errorf("stored occurrenceCount = %d, want 5", got)
	}
	if got := len(rr.Status.Deduplication.RecentIdempotencyKeys); got != 4 {
		t.Errorf("recentIdempotencyKeys has %d entries, want 4 (a, b, d, c)", got)
	}
}

// TestIdempotencyKeysAreBounded: the oldest keys are dropped past 256.
func TestIdempotencyKeysAreBounded(t *testing.T) {
	rr := &remediationv1alpha1.RemediationRequest{}
	var ops []*op
	for i := range maxIdempotencyKeys + 10 {
		s := testSignal()
		s.IdempotencyKey = strconv.Itoa(i)
		ops = append(ops, newOp(s))
	}
	apply(rr, ops)
	keys := rr.Status.Deduplication.RecentIdempotencyKeys
	if len(keys) != maxIdempotencyKeys || keys[0] != ops[10].key || keys[len(keys)-1] != ops[len(ops)-1].key {
		t.Errorf("kept %d keys from %q to %q, want the newest %d", len(keys), keys[0], keys[len(keys)-1], maxIdempotencyKeys)
	}
	if got := rr.Status.Deduplication.OccurrenceCount; got != maxIdempotencyKeys+10 {
		t.Errorf("occurrenceCount = %d, want %d", got, maxIdempotencyKeys+10)
	}
}
