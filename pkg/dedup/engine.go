package dedup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	remediationclient "github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/typed/remediation/v1alpha1"
)

// FieldManager is the field manager of every write the engine makes.
const FieldManager = "signal-apiserver"

// maxAttempts bounds how often one signal moves on to another
// RemediationRequest (one turned terminal or was deleted under it). Each
// attempt moves to a newer slot or recreates a deleted one, so running out
// takes many concurrent phase changes or deletions of one fingerprint.
const maxAttempts = 8

// Outcome says what a signal did.
type Outcome string

// Outcomes of a signal.
const (
	// OutcomeCreated: the signal opened a new RemediationRequest.
	OutcomeCreated Outcome = "Created"
	// OutcomeDeduplicated: the signal was counted on an active one.
	OutcomeDeduplicated Outcome = "Deduplicated"
	// OutcomeResolved: a Resolved signal set lastResolvedAt on an active one.
	OutcomeResolved Outcome = "Resolved"
	// OutcomeAlreadyCounted: a firing signal whose idempotency key was
	// already counted on the active one; it was not counted again.
	OutcomeAlreadyCounted Outcome = "AlreadyCounted"
)

var (
	// ErrNotSynced means the cache has not been filled yet; try later.
	ErrNotSynced = errors.New("the RemediationRequest cache has not synced yet")
	// ErrNoActiveRemediation means a Resolved signal found nothing to resolve.
	ErrNoActiveRemediation = errors.New("no active RemediationRequest for this fingerprint")
	// ErrNameCollision means two fingerprints share a name prefix. Nothing
	// is merged; the signal is refused.
	ErrNameCollision = errors.New("another fingerprint holds this RemediationRequest name")
	// ErrContention means the signal gave up after maxAttempts.
	ErrContention = errors.New("RemediationRequests of this fingerprint kept changing")
	// ErrNamespaceNotFound means the RemediationRequest's namespace does not
	// exist, so none can be opened there.
	ErrNamespaceNotFound = errors.New("the namespace does not exist")
	// ErrNamespaceTerminating means the RemediationRequest's namespace is
	// being deleted, so none can be opened there.
	ErrNamespaceTerminating = errors.New("the namespace is being deleted")
)

// Signal is a validated signal, reduced to what deduplication needs.
type Signal struct {
	// Namespace is where its RemediationRequest lives.
	Namespace string
	// Fingerprint is the deduplication key, 64 lowercase hex digits.
	Fingerprint string
	// LegacyFingerprint is the fingerprint earlier versions gave the same
	// signal, if it differs; their active RemediationRequests under it are
	// counted on rather than opening a second one.
	LegacyFingerprint string
	// Resolved signals are never counted and never create anything.
	Resolved bool
	// ReceivedAt is when the server received the signal.
	ReceivedAt time.Time
	// Spec is the spec of the RemediationRequest the signal opens when no
	// active one exists.
	Spec remediationv1alpha1.RemediationRequestSpec
	// Annotations go on the RemediationRequest the signal opens.
	Annotations map[string]string
	// DryRun computes the result without writing anything.
	DryRun bool
	// IdempotencyKey, if set, names this delivery: a firing signal whose key
	// is already counted on the RemediationRequest is not counted again.
	IdempotencyKey string
}

// Result is the RemediationRequest as it stands after the signal was
// counted, and what the signal did to it.
type Result struct {
	// RemediationRequest is shared with other callers: do not modify it.
	RemediationRequest *remediationv1alpha1.RemediationRequest
	Outcome            Outcome
}

// Engine deduplicates signals into RemediationRequests. It is safe for
// concurrent use, and any number of engines (server replicas) may work on
// the same RemediationRequests.
type Engine struct {
	client remediationclient.RemediationRequestsGetter
	cache  Cache
	// writeTimeout bounds one status write including its conflict retries.
	writeTimeout time.Duration

	mu sync.Mutex
	// counters holds, per namespace/fingerprint, the RemediationRequest this
	// process counts on; it is the freshest knowledge there is about it.
	counters map[string]*counter
	// creating holds the creates in flight, by namespace/fingerprint/slot.
	creating map[string]*createCall
}

// NewEngine returns an engine that reads from cache and writes with client.
func NewEngine(client remediationclient.RemediationRequestsGetter, cache Cache) *Engine {
	return &Engine{
		client:       client,
		cache:        cache,
		writeTimeout: 20 * time.Second,
		counters:     map[string]*counter{},
		creating:     map[string]*createCall{},
	}
}

