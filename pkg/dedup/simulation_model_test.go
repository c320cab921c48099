package dedup_test

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apimachinery/pkg/watch"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	applyv1alpha1 "github.com/signal-apiserver/signal-apiserver/generated/applyconfiguration/remediation/v1alpha1"
	remediationclient "github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/typed/remediation/v1alpha1"
)

// This file models what the engine relies on: kube-apiserver serving the
// RemediationRequest CRD (simAPI), the requests in flight between a replica
// and it (simCall, simClient) and a replica's informer cache (simCache).
// Nothing here knows the engine.

type rr = remediationv1alpha1.RemediationRequest

var (
	rrResource    = remediationv1alpha1.Resource("remediationrequests")
	rrKind        = remediationv1alpha1.SchemeGroupVersion.WithKind("RemediationRequest").GroupKind()
	fingerprintRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
)

// simAPI is kube-apiserver with the RemediationRequest CRD: creates atomic
// per name that drop status, status updates preconditioned on
// resourceVersion and UID, the CRD's rules, deletes with preconditions, a
// global resourceVersion and a watch event for every write. Only the
// scheduler goroutine calls it.
type simAPI struct {
	// nameRule is the CRD rule that a new RemediationRequest is named
	// rr-<spec.signalFingerprint[:60]>.
	nameRule bool
	// lostUpdates breaks the model on purpose: status updates ignore
	// resourceVersion (TestSimulationCatchesLostUpdates).
	lostUpdates bool
	// uidBlindDeletes breaks the model on purpose: deletes ignore their UID
	// precondition (TestSimulationCatchesDeletedActive).
	uidBlindDeletes bool
	rv              int64
	uids            int
	objs            map[string]*rr // by namespace/name
	events          []simEvent
	// lives holds every incarnation (UID) ever created, deleted ones with
	// their final count.
	lives map[types.UID]*simLife
	// problems are engine misbehaviours the API server can see, such as an
	// idempotency key recorded twice.
	problems []string
	// aliases maps the legacy fingerprint of a problem to its fingerprint:
	// promise 1 counts the active RemediationRequests of both as one.
	aliases map[string]string
}

// simEvent is a watch event.
type simEvent struct {
	typ watch.EventType
	obj *rr
}

// simLife is one incarnation of a RemediationRequest.
type simLife struct {
	uid       types.UID
	namespace string
	name      string
	fp        string
	count     int64
	// base is the count it had when the run began (an earlier version's
	// RemediationRequest, preloaded): no signal of the run accounts for it.
	base    int64
	deleted bool
}

func newSimAPI(nameRule bool) *simAPI {
	return &simAPI{nameRule: nameRule, objs: map[string]*rr{}, lives: map[types.UID]*simLife{}, aliases: map[string]string{}}
}

// preload stores obj, status included, as an earlier version left it before
// the run (and before the name rule): no rule is checked.
func (a *simAPI) preload(obj *rr) {
	stored := obj.DeepCopy()
	a.uids++
	stored.UID = types.UID("u" + strconv.Itoa(a.uids))
	stored.ResourceVersion = a.nextRV()
	stored.Generation = 1
	stored.CreationTimestamp = metav1.NewTime(time.Now())
	a.objs[objKey(stored.Namespace, stored.Name)] = stored
	var count int64
	if d := stored.Status.Deduplication; d != nil {
		count = d.OccurrenceCount
	}
	a.lives[stored.UID] = &simLife{uid: stored.UID, namespace: stored.Namespace, name: stored.Name, fp: stored.Spec.SignalFingerprint, count: count, base: count}
	a.emit(watch.Added, stored)
}

func objKey(namespace, name string) string { return namespace + "/" + name }

func (a *simAPI) nextRV() string {
	a.rv++
	return strconv.FormatInt(a.rv, 10)
}

func (a *simAPI) emit(typ watch.EventType, obj *rr) {
	a.events = append(a.events, simEvent{typ: typ, obj: obj.DeepCopy()})
}

