package dedup

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	remediationclient "github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/typed/remediation/v1alpha1"
)

// FieldManager is the field manager of every write the engine makes.
const FieldManager = "signal-apiserver"

// maxAttempts bounds how often one signal moves on to another
// RemediationRequest (the one it was counted on finished or was deleted
// under it). Running out takes that many phase changes or deletions of one
// fingerprint while one signal is in flight.
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
	// writeTimeout bounds one status write including its conflict retries,
	// and one opening of a RemediationRequest.
	writeTimeout time.Duration

	mu sync.Mutex
	// counters holds, per namespace/fingerprint, the RemediationRequest this
	// process counts on; it is the freshest knowledge there is about it.
	counters map[string]*counter
	// opening shares the opening of a RemediationRequest among the signals
	// of this process that need it at once, by namespace/fingerprint.
	opening singleflight.Group
}

// NewEngine returns an engine that reads from cache and writes with client.
func NewEngine(client remediationclient.RemediationRequestsGetter, cache Cache) *Engine {
	return &Engine{
		client:       client,
		cache:        cache,
		writeTimeout: 20 * time.Second,
		counters:     map[string]*counter{},
	}
}

// next is what a signal learnt about the RemediationRequest at its
// fingerprint's name from a write, fresher than the cache: it was deleted,
// or it is finished.
type next struct {
	finished *remediationv1alpha1.RemediationRequest // nil: deleted
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
	skip := map[types.UID]bool{} // earlier versions' RemediationRequests found finished
	var learnt *next
	for range maxAttempts {
		c, outcome, err := e.counterFor(ctx, s, skip, learnt)
		if err != nil {
			return nil, err
		}
		rr, alreadyCounted, err := c.add(ctx, s)
		var gone *goneError
		switch {
		case err == nil:
			switch {
			case s.Resolved:
				outcome = OutcomeResolved
			case alreadyCounted:
				outcome = OutcomeAlreadyCounted
			}
			return &Result{RemediationRequest: rr, Outcome: outcome}, nil
		case errors.As(err, &gone):
			e.forget(c)
			if c.legacy {
				skip[gone.uid] = true
				learnt = nil
				continue
			}
			if gone.finished != nil && gone.finished.DeletionTimestamp != nil {
				return nil, fmt.Errorf("%w: %s/%s", ErrPreviousBeingDeleted, c.namespace, c.name)
			}
			learnt = &next{finished: gone.finished}
		default:
			return nil, err
		}
	}
	return nil, ErrContention
}

// counterFor finds the RemediationRequest s is to be counted on, or opens
// one: the one this process already counts on, else the active one at the
// fingerprint's name in the cache, else an active one that an earlier
// version opened under another name, else a new one at the fingerprint's
// name, replacing the finished one there. learnt, if set, says the
// RemediationRequest at the name is deleted or finished, whatever the cache
// says. Resolved signals never open anything.
func (e *Engine) counterFor(ctx context.Context, s Signal, skip map[types.UID]bool, learnt *next) (*counter, Outcome, error) {
	name := remediationv1alpha1.NameFor(s.Fingerprint)
	var finished *remediationv1alpha1.RemediationRequest
	if learnt == nil {
		e.mu.Lock()
		c := e.counters[indexKey(s.Namespace, s.Fingerprint)]
		e.mu.Unlock()
		if c != nil {
			return c, OutcomeDeduplicated, nil
		}
		cached, ok := e.cache.Get(s.Namespace, name)
		if ok && !cached.Status.OverallPhase.IsTerminal() {
			return e.counterOn(s, cached.Name, cached, false), OutcomeDeduplicated, nil
		}
		legacy, err := e.legacyActive(s, skip)
		if err != nil {
			return nil, "", err
		}
		if legacy != nil {
			return e.counterOn(s, legacy.Name, legacy, true), OutcomeDeduplicated, nil
		}
		if ok {
			finished = cached
		}
	} else {
		finished = learnt.finished
	}
	if s.Resolved {
		rr, err := e.activeByGet(ctx, s)
		if err != nil {
			return nil, "", err
		}
		return e.counterOn(s, rr.Name, rr, false), OutcomeDeduplicated, nil
	}
	return e.open(ctx, s, finished)
}