// Submit counts s and returns the RemediationRequest it was counted on.
// When Submit returns without error, the count that includes s is stored.
// When ctx ends first, s was either not counted or is counted exactly once
// by a write that was already in flight; the error says which.
func (e *Engine) Submit(ctx context.Context, s Signal) (*Result, error) {
	if !e.cache.HasSynced() {
		return nil, ErrNotSynced
	}
	if s.DryRun {
		return e.dryRun(ctx, s)
	}
	minSlot, recreate := 0, -1
	for range maxAttempts {
		c, outcome, err := e.counterFor(ctx, s, minSlot, recreate)
		if err != nil {
			return nil, err
		}
		rr, again, err := c.add(ctx, s)
		var gone *goneError
		switch {
		case err == nil:
			switch {
			case s.Resolved:
				outcome = OutcomeResolved
			case again:
				outcome = OutcomeAlreadyCounted
			}
			return &Result{RemediationRequest: rr, Outcome: outcome}, nil
		case errors.As(err, &gone) && gone.deleted:
			e.forget(c)
			// Create the slot again, unless it has a successor: then it
			// was terminal before it was deleted, and the count goes on
			// there (the create answers AlreadyExists).
			minSlot, recreate = c.slot, c.slot
			reads.WithLabelValues("successor").Inc()
			if _, err := e.client.RemediationRequests(s.Namespace).Get(ctx, SlotName(s.Fingerprint, c.slot+1), metav1.GetOptions{}); err == nil {
				minSlot, recreate = c.slot+1, c.slot+1
			} else if !apierrors.IsNotFound(err) {
				return nil, fmt.Errorf("looking for a successor of deleted RemediationRequest %s/%s: %w", s.Namespace, c.name, err)
			}
		case errors.As(err, &gone):
			e.forget(c)
			minSlot, recreate = c.slot+1, -1
		default:
			return nil, err
		}
	}
	return nil, ErrContention
}

// counterFor finds or creates the RemediationRequest s is to be counted on:
// the one this process already counts on, else the active one in the cache,
// else a new one in the next free slot. recreate >= 0 names a slot known to
// have been deleted, which is created again.
func (e *Engine) counterFor(ctx context.Context, s Signal, minSlot, recreate int) (*counter, Outcome, error) {
	key := indexKey(s.Namespace, s.Fingerprint)
	slot := recreate
	if recreate < 0 {
		e.mu.Lock()
		c := e.counters[key]
		e.mu.Unlock()
		if c != nil && c.slot >= minSlot {
			return c, OutcomeDeduplicated, nil
		}
		active, next, err := e.lookup(s, minSlot)
		if err != nil {
			return nil, "", err
		}
		if active != nil {
			activeSlot, _ := slotOf(s.Fingerprint, active.Name)
			return e.install(s, activeSlot, active), OutcomeDeduplicated, nil
		}
		slot = next
	}
	if s.Resolved {
		return nil, "", ErrNoActiveRemediation
	}
	return e.create(ctx, s, slot)
}

// createCall is one create of a slot that concurrent signals of this
// process share.
type createCall struct {
	done    chan struct{}
	counter *counter
	err     error
}

// create creates slot of s's fingerprint, or waits for the create of it
// already in flight in this process: a storm's first signals cost one
// create per replica, not one each.
func (e *Engine) create(ctx context.Context, s Signal, slot int) (*counter, Outcome, error) {
	key := indexKey(s.Namespace, s.Fingerprint) + "/" + strconv.Itoa(slot)
	e.mu.Lock()
	if call := e.creating[key]; call != nil {
		e.mu.Unlock()
		select {
		case <-call.done:
		case <-ctx.Done():
			return nil, "", ctx.Err()
		}
		return call.counter, OutcomeDeduplicated, call.err
	}
	call := &createCall{done: make(chan struct{})}
	e.creating[key] = call
	e.mu.Unlock()
	defer func() {
		e.mu.Lock()
		delete(e.creating, key)
		e.mu.Unlock()
		close(call.done)
	}()

	// The create serves every waiter, so the first caller's cancellation
	// must not cancel it.
	createCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.writeTimeout)
	defer cancel()
	created, err := e.client.RemediationRequests(s.Namespace).Create(createCtx, newRemediationRequest(s, slot), metav1.CreateOptions{FieldManager: FieldManager})
	switch {
	case err == nil:
		creates.WithLabelValues("created").Inc()
		call.counter = e.install(s, slot, created)
		return call.counter, OutcomeCreated, nil
	case apierrors.IsAlreadyExists(err):
		// Someone else created it first: count on it. Its state is
		// unknown here; the counter reads it before its first write.
		creates.WithLabelValues("already_exists").Inc()
		call.counter = e.install(s, slot, nil)
		return call.counter, OutcomeDeduplicated, nil
	default:
		creates.WithLabelValues("error").Inc()
		call.err = fmt.Errorf("creating RemediationRequest %s/%s: %w", s.Namespace, SlotName(s.Fingerprint, slot), classifyCreate(err))
		return nil, "", call.err
	}
}

