// Package owner resolves the object a signal names to its top-level
// controller: Pod → ReplicaSet → Deployment, Pod → StatefulSet, DaemonSet or
// Job, Job → CronJob. It reads object metadata only, through a bounded,
// expiring cache, and never fails: when the chain cannot be followed it
// answers with the object itself and says why.
package owner

import (
	"context"
	"errors"
	"fmt"
	"time"

	"golang.org/x/sync/singleflight"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/cache"
	"k8s.io/client-go/metadata"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// describe is "Kind namespace/name", for messages.
func describe(r remediationv1alpha1.ResourceReference) string {
	return fmt.Sprintf("%s %s/%s", r.Kind, r.Namespace, r.Name)
}

// Reasons a resolution fell back to the signal's own target.
const (
	// ReasonNotFound: an object of the chain does not exist (any more).
	ReasonNotFound = "NotFound"
	// ReasonUIDMismatch: an owner of that name exists, but it is not the
	// object the ownerReference points to (it was recreated).
	ReasonUIDMismatch = "UIDMismatch"
	// ReasonLookupFailed: kube-apiserver could not be asked (timeout,
	// forbidden, unavailable).
	ReasonLookupFailed = "LookupFailed"
	// ReasonTooDeep: the chain is longer than any known one.
	ReasonTooDeep = "TooDeep"
)

// TargetUIDMismatchError means the target the signal names by UID is gone:
// an object of that name exists with another UID (it was deleted and its
// name reused, as a StatefulSet's Pods are).
type TargetUIDMismatchError struct {
	Target       remediationv1alpha1.ResourceReference
	UID, LiveUID types.UID
}

func (e *TargetUIDMismatchError) Error() string {
	return fmt.Sprintf("%s has UID %s, not %s: the object the signal is about was deleted and its name reused", describe(e.Target), e.LiveUID, e.UID)
}

// Result is the answer for one target.
type Result struct {
	// Target is the top-level controller, or the object itself when it has
	// none or resolution failed.
	Target remediationv1alpha1.ResourceReference
	// FallbackReason is empty unless resolution failed; then it is one of
	// the Reason constants, and Message says what failed.
	FallbackReason string
	Message        string
	// Err is a *TargetUIDMismatchError when the live target is not the
	// object of the UID given: then nothing else is set.
	Err error
}

// walked are the kinds the resolver reads and follows to their controller.
var walked = map[schema.GroupKind]schema.GroupVersionResource{
	{Kind: "Pod"}:                       {Version: "v1", Resource: "pods"},
	{Group: "apps", Kind: "ReplicaSet"}: {Group: "apps", Version: "v1", Resource: "replicasets"},
	{Group: "batch", Kind: "Job"}:       {Group: "batch", Version: "v1", Resource: "jobs"},
}

// topLevel are the controllers the resolver stops at. They are named from
// the ownerReference and not read: the server's RBAC stays get on pods,
// replicasets and jobs, and the reference's UID was checked against the
// object that holds it.
var topLevel = map[schema.GroupKind]bool{
	{Group: "apps", Kind: "Deployment"}:  true,
	{Group: "apps", Kind: "StatefulSet"}: true,
	{Group: "apps", Kind: "DaemonSet"}:   true,
	{Group: "batch", Kind: "CronJob"}:    true,
}

// maxDepth bounds the objects read per resolution; the longest known chain
// (Pod → ReplicaSet → Deployment) reads two.
const maxDepth = 3

// Options configure a Resolver.
type Options struct {
	// TTL is how long an object's metadata is reused.
	TTL time.Duration
	// CacheSize bounds the objects kept.
	CacheSize int
	// Timeout bounds one metadata GET, shared by every caller waiting on it.
	Timeout time.Duration
}

// Resolver resolves targets to their top-level controllers. It is safe for
// concurrent use.
type Resolver struct {
	client  metadata.Interface
	opts    Options
	cache   *cache.LRUExpireCache
	flights singleflight.Group
}

// entry is what the resolver keeps of an object.
type entry struct {
	uid        types.UID
	controller *metav1.OwnerReference
}

// NewResolver returns a resolver reading through client.
func NewResolver(client metadata.Interface, opts Options) *Resolver {
	return &Resolver{client: client, opts: opts, cache: cache.NewLRUExpireCache(opts.CacheSize)}
}

// Resolve answers with target's top-level controller. Targets of kinds it
// does not walk are their own answer. uid, if set, is the UID of the object
// the signal is about: compared with the target when it is read (a Pod,
// ReplicaSet or Job), where a mismatch is the only failure, answered in
// Result.Err. Not read, or not found, the target is taken unverified.
func (r *Resolver) Resolve(ctx context.Context, target remediationv1alpha1.ResourceReference, uid types.UID) Result {
	res := r.resolve(ctx, target, uid)
	switch {
	case res.Err != nil:
		resolutions.WithLabelValues("uid_mismatch").Inc()
	case res.FallbackReason != "":
		resolutions.WithLabelValues("fallback").Inc()
	case res.Target != target:
		resolutions.WithLabelValues("owner").Inc()
	default:
		resolutions.WithLabelValues("self").Inc()
	}
	return res
}

func (r *Resolver) resolve(ctx context.Context, target remediationv1alpha1.ResourceReference, uid types.UID) Result {
	gv, err := schema.ParseGroupVersion(target.APIVersion)
	if err != nil || target.Namespace == "" {
		return Result{Target: target}
	}
	gk := gv.WithKind(target.Kind).GroupKind()
	if _, ok := walked[gk]; !ok {
		return Result{Target: target}
	}
	fallback := func(reason, format string, args ...any) Result {
		return Result{Target: target, FallbackReason: reason, Message: fmt.Sprintf(format, args...)}
	}

	current := target
	// The UID the child's ownerReference names, or the sender's for the
	// target: a cached entry of another UID is read again.
	wantUID := uid
	for depth := range maxDepth {
		e, err := r.get(ctx, walked[gk], current.Namespace, current.Name, wantUID)
		switch {
		case err == nil && depth == 0 && uid != "" && e.uid != uid:
			return Result{Target: target, Err: &TargetUIDMismatchError{Target: target, UID: uid, LiveUID: e.uid}}
		case apierrors.IsNotFound(err):
			return fallback(ReasonNotFound, "%s not found", describe(current))
		case err != nil:
			return fallback(ReasonLookupFailed, "reading %s: %v", describe(current), err)
		case wantUID != "" && e.uid != wantUID:
			return fallback(ReasonUIDMismatch, "%s has UID %s, its dependent's ownerReference names %s", describe(current), e.uid, wantUID)
		}
		ref := e.controller
		if ref == nil {
			return Result{Target: current}
		}
		refGV, err := schema.ParseGroupVersion(ref.APIVersion)
		if err != nil {
			return Result{Target: current}
		}
		next := remediationv1alpha1.ResourceReference{APIVersion: ref.APIVersion, Kind: ref.Kind, Namespace: current.Namespace, Name: ref.Name}
		refGK := refGV.WithKind(ref.Kind).GroupKind()
		if topLevel[refGK] {
			return Result{Target: next}
		}
		if _, ok := walked[refGK]; !ok {
			// A controller the resolver does not know (a Node for a mirror
			// Pod, a custom resource): the object itself is the answer.
			return Result{Target: current}
		}
		current, gk, wantUID = next, refGK, ref.UID
	}
	return fallback(ReasonTooDeep, "more than %d objects between %s and its top-level controller", maxDepth, describe(target))
}

// get returns an object's metadata, from the cache or by one GET shared by
// every concurrent caller. A cached entry whose UID is not wantUID is stale
// (the owner was recreated within the TTL) and is read again.
func (r *Resolver) get(ctx context.Context, gvr schema.GroupVersionResource, namespace, name string, wantUID types.UID) (entry, error) {
	key := gvr.Resource + "/" + namespace + "/" + name
	if v, ok := r.cache.Get(key); ok {
		e := v.(entry)
		if wantUID == "" || e.uid == wantUID {
			return e, nil
		}
		r.cache.Remove(key)
	}
	ch := r.flights.DoChan(key, func() (any, error) {
		// The GET outlives a caller that gives up: others may wait on it.
		getCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.opts.Timeout)
		defer cancel()
		meta, err := r.client.Resource(gvr).Namespace(namespace).Get(getCtx, name, metav1.GetOptions{})
		metadataRequests.WithLabelValues(gvr.Resource, requestResult(err)).Inc()
		if err != nil {
			return entry{}, err
		}
		e := entry{uid: meta.UID, controller: metav1.GetControllerOfNoCopy(meta)}
		if e.controller != nil {
			e.controller = e.controller.DeepCopy()
		}
		r.cache.Add(key, e, r.opts.TTL)
		return e, nil
	})
	select {
	case res := <-ch:
		if res.Err != nil {
			return entry{}, res.Err
		}
		return res.Val.(entry), nil
	case <-ctx.Done():
		return entry{}, ctx.Err()
	}
}

func requestResult(err error) string {
	switch {
	case err == nil:
		return "ok"
	case apierrors.IsNotFound(err):
		return "not_found"
	case errors.Is(err, context.DeadlineExceeded):
		return "timeout"
	}
	return "error"
}