// activeByGet reads the RemediationRequest at the fingerprint's name from
// kube-apiserver: a Resolved signal answers "nothing to resolve" only after
// this read, so a cache that has not seen a new RemediationRequest yet does
// not make it lose its lastResolvedAt.
func (e *Engine) activeByGet(ctx context.Context, s Signal) (*remediationv1alpha1.RemediationRequest, error) {
	name := remediationv1alpha1.NameFor(s.Fingerprint)
	reads.WithLabelValues("resolved").Inc()
	rr, err := e.client.RemediationRequests(s.Namespace).Get(ctx, name, metav1.GetOptions{})
	switch {
	case apierrors.IsNotFound(err):
		return nil, ErrNoActiveRemediation
	case err != nil:
		return nil, fmt.Errorf("reading RemediationRequest %s/%s: %w", s.Namespace, name, upstream(err))
	case rr.Status.OverallPhase.IsTerminal() || rr.DeletionTimestamp != nil || rr.Spec.SignalFingerprint != s.Fingerprint:
		return nil, ErrNoActiveRemediation
	}
	return rr, nil
}

// legacyActive returns the newest active RemediationRequest of s's
// fingerprints that is not at the fingerprint's name: one that a version
// before the name rule opened. No new ones can appear (the CRD refuses
// other names for new RemediationRequests, and the server does not serve
// before it does), so the synced cache knows all of them; a cached one that
// finished since is found out by the write.
func (e *Engine) legacyActive(s Signal, skip map[types.UID]bool) (*remediationv1alpha1.RemediationRequest, error) {
	var newest *remediationv1alpha1.RemediationRequest
	for _, fp := range []string{s.Fingerprint, s.LegacyFingerprint} {
		if fp == "" {
			continue
		}
		rrs, err := e.cache.ByFingerprint(s.Namespace, fp)
		if err != nil {
			return nil, fmt.Errorf("looking up fingerprint %s in the cache: %w", fp, err)
		}
		for _, rr := range rrs {
			if rr.Name == remediationv1alpha1.NameFor(fp) || rr.Status.OverallPhase.IsTerminal() || skip[rr.UID] {
				continue
			}
			if newest == nil || newer(rr, newest) {
				newest = rr
			}
		}
	}
	return newest, nil
}

// newestFinished returns the newest finished RemediationRequest of s's
// fingerprints in the cache, the one a new RemediationRequest follows.
func (e *Engine) newestFinished(s Signal) *remediationv1alpha1.RemediationRequest {
	var newest *remediationv1alpha1.RemediationRequest
	for _, fp := range []string{s.Fingerprint, s.LegacyFingerprint} {
		if fp == "" {
			continue
		}
		rrs, err := e.cache.ByFingerprint(s.Namespace, fp)
		if err != nil {
			return nil
		}
		for _, rr := range rrs {
			if rr.Status.OverallPhase.IsTerminal() && (newest == nil || newer(rr, newest)) {
				newest = rr
			}
		}
	}
	return newest
}

// newer orders RemediationRequests of one problem: by an earlier version's
// slot number where both have one (their creation times have one-second
// resolution), else by creation time, then name.
func newer(a, b *remediationv1alpha1.RemediationRequest) bool {
	if na, nb := legacyNumber(a.Name), legacyNumber(b.Name); na > 0 && nb > 0 && na != nb && a.Spec.SignalFingerprint == b.Spec.SignalFingerprint {
		return na > nb
	}
	if !a.CreationTimestamp.Equal(&b.CreationTimestamp) {
		return b.CreationTimestamp.Before(&a.CreationTimestamp)
	}
	return a.Name > b.Name
}

// opened is the result of one opening, shared by the signals that waited
// for it; leader identifies the signal whose call did the work.
type opened struct {
	counter *counter
	created bool
	leader  *Signal
}

// open opens a RemediationRequest for s at its fingerprint's name: if
// finished (the RemediationRequest there, as last seen) is set, it is
// deleted first with a UID precondition, so that nothing but that finished
// one is ever deleted. Concurrent signals of this process share one
// opening; across processes, creates of the one name collide and all but
// one get AlreadyExists and count on the winner's.
func (e *Engine) open(ctx context.Context, s Signal, finished *remediationv1alpha1.RemediationRequest) (*counter, Outcome, error) {
	leader := &s
	ch := e.opening.DoChan(indexKey(s.Namespace, s.Fingerprint), func() (any, error) {
		// The opening serves every waiter, so the first caller's
		// cancellation must not cancel it.
		ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.writeTimeout)
		defer cancel()
		c, created, err := e.openOnce(ctx, s, finished)
		return opened{counter: c, created: created, leader: leader}, err
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return nil, "", res.Err
		}
		o := res.Val.(opened)
		if o.created && o.leader == leader {
			return o.counter, OutcomeCreated, nil
		}
		return o.counter, OutcomeDeduplicated, nil
	case <-ctx.Done():
		return nil, "", ctx.Err()
	}
}