// sortedKeys returns the keys of the stored objects in order, so that no
// decision depends on map iteration order.
func (a *simAPI) sortedKeys() []string {
	keys := make([]string, 0, len(a.objs))
	for k := range a.objs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// list returns copies of every stored object in namespace (all if empty),
// sorted by namespace and name.
func (a *simAPI) list(namespace string) []*rr {
	var out []*rr
	for _, k := range a.sortedKeys() {
		if o := a.objs[k]; namespace == "" || o.Namespace == namespace {
			out = append(out, o.DeepCopy())
		}
	}
	return out
}

func (a *simAPI) get(namespace, name string) (*rr, error) {
	o, ok := a.objs[objKey(namespace, name)]
	if !ok {
		return nil, apierrors.NewNotFound(rrResource, name)
	}
	return o.DeepCopy(), nil
}

func (a *simAPI) create(obj *rr, dryRun bool) (*rr, error) {
	if obj.Name == "" {
		return nil, apierrors.NewInvalid(rrKind, "", field.ErrorList{field.Required(field.NewPath("metadata", "name"), "the simulation does not model generateName")})
	}
	if errs := a.validateCreate(obj); len(errs) > 0 {
		return nil, apierrors.NewInvalid(rrKind, obj.Name, errs)
	}
	if _, ok := a.objs[objKey(obj.Namespace, obj.Name)]; ok {
		return nil, apierrors.NewAlreadyExists(rrResource, obj.Name)
	}
	stored := obj.DeepCopy()
	// The status subresource: a create never sets status.
	stored.Status = remediationv1alpha1.RemediationRequestStatus{}
	stored.ResourceVersion = ""
	stored.DeletionTimestamp = nil
	stored.Generation = 1
	stored.CreationTimestamp = metav1.NewTime(time.Now())
	if dryRun {
		stored.UID = "dry-run"
		return stored, nil
	}
	a.uids++
	stored.UID = types.UID("u" + strconv.Itoa(a.uids))
	stored.ResourceVersion = a.nextRV()
	a.objs[objKey(stored.Namespace, stored.Name)] = stored
	a.lives[stored.UID] = &simLife{uid: stored.UID, namespace: stored.Namespace, name: stored.Name, fp: stored.Spec.SignalFingerprint}
	a.emit(watch.Added, stored)
	return stored.DeepCopy(), nil
}

func (a *simAPI) validateCreate(obj *rr) field.ErrorList {
	var errs field.ErrorList
	fp := obj.Spec.SignalFingerprint
	if !fingerprintRE.MatchString(fp) {
		errs = append(errs, field.Invalid(field.NewPath("spec", "signalFingerprint"), fp, "must be 64 lowercase hex digits"))
	} else if a.nameRule && obj.Name != "rr-"+fp[:60] {
		errs = append(errs, field.Invalid(field.NewPath("metadata", "name"), obj.Name, "must be rr-<spec.signalFingerprint[:60]>"))
	}
	return errs
}

// preconditions checks what a write names against the stored object, as
// kube-apiserver's storage does: a mismatch is a Conflict.
func preconditions(cur *rr, uid types.UID, resourceVersion string) error {
	if uid != "" && uid != cur.UID {
		return apierrors.NewConflict(rrResource, cur.Name, fmt.Errorf("Precondition failed: UID in precondition: %s, UID in object meta: %s", uid, cur.UID))
	}
	if resourceVersion != "" && resourceVersion != cur.ResourceVersion {
		return apierrors.NewConflict(rrResource, cur.Name, errors.New("the object has been modified; please apply your changes to the latest version and try again"))
	}
	return nil
}

// updateStatus is PUT .../status by signal-apiserver: only status changes,
// and only if the CRD's rules allow the transition. A write that changes
// nothing is not a write: no new resourceVersion, no event.
func (a *simAPI) updateStatus(obj *rr) (*rr, error) {
	return a.updateStatusAs(obj, true)
}

// updateStatusAs is PUT .../status by signal-apiserver (server) or by
// anyone else, for whom the admission policy signal-apiserver-status-owners
// (artifacts/deploy/policy.yaml) refuses any change of
// status.deduplication.
func (a *simAPI) updateStatusAs(obj *rr, server bool) (*rr, error) {
	cur, ok := a.objs[objKey(obj.Namespace, obj.Name)]
	if !ok {
		return nil, apierrors.NewNotFound(rrResource, obj.Name)
	}
	resourceVersion := obj.ResourceVersion
	if a.lostUpdates {
		resourceVersion = ""
	}
	if err := preconditions(cur, obj.UID, resourceVersion); err != nil {
		return nil, err
	}
	next := cur.DeepCopy()
	next.Status = *obj.Status.DeepCopy()
	if errs := validateStatusUpdate(&cur.Status, &next.Status); len(errs) > 0 {
		return nil, apierrors.NewInvalid(rrKind, obj.Name, errs)
	}
	if !server && !equality.Semantic.DeepEqual(cur.Status.Deduplication, next.Status.Deduplication) {
		return nil, apierrors.NewForbidden(rrResource, obj.Name, errors.New("only signal-apiserver may change status.deduplication"))
	}
	return a.store(cur, next), nil
}

// update is PUT on the main resource: status is ignored (status
// subresource), spec is immutable.
func (a *simAPI) update(obj *rr) (*rr, error) {
	cur, ok := a.objs[objKey(obj.Namespace, obj.Name)]
	if !ok {
		return nil, apierrors.NewNotFound(rrResource, obj.Name)
	}
	if err := preconditions(cur, obj.UID, obj.ResourceVersion); err != nil {
		return nil, err
	}
	if !equality.Semantic.DeepEqual(cur.Spec, obj.Spec) {
		return nil, apierrors.NewInvalid(rrKind, obj.Name, field.ErrorList{field.Invalid(field.NewPath("spec"), "", "spec is immutable")})
	}
	next := cur.DeepCopy()
	next.Labels = obj.Labels
	next.Annotations = obj.Annotations
	next.Finalizers = obj.Finalizers
	if next.DeletionTimestamp != nil && len(next.Finalizers) == 0 {
		// The last finalizer of an object being deleted is gone: so is it.
		a.remove(next)
		return next.DeepCopy(), nil
	}
	return a.store(cur, next), nil
}

// store writes next over cur unless nothing changed.
func (a *simAPI) store(cur, next *rr) *rr {
	if equality.Semantic.DeepEqual(cur, next) {
		return cur.DeepCopy()
	}
	next.ResourceVersion = a.nextRV()
	a.objs[objKey(next.Namespace, next.Name)] = next
	life := a.lives[next.UID]
	if d := next.Status.Deduplication; d != nil {
		life.count = d.OccurrenceCount
		if dup := firstDuplicate(d.IdempotencyKeys); dup != "" {
			a.problems = append(a.problems, fmt.Sprintf("%s/%s (%s) records idempotency key digest %s twice", next.Namespace, next.Name, next.UID, dup))
		}
	}
	if msg := simSummaryProblem(next); msg != "" {
		a.problems = append(a.problems, msg)
	}
	a.emit(watch.Modified, next)
	return next.DeepCopy()
}

// firstDuplicate returns, in hex, a digest the window holds twice.
func firstDuplicate(window []byte) string {
	const size = remediationv1alpha1.IdempotencyKeyDigestSize
	seen := make(map[string]bool, len(window)/size)
	for i := 0; i+size <= len(window); i += size {
		k := string(window[i : i+size])
		if seen[k] {
			return hex.EncodeToString([]byte(k))
		}
		seen[k] = true
	}
	return ""
}

// validateStatusUpdate is the CRD's status rules, enforced on every status
// update whatever fields it leaves out: a terminal phase is final and the
// count never decreases.
func validateStatusUpdate(old, next *remediationv1alpha1.RemediationRequestStatus) field.ErrorList {
	var errs field.ErrorList
	if old.OverallPhase.IsTerminal() && next.OverallPhase != old.OverallPhase {
		errs = append(errs, field.Invalid(field.NewPath("status", "overallPhase"), next.OverallPhase, "a terminal overallPhase is final"))
	}
	var oldCount, nextCount int64
	if old.Deduplication != nil {
		oldCount = old.Deduplication.OccurrenceCount
	}
	if next.Deduplication != nil {
		nextCount = next.Deduplication.OccurrenceCount
	}
	if nextCount < oldCount {
		errs = append(errs, field.Invalid(field.NewPath("status", "deduplication", "occurrenceCount"), nextCount, "occurrenceCount never decreases"))
	}
	if d := next.Deduplication; d != nil && (len(d.IdempotencyKeys) > remediationv1alpha1.MaxIdempotencyKeys*remediationv1alpha1.IdempotencyKeyDigestSize || len(d.RecentIdempotencyKeys) > 256) {
		errs = append(errs, field.TooLong(field.NewPath("status", "deduplication", "idempotencyKeys"), len(d.IdempotencyKeys), remediationv1alpha1.MaxIdempotencyKeys*remediationv1alpha1.IdempotencyKeyDigestSize))
	}
	return errs
}

// delete removes an object if its preconditions hold, and returns it as
// it was. An object with finalizers is only marked: deletionTimestamp is
// set (a write, with its event), and it goes once the last finalizer is
// removed (update); deleting it again changes nothing. The watch event of
// the removal carries the object as it was, at the resourceVersion of the
// deletion.
func (a *simAPI) delete(namespace, name string, opts metav1.DeleteOptions) (*rr, error) {
	cur, ok := a.objs[objKey(namespace, name)]
	if !ok {
		return nil, apierrors.NewNotFound(rrResource, name)
	}
	if p := opts.Preconditions; p != nil {
		var uid types.UID
		var resourceVersion string
		if p.UID != nil && !a.uidBlindDeletes {
			uid = *p.UID
		}
		if p.ResourceVersion != nil {
			resourceVersion = *p.ResourceVersion
		}
		if err := preconditions(cur, uid, resourceVersion); err != nil {
			return nil, err
		}
	}
	was := cur.DeepCopy()
	if len(opts.DryRun) > 0 {
		return was, nil
	}
	if len(cur.Finalizers) > 0 {
		if cur.DeletionTimestamp == nil {
			next := cur.DeepCopy()
			now := metav1.NewTime(time.Now())
			next.DeletionTimestamp = &now
			a.store(cur, next)
		}
		return was, nil
	}
	a.remove(cur)
	return was, nil
}

// remove takes cur out of storage.
func (a *simAPI) remove(cur *rr) {
	delete(a.objs, objKey(cur.Namespace, cur.Name))
	gone := cur.DeepCopy()
	gone.ResourceVersion = a.nextRV()
	a.lives[cur.UID].deleted = true
	a.emit(watch.Deleted, gone)
}

// activeByFingerprint returns, per namespace/fingerprint with more than one
// active RemediationRequest, their names: promise 1 says it is empty. One
// being deleted is not active (docs/dedup.md, "Terms").
func (a *simAPI) activeByFingerprint() map[string][]string {
	active := map[string][]string{}
	for _, k := range a.sortedKeys() {
		o := a.objs[k]
		if simActive(o) {
			fp := o.Spec.SignalFingerprint
			if alias, ok := a.aliases[fp]; ok {
				fp = alias
			}
			fk := objKey(o.Namespace, fp)
			active[fk] = append(active[fk], o.Name)
		}
	}
	for fk, names := range active {
		if len(names) < 2 {
			delete(active, fk)
		}
	}
	return active
}

// simActive reports whether o is active: not finished, not being deleted.
func simActive(o *rr) bool {
	return !o.Status.OverallPhase.IsTerminal() && o.DeletionTimestamp == nil
}

// simCall is one request from a replica to the API server. It is in flight
// until the scheduler answers it; its client may give up first when its
// context ends (abandoned), and the API server may still apply it later.
type simCall struct {
	id        int
	node      *simNode
	verb      string // create, get, list, updateStatus, update, delete
	namespace string
	name      string
	obj       *rr
	dryRun    bool
	deleteOpt metav1.DeleteOptions
	ctx       context.Context
	reply     chan simReply
	// abandoned and replied are guarded by simRun.mu.
	abandoned bool
	replied   bool
	// landed is the RemediationRequest whose count an applied status
	// update raised.
	landed types.UID
}

// simReply is the API server's answer to a call.
type simReply struct {
	obj  *rr
	list []*rr
	err  error
}

// write reports whether the call changes state when applied.
func (c *simCall) write() bool {
	return c.verb != "get" && c.verb != "list" && !c.dryRun
}

// simClient is a replica's RemediationRequest client: every call goes in
// flight and waits for the scheduler.
type simClient struct {
	node      *simNode
	namespace string
}

var _ remediationclient.RemediationRequestInterface = simClient{}

// simGetter hands out a replica's clients.
type simGetter struct{ node *simNode }

func (g simGetter) RemediationRequests(namespace string) remediationclient.RemediationRequestInterface {
	return simClient{node: g.node, namespace: namespace}
}

func (c simClient) send(ctx context.Context, call *simCall) simReply {
	call.node = c.node
	call.namespace = c.namespace
	call.ctx = ctx
	if err := ctx.Err(); err != nil {
		return simReply{err: fmt.Errorf("simulated client: %w", err)}
	}
	if !c.node.run.enqueue(call) {
		return simReply{err: errConnectionRefused}
	}
	// The client does not watch ctx itself: the scheduler answers a call
	// whose context ended (simRun.abandonDue), in a fixed order.
	return <-call.reply
}

func (c simClient) Create(ctx context.Context, obj *rr, opts metav1.CreateOptions) (*rr, error) {
	r := c.send(ctx, &simCall{verb: "create", name: obj.Name, obj: obj.DeepCopy(), dryRun: len(opts.DryRun) > 0})
	return r.obj, r.err
}

func (c simClient) Get(ctx context.Context, name string, _ metav1.GetOptions) (*rr, error) {
	r := c.send(ctx, &simCall{verb: "get", name: name})
	return r.obj, r.err
}

func (c simClient) List(ctx context.Context, opts metav1.ListOptions) (*remediationv1alpha1.RemediationRequestList, error) {
	if opts.LabelSelector != "" || opts.FieldSelector != "" {
		return nil, c.unsupported("list with a selector")
	}
	r := c.send(ctx, &simCall{verb: "list"})
	if r.err != nil {
		return nil, r.err
	}
	list := &remediationv1alpha1.RemediationRequestList{}
	for _, o := range r.list {
		list.Items = append(list.Items, *o)
	}
	return list, nil
}

func (c simClient) UpdateStatus(ctx context.Context, obj *rr, opts metav1.UpdateOptions) (*rr, error) {
	r := c.send(ctx, &simCall{verb: "updateStatus", name: obj.Name, obj: obj.DeepCopy(), dryRun: len(opts.DryRun) > 0})
	return r.obj, r.err
}

func (c simClient) Update(ctx context.Context, obj *rr, opts metav1.UpdateOptions) (*rr, error) {
	r := c.send(ctx, &simCall{verb: "update", name: obj.Name, obj: obj.DeepCopy(), dryRun: len(opts.DryRun) > 0})
	return r.obj, r.err
}

func (c simClient) Delete(ctx context.Context, name string, opts metav1.DeleteOptions) error {
	r := c.send(ctx, &simCall{verb: "delete", name: name, deleteOpt: *opts.DeepCopy(), dryRun: len(opts.DryRun) > 0})
	return r.err
}

func (c simClient) DeleteCollection(context.Context, metav1.DeleteOptions, metav1.ListOptions) error {
	return c.unsupported("deletecollection")
}

func (c simClient) Watch(context.Context, metav1.ListOptions) (watch.Interface, error) {
	return nil, c.unsupported("watch")
}

func (c simClient) Patch(context.Context, string, types.PatchType, []byte, metav1.PatchOptions, ...string) (*rr, error) {
	return nil, c.unsupported("patch")
}

func (c simClient) Apply(context.Context, *applyv1alpha1.RemediationRequestApplyConfiguration, metav1.ApplyOptions) (*rr, error) {
	return nil, c.unsupported("apply")
}

func (c simClient) ApplyStatus(context.Context, *applyv1alpha1.RemediationRequestApplyConfiguration, metav1.ApplyOptions) (*rr, error) {
	return nil, c.unsupported("applystatus")
}

// unsupported fails the run: the engine made a call the model does not
// model, so the simulation would not be testing it.
func (c simClient) unsupported(what string) error {
	c.node.run.mu.Lock()
	defer c.node.run.mu.Unlock()
	c.node.run.unsupported = append(c.node.run.unsupported, what)
	return apierrors.NewMethodNotSupported(rrResource, what)
}

// Errors of calls that fail without an answer from the API server.
var (
	errConnectionRefused = errors.New("simulated client: dial tcp: connect: connection refused")
	errConnectionLost    = errors.New("simulated client: http2: client connection lost")
)

// simCache is a replica's informer cache of RemediationRequests: it holds
// what the watch events delivered to it so far say, and lags the API server
// by as many events as the scheduler chooses.
type simCache struct {
	mu   sync.Mutex
	objs map[string]*rr // by namespace/name
}

func newSimCache(objs []*rr) *simCache {
	c := &simCache{objs: map[string]*rr{}}
	for _, o := range objs {
		c.objs[objKey(o.Namespace, o.Name)] = o
	}
	return c
}

// ByFingerprint returns the cached RemediationRequests of a fingerprint,
// sorted by name.
func (c *simCache) ByFingerprint(namespace, fingerprint string) ([]*rr, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []*rr
	for _, o := range c.objs {
		if o.Namespace == namespace && o.Spec.SignalFingerprint == fingerprint {
			out = append(out, o)
		}
	}
	slices.SortFunc(out, func(a, b *rr) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return out, nil
}

// Get returns the cached RemediationRequest namespace/name.
func (c *simCache) Get(namespace, name string) (*rr, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	o, ok := c.objs[objKey(namespace, name)]
	return o, ok
}

// HasSynced is true: a replica's cache is listed before its engine starts.
func (c *simCache) HasSynced() bool { return true }

// apply applies a watch event.
func (c *simCache) apply(ev simEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	k := objKey(ev.obj.Namespace, ev.obj.Name)
	if ev.typ == watch.Deleted {
		delete(c.objs, k)
		return
	}
	c.objs[k] = ev.obj
}

// replace is a relist: the cache becomes objs, and the handler hears a
// delete of every object that vanished and an update of every other one,
// in order of namespace/name.
func (c *simCache) replace(objs []*rr) []simEvent {
	c.mu.Lock()
	defer c.mu.Unlock()
	fresh := map[string]*rr{}
	for _, o := range objs {
		fresh[objKey(o.Namespace, o.Name)] = o
	}
	var notes []simEvent
	var gone []string
	for k := range c.objs {
		if _, ok := fresh[k]; !ok {
			gone = append(gone, k)
		}
	}
	slices.Sort(gone)
	for _, k := range gone {
		notes = append(notes, simEvent{typ: watch.Deleted, obj: c.objs[k]})
	}
	for _, o := range objs {
		typ := watch.Modified
		if _, ok := c.objs[objKey(o.Namespace, o.Name)]; !ok {
			typ = watch.Added
		}
		notes = append(notes, simEvent{typ: typ, obj: o})
	}
	c.objs = fresh
	return notes
}