// lookup returns the cached active RemediationRequest of s with the highest
// slot at or above minSlot, or else the first slot after every cached
// terminal one.
func (e *Engine) lookup(s Signal, minSlot int) (*remediationv1alpha1.RemediationRequest, int, error) {
	rrs, err := e.cache.ByFingerprint(s.Namespace, s.Fingerprint)
	if err != nil {
		return nil, 0, fmt.Errorf("looking up fingerprint %s in the cache: %w", s.Fingerprint, err)
	}
	var active *remediationv1alpha1.RemediationRequest
	activeSlot, next := -1, minSlot
	for _, rr := range rrs {
		slot, ok := slotOf(s.Fingerprint, rr.Name)
		if !ok || slot < minSlot {
			continue
		}
		if rr.Status.OverallPhase.IsTerminal() {
			next = max(next, slot+1)
		} else if slot > activeSlot {
			active, activeSlot = rr, slot
		}
	}
	return active, next, nil
}

// install makes a counter for slot the one this process uses for s's
// fingerprint, unless it already counts on that slot or a newer one.
func (e *Engine) install(s Signal, slot int, base *remediationv1alpha1.RemediationRequest) *counter {
	key := indexKey(s.Namespace, s.Fingerprint)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.counters[key]; c != nil && c.slot >= slot {
		if c.slot == slot && base != nil {
			c.mu.Lock()
			if c.base == nil {
				c.base = base
			}
			c.mu.Unlock()
		}
		return c
	}
	c := &counter{
		engine:      e,
		namespace:   s.Namespace,
		name:        SlotName(s.Fingerprint, slot),
		fingerprint: s.Fingerprint,
		slot:        slot,
		base:        base,
	}
	e.counters[key] = c
	return c
}

// forget drops c once its RemediationRequest is terminal or deleted.
func (e *Engine) forget(c *counter) {
	key := indexKey(c.namespace, c.fingerprint)
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counters[key] == c {
		delete(e.counters, key)
	}
}

// Forget drops what the engine knows about a deleted RemediationRequest.
// Wire it to the informer's delete events so memory follows the cluster.
func (e *Engine) Forget(namespace, fingerprint, name string) {
	key := indexKey(namespace, fingerprint)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.counters[key]; c != nil && c.name == name {
		delete(e.counters, key)
	}
}

// dryRun returns what Submit would return, writing nothing. A new
// RemediationRequest goes through the API server's dry-run create, so it is
// validated and defaulted like a real one.
func (e *Engine) dryRun(ctx context.Context, s Signal) (*Result, error) {
	active, next, err := e.lookup(s, 0)
	if err != nil {
		return nil, err
	}
	key := indexKey(s.Namespace, s.Fingerprint)
	e.mu.Lock()
	if c := e.counters[key]; c != nil {
		c.mu.Lock()
		if c.base != nil && !c.base.Status.OverallPhase.IsTerminal() {
			active = c.base
		}
		c.mu.Unlock()
	}
	e.mu.Unlock()

	ops := []*op{newOp(s)}
	switch {
	case active != nil:
		rr := active.DeepCopy()
		apply(rr, ops)
		outcome := OutcomeDeduplicated
		switch {
		case s.Resolved:
			outcome = OutcomeResolved
		case ops[0].again:
			outcome = OutcomeAlreadyCounted
		}
		return &Result{RemediationRequest: rr, Outcome: outcome}, nil
	case s.Resolved:
		return nil, ErrNoActiveRemediation
	}
	rr, err := e.client.RemediationRequests(s.Namespace).Create(ctx, newRemediationRequest(s, next),
		metav1.CreateOptions{FieldManager: FieldManager, DryRun: []string{metav1.DryRunAll}})
	if err != nil {
		return nil, fmt.Errorf("dry-run creating RemediationRequest %s/%s: %w", s.Namespace, SlotName(s.Fingerprint, next), classifyCreate(err))
	}
	apply(rr, ops)
	return &Result{RemediationRequest: rr, Outcome: OutcomeCreated}, nil
}

func newRemediationRequest(s Signal, slot int) *remediationv1alpha1.RemediationRequest {
	return &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   s.Namespace,
			Name:        SlotName(s.Fingerprint, slot),
			Annotations: s.Annotations,
		},
		Spec: s.Spec,
	}
}

// classifyCreate wraps the errors of a create that say the namespace cannot
// take RemediationRequests: kube-apiserver answers 404 for a missing
// namespace and 403 with cause NamespaceTerminating for one being deleted.
func classifyCreate(err error) error {
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return err
	}
	st := status.Status()
	switch {
	case apierrors.IsNotFound(err) && st.Details != nil && st.Details.Kind == "namespaces":
		return fmt.Errorf("%w: %w", ErrNamespaceNotFound, err)
	case apierrors.IsForbidden(err) && apierrors.HasStatusCause(err, corev1.NamespaceTerminatingCause):
		return fmt.Errorf("%w: %w", ErrNamespaceTerminating, err)
	}
	return err
}