func (e *Engine) openOnce(ctx context.Context, s Signal, finished *remediationv1alpha1.RemediationRequest) (*counter, bool, error) {
	client := e.client.RemediationRequests(s.Namespace)
	name := remediationv1alpha1.NameFor(s.Fingerprint)
	if finished != nil && finished.Name == name && finished.DeletionTimestamp == nil {
		uid := finished.UID
		err := client.Delete(ctx, name, metav1.DeleteOptions{Preconditions: &metav1.Preconditions{UID: &uid}})
		switch {
		case err == nil:
			deletes.WithLabelValues("deleted").Inc()
		case apierrors.IsNotFound(err):
			// Deleted already, by retention or another replica.
			deletes.WithLabelValues("not_found").Inc()
		case apierrors.IsConflict(err):
			// The name holds a newer RemediationRequest than the finished
			// one: someone replaced it first. Count there; the counter
			// reads it before its first write.
			deletes.WithLabelValues("replaced").Inc()
			return e.counterOn(s, name, nil, false), false, nil
		default:
			deletes.WithLabelValues("error").Inc()
			return nil, false, fmt.Errorf("deleting finished RemediationRequest %s/%s: %w", s.Namespace, name, upstream(err))
		}
	}
	if finished == nil {
		finished = e.newestFinished(s)
	}
	created, err := client.Create(ctx, newRemediationRequest(s, finished), metav1.CreateOptions{FieldManager: FieldManager})
	switch {
	case err == nil:
		creates.WithLabelValues("created").Inc()
		return e.counterOn(s, name, created, false), true, nil
	case apierrors.IsAlreadyExists(err):
		// Someone else opened it first: count on it. Its state is unknown
		// here; the counter reads it before its first write.
		creates.WithLabelValues("already_exists").Inc()
		return e.counterOn(s, name, nil, false), false, nil
	default:
		creates.WithLabelValues("error").Inc()
		return nil, false, fmt.Errorf("creating RemediationRequest %s/%s: %w", s.Namespace, name, upstream(classifyCreate(err)))
	}
}

// counterOn makes a counter on the RemediationRequest name (base: its latest
// known version, or nil) the one this process uses for s's fingerprint. A
// counter already there for the same name is kept: it knows at least as
// much.
func (e *Engine) counterOn(s Signal, name string, base *remediationv1alpha1.RemediationRequest, legacy bool) *counter {
	key := indexKey(s.Namespace, s.Fingerprint)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.counters[key]; c != nil && c.name == name {
		if base != nil {
			c.mu.Lock()
			if c.base == nil {
				c.base = base
			}
			c.mu.Unlock()
		}
		return c
	}
	fp := s.Fingerprint
	if legacy {
		// Found under s's fingerprint or its legacy one.
		fp = base.Spec.SignalFingerprint
	}
	c := &counter{
		engine:      e,
		key:         key,
		namespace:   s.Namespace,
		name:        name,
		fingerprint: fp,
		legacy:      legacy,
		base:        base,
	}
	if legacy {
		// Earlier versions' RemediationRequests are counted on while they
		// last, but not remembered: the cache is checked for them anew.
		return c
	}
	e.counters[key] = c
	return c
}

// forget drops c once its RemediationRequest is finished or deleted.
func (e *Engine) forget(c *counter) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.counters[c.key] == c {
		delete(e.counters, c.key)
	}
}

// Forget drops what the engine knows about a deleted RemediationRequest.
// Wire it to the informer's delete events so memory follows the cluster. A
// counter that already counts on a newer RemediationRequest at the same
// name (another uid) is kept.
func (e *Engine) Forget(namespace, fingerprint, name string, uid types.UID) {
	key := indexKey(namespace, fingerprint)
	e.mu.Lock()
	defer e.mu.Unlock()
	if c := e.counters[key]; c != nil && c.name == name {
		if known := c.uid(); known == "" || known == uid {
			delete(e.counters, key)
		}
	}
}

