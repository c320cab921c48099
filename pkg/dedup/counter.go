package dedup

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// conflictBackoff spaces the retries of a status write that lost a race
// with another replica or the remediation controller: from 2 ms, growing
// by half each time, to 200 ms. The jitter keeps two replicas from
// colliding in lockstep; the write timeout bounds the total.
var conflictBackoff = wait.Backoff{Steps: 50, Duration: 2 * time.Millisecond, Factor: 1.5, Jitter: 1, Cap: 200 * time.Millisecond}

// retryOnConflict calls attempt until it returns anything but a conflict,
// or ctx has ended, sleeping conflictBackoff's delays in between. Unlike
// client-go's retry.RetryOnConflict, which gives up once wait.Backoff
// reaches its Cap (after 12 attempts, half a second, here), it goes on at
// the cap until the write timeout: under contention a signal keeps its
// place in the group commit instead of failing with 429.
func retryOnConflict(ctx context.Context, attempt func() error) error {
	backoff := conflictBackoff
	for {
		err := attempt()
		if !apierrors.IsConflict(err) {
			return err
		}
		// A plain sleep, then the check: a select on the context and a
		// timer would pick at random when both fire at once.
		time.Sleep(backoff.Step())
		if ctx.Err() != nil {
			return err
		}
	}
}

// goneError means the RemediationRequest cannot take counts any more: it
// finished or is being deleted (finished is the RemediationRequest as
// read), or it was deleted (finished is nil).
type goneError struct {
	name     string
	uid      types.UID
	finished *remediationv1alpha1.RemediationRequest
}

func (e *goneError) Error() string {
	if e.finished == nil {
		return fmt.Sprintf("RemediationRequest %s was deleted", e.name)
	}
	return fmt.Sprintf("RemediationRequest %s is in a terminal phase", e.name)
}

// counter group-commits the signals of one RemediationRequest: one status
// write in flight at a time, carrying every signal that arrived before it.
type counter struct {
	engine    *Engine
	key       string // namespace/fingerprint of the signals it counts
	namespace string
	name      string
	// fingerprint is the RemediationRequest's own: an earlier version's
	// RemediationRequest may carry the signals' legacy fingerprint.
	fingerprint string
	// legacy: an earlier version opened it, under another name.
	legacy bool

	mu sync.Mutex
	// base is the latest version known of the RemediationRequest; nil means
	// read it before the next write.
	base *remediationv1alpha1.RemediationRequest
	// pending collects the signals for the next write.
	pending *batch
	writing bool
}

// batch is the signals one status write carries.
type batch struct {
	ops  []*op
	done chan struct{}
	// rr and err are the outcome of the write, set before done is closed.
	rr  *remediationv1alpha1.RemediationRequest
	err error
	// hold is set when the ops were counted on a finished
	// RemediationRequest whose next one is held back.
	hold remediationv1alpha1.Hold
}

// op is one signal in a batch.
type op struct {
	resolved  bool
	at        time.Time
	key       keyDigest // digest of the idempotency key
	keyed     bool
	withdrawn bool // its caller gave up before the write took it
	// alreadyCounted is set by apply: the key was counted before.
	alreadyCounted bool
	// moves is set by a write that found the RemediationRequest finished
	// and its hold over: the op opens the next one. Like alreadyCounted,
	// only the attempt of the write that lands decides it.
	moves bool
	// source, name and severity are the signal's, for the summary.
	source, name, severity string
	// instance is the digest of the idempotency key of a firing or a
	// Resolved signal, which names the instance it fired or resolved.
	instance  keyDigest
	instanced bool
}

func newOp(s Signal) *op {
	o := &op{resolved: s.Resolved, at: s.ReceivedAt, source: s.Spec.SignalSource, name: s.Spec.SignalName, severity: s.Spec.Severity}
	if s.IdempotencyKey != "" {
		o.instance, o.instanced = digest(s.IdempotencyKey), true
		if !s.Resolved {
			o.key, o.keyed = o.instance, true
		}
	}
	return o
}

// uid is the UID of the RemediationRequest as last known; empty if unknown.
func (c *counter) uid() types.UID {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.base == nil {
		return ""
	}
	return c.base.UID
}