// dryRun returns what Submit would return, writing nothing. A new
// RemediationRequest goes through the API server's dry-run create, so it is
// validated and defaulted like a real one.
func (e *Engine) dryRun(ctx context.Context, s Signal) (*Result, error) {
	name := remediationv1alpha1.NameFor(s.Fingerprint)
	var active *remediationv1alpha1.RemediationRequest
	e.mu.Lock()
	if c := e.counters[indexKey(s.Namespace, s.Fingerprint)]; c != nil {
		c.mu.Lock()
		if c.base != nil && !c.base.Status.OverallPhase.IsTerminal() {
			active = c.base
		}
		c.mu.Unlock()
	}
	e.mu.Unlock()
	cached, ok := e.cache.Get(s.Namespace, name)
	if active == nil && ok && !cached.Status.OverallPhase.IsTerminal() {
		active = cached
	}
	if active == nil {
		legacy, err := e.legacyActive(s, nil)
		if err != nil {
			return nil, err
		}
		active = legacy
	}
	if active != nil {
		// The cache holds RemediationRequests without their spec's maps
		// (StripForCache): answer with the stored one.
		reads.WithLabelValues("dry_run").Inc()
		fresh, err := e.client.RemediationRequests(active.Namespace).Get(ctx, active.Name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
			active = nil
		case err != nil:
			return nil, fmt.Errorf("reading RemediationRequest %s/%s: %w", active.Namespace, active.Name, upstream(err))
		case fresh.Status.OverallPhase.IsTerminal():
			active = nil
		default:
			active = fresh
		}
	}
	if active == nil && s.Resolved {
		rr, err := e.activeByGet(ctx, s)
		if err != nil {
			return nil, err
		}
		active = rr
	}

	ops := []*op{newOp(s)}
	if active != nil {
		rr := active.DeepCopy()
		apply(rr, ops)
		outcome := OutcomeDeduplicated
		switch {
		case s.Resolved:
			outcome = OutcomeResolved
		case ops[0].alreadyCounted:
			outcome = OutcomeAlreadyCounted
		}
		return &Result{RemediationRequest: rr, Outcome: outcome}, nil
	}
	var finished *remediationv1alpha1.RemediationRequest
	if ok {
		finished = cached
	} else {
		finished = e.newestFinished(s)
	}
	rr := newRemediationRequest(s, finished)
	if !ok {
		// The name is free as far as the cache knows: let kube-apiserver
		// validate and default the new object. Where a finished one still
		// holds the name, a real signal would replace it; the object is
		// answered as built.
		created, err := e.client.RemediationRequests(s.Namespace).Create(ctx, rr,
			metav1.CreateOptions{FieldManager: FieldManager, DryRun: []string{metav1.DryRunAll}})
		switch {
		case err == nil:
			rr = created
		case apierrors.IsAlreadyExists(err):
		default:
			return nil, fmt.Errorf("dry-run creating RemediationRequest %s/%s: %w", s.Namespace, name, upstream(classifyCreate(err)))
		}
	}
	apply(rr, ops)
	return &Result{RemediationRequest: rr, Outcome: OutcomeCreated}, nil
}

// newRemediationRequest is the RemediationRequest s opens, following
// previous (nil if none is known).
func newRemediationRequest(s Signal, previous *remediationv1alpha1.RemediationRequest) *remediationv1alpha1.RemediationRequest {
	rr := &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:   s.Namespace,
			Name:        remediationv1alpha1.NameFor(s.Fingerprint),
			Annotations: s.Annotations,
		},
		Spec: s.Spec,
	}
	rr.Spec.RemediationNumber = 1
	if previous != nil {
		p := &remediationv1alpha1.PreviousRemediation{
			Name:              previous.Name,
			UID:               previous.UID,
			RemediationNumber: previous.Spec.RemediationNumber,
			Phase:             previous.Status.OverallPhase,
		}
		if d := previous.Status.Deduplication; d != nil {
			p.OccurrenceCount = d.OccurrenceCount
			p.FirstSeenAt, p.LastSeenAt = d.FirstSeenAt.DeepCopy(), d.LastSeenAt.DeepCopy()
		}
		if p.RemediationNumber == 0 {
			p.RemediationNumber = legacyNumber(previous.Name)
		}
		rr.Spec.Previous = p
		if p.RemediationNumber > 0 {
			rr.Spec.RemediationNumber = p.RemediationNumber + 1
		}
	}
	return rr
}

// legacyNumber is the remediationNumber of a RemediationRequest that an
// earlier version named rr-<fingerprint[:16]>-<n>: the n+1th of its
// fingerprint. 0 if name is not such a name.
func legacyNumber(name string) int64 {
	rest, ok := strings.CutPrefix(name, "rr-")
	if !ok || len(rest) < 18 || rest[16] != '-' {
		return 0
	}
	n, err := strconv.ParseInt(rest[17:], 10, 64)
	if err != nil || n < 0 || strconv.FormatInt(n, 10) != rest[17:] {
		return 0
	}
	return n + 1
}