// add queues s for the next write and waits for that write. alreadyCounted
// reports that s carried an idempotency key that was counted before.
func (c *counter) add(ctx context.Context, s Signal) (rr *remediationv1alpha1.RemediationRequest, alreadyCounted bool, hold remediationv1alpha1.Hold, err error) {
	o := newOp(s)
	c.mu.Lock()
	if c.pending == nil {
		c.pending = &batch{done: make(chan struct{})}
	}
	b := c.pending
	b.ops = append(b.ops, o)
	if !c.writing {
		c.writing = true
		go c.run()
	}
	c.mu.Unlock()

	select {
	case <-b.done:
		rr, alreadyCounted, hold, err = b.result(o)
		return rr, alreadyCounted, hold, err
	case <-ctx.Done():
	}
	select {
	case <-b.done:
		// The write finished as the caller gave up: it has its answer.
		rr, alreadyCounted, hold, err = b.result(o)
		return rr, alreadyCounted, hold, err
	default:
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.pending == b {
		o.withdrawn = true
		return nil, false, "", fmt.Errorf("signal not counted: %w", ctx.Err())
	}
	return nil, false, "", fmt.Errorf("signal counted only if the write in flight succeeds: %w", ctx.Err())
}

// result is what the write of b did with o.
func (b *batch) result(o *op) (*remediationv1alpha1.RemediationRequest, bool, remediationv1alpha1.Hold, error) {
	switch {
	case b.err != nil:
		return b.rr, o.alreadyCounted, "", b.err
	case o.moves:
		return nil, false, "", &goneError{name: b.rr.Name, uid: b.rr.UID, finished: b.rr}
	case o.resolved || o.alreadyCounted:
		return b.rr, o.alreadyCounted, "", nil
	}
	return b.rr, false, b.hold, nil
}

// run writes batches until none is pending.
func (c *counter) run() {
	for {
		c.mu.Lock()
		b := c.pending
		c.pending = nil
		if b == nil {
			c.writing = false
			c.mu.Unlock()
			return
		}
		ops := make([]*op, 0, len(b.ops))
		for _, o := range b.ops {
			if !o.withdrawn {
				ops = append(ops, o)
			}
		}
		base := c.base
		c.mu.Unlock()

		var latest *remediationv1alpha1.RemediationRequest
		if len(ops) > 0 {
			latest, b.hold, b.err = c.write(base, ops)
			b.rr = latest
		} else {
			latest = base
		}
		c.mu.Lock()
		c.base = latest
		c.mu.Unlock()
		close(b.done)
	}
}

// write stores ops on the RemediationRequest, starting from base (nil:
// read it first), and returns the RemediationRequest as stored, or as read
// when it turned out finished. Every update carries the resourceVersion it
// was computed from, so a concurrent change makes it fail with a conflict
// instead of being overwritten; then the ops are applied again to a fresh
// read.
func (c *counter) write(base *remediationv1alpha1.RemediationRequest, ops []*op) (*remediationv1alpha1.RemediationRequest, remediationv1alpha1.Hold, error) {
	ctx, cancel := context.WithTimeout(context.Background(), c.engine.writeTimeout)
	defer cancel()
	client := c.engine.client.RemediationRequests(c.namespace)
	obj := base
	var uid types.UID // of the RemediationRequest as last seen
	if base != nil {
		uid = base.UID
	}
	readReason := "no_base"
	var stored *remediationv1alpha1.RemediationRequest
	var hold remediationv1alpha1.Hold
	err := retryOnConflict(ctx, func() error {
		if obj == nil {
			reads.WithLabelValues(readReason).Inc()
			got, err := client.Get(ctx, c.name, metav1.GetOptions{})
			if apierrors.IsNotFound(err) {
				return &goneError{name: c.name, uid: uid}
			}
			if err != nil {
				return fmt.Errorf("reading RemediationRequest %s/%s: %w", c.namespace, c.name, upstream(err))
			}
			obj, uid = got, got.UID
		}
		if obj.Spec.SignalFingerprint != c.fingerprint {
			return fmt.Errorf("%w: %s/%s has fingerprint %s", ErrNameCollision, c.namespace, c.name, obj.Spec.SignalFingerprint)
		}
		// What an earlier attempt decided for each op was decided on
		// another version, maybe of another RemediationRequest at the
		// name: an op it moved on must not stay moved when this attempt
		// counts it here, or it would be counted twice and the active
		// RemediationRequest deleted as if finished.
		for _, o := range ops {
			o.moves, o.alreadyCounted = false, false
		}
		next := obj.DeepCopy()
		var evicted int
		var blocked bool
		if obj.Status.OverallPhase.IsTerminal() || obj.DeletionTimestamp != nil {
			// Being deleted counts as finished, and holds nothing: a count
			// on it would vanish with it.
			if c.legacy || !c.engine.holds() || obj.DeletionTimestamp != nil {
				statusWrites.WithLabelValues(writeTerminal).Inc()
				stored = obj
				return &goneError{name: c.name, uid: obj.UID, finished: obj}
			}
			var write bool
			hold, blocked, write, evicted = c.engine.onFinished(next, ops)
			if !write {
				statusWrites.WithLabelValues(writeTerminal).Inc()
				stored = obj
				return nil
			}
		} else {
			hold = ""
			evicted = apply(next, ops)
		}
		updated, err := client.UpdateStatus(ctx, next, metav1.UpdateOptions{FieldManager: FieldManager})
		switch {
		case err == nil:
			if blocked {
				c.engine.recordBlocked(updated)
			}
			statusWrites.WithLabelValues(writeSuccess).Inc()
			signalsPerWrite.Observe(float64(len(ops)))
			keysEvicted.Add(float64(evicted))
			stored = updated
			return nil
		case apierrors.IsConflict(err):
			statusWrites.WithLabelValues(writeConflict).Inc()
			obj, readReason = nil, "conflict"
			return err
		case apierrors.IsNotFound(err):
			statusWrites.WithLabelValues(writeDeleted).Inc()
			return &goneError{name: c.name, uid: obj.UID}
		default:
			statusWrites.WithLabelValues(writeError).Inc()
			// The write may or may not have landed (a timeout, say):
			// read before the next one.
			return fmt.Errorf("updating the status of RemediationRequest %s/%s: %w", c.namespace, c.name, upstream(err))
		}
	})
	var gone *goneError
	switch {
	case err == nil, errors.As(err, &gone):
		return stored, hold, err
	case apierrors.IsConflict(err):
		// Lost every race until the write timeout.
		return nil, "", fmt.Errorf("%w: %s/%s: %w", ErrContention, c.namespace, c.name, err)
	}
	return nil, "", err
}

// apply adds ops to the deduplication status and the signal summary of rr,
// and returns how many idempotency keys it evicted from the window. A
// firing op whose key the window holds, or an earlier op of ops carries, is
// marked alreadyCounted and not counted, in neither; its key moves to the
// end of the window. apply runs again on a fresh object after a conflict,
// so it sets alreadyCounted afresh. It works on finished RemediationRequests
// as on active ones.
func apply(rr *remediationv1alpha1.RemediationRequest, ops []*op) int {
	d := rr.Status.Deduplication
	if d == nil {
		d = &remediationv1alpha1.DeduplicationStatus{
			FirstSeenAt: rr.Spec.ReceivedTime,
			LastSeenAt:  rr.Spec.ReceivedTime,
		}
		rr.Status.Deduplication = d
	}
	w := loadWindow(d)
	sum := loadSummary(rr, d)
	evicted := 0
	for _, o := range ops {
		at := metav1.NewTime(o.at)
		if o.resolved {
			if d.LastResolvedAt == nil || d.LastResolvedAt.Before(&at) {
				d.LastResolvedAt = &at
			}
			sum.resolve(o)
			continue
		}
		o.alreadyCounted = o.keyed && w.touch(o.key)
		if o.alreadyCounted {
			continue
		}
		if o.keyed {
			evicted += w.add(o.key)
		}
		d.OccurrenceCount++
		sum.count(o)
		if d.LastSeenAt.Before(&at) {
			d.LastSeenAt = at
		}
	}
	w.store(d)
	sum.setConditions(rr)
	if evicted > 0 {
		d.EvictedIdempotencyKeys += int64(evicted)
		setEvictedCondition(rr, d.EvictedIdempotencyKeys)
	}
	return evicted
}
