// Package targets resolves the kind a signal's sender wrote to the kind
// kube-apiserver serves, through kube-apiserver's own discovery, as kubectl
// does with the names people type: client-go's RESTMapper over a
// memory-cached discovery client, with kubectl's shortcut expander. Any case
// of the kind, the resource name (singular or plural) and short names map to
// one canonical group and Kind, so that one object is one problem however
// it is spelled, and the scope discovery gives decides whether a target has
// a namespace.
//
// A resolved spelling is kept in memory: resolving it again reads nothing.
// A spelling discovery does not know refreshes discovery, at most once per
// MinRefreshInterval, so that a kind whose CRD was just installed is found
// and a sender spamming made-up kinds cannot make the server hammer
// kube-apiserver.
package targets

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/restmapper"
	"k8s.io/klog/v2"
)

// MinRefreshInterval is the least time between two refreshes of discovery
// caused by unknown kinds: a kind served for the first time (a CRD just
// established) is found by a signal sent at most this long after the
// previous refresh.
const MinRefreshInterval = 5 * time.Second

// maxSpellings bounds the resolved spellings kept. Every kind has a handful
// (Kind, its lowercase, plural, singular, short names, per apiVersion); a
// sender inventing case variants of one kind cannot make it grow past this.
const maxSpellings = 4096

// ErrDiscoveryUnavailable means discovery could not tell whether a kind
// exists just now: kube-apiserver has not answered it, or the API group
// asked about failed discovery (an aggregated API that is down). Worth a
// retry.
var ErrDiscoveryUnavailable = errors.New("kube-apiserver's discovery is not available")

// Kind is what discovery says of a kind.
type Kind struct {
	// GroupVersionKind is the canonical group and Kind, with the version the
	// sender wrote when it is served, else the group's preferred one.
	schema.GroupVersionKind
	// Namespaced is true for kinds whose objects live in a namespace.
	Namespaced bool
}

// UnknownKindError says that discovery knows no kind by the name sent in
// the API group of the apiVersion sent.
type UnknownKindError struct {
	APIVersion string
	Kind       string
	// Suggestion is the apiVersion and Kind probably meant, if one is close.
	Suggestion string
}

func (e *UnknownKindError) Error() string {
	msg := fmt.Sprintf("no kind, resource or short name %q is served in API version %q (kube-apiserver's discovery)", e.Kind, e.APIVersion)
	if e.Suggestion != "" {
		msg += fmt.Sprintf("; did you mean %s?", e.Suggestion)
	}
	return msg
}

// Resolver resolves target kinds; it is safe for concurrent use.
type Resolver struct {
	cached   discovery.CachedDiscoveryInterface
	deferred *restmapper.DeferredDiscoveryRESTMapper
	mapper   meta.RESTMapper
	interval time.Duration
	now      func() time.Time

	mu        sync.RWMutex
	spellings map[spelling]Kind

	refreshMu   sync.Mutex
	lastRefresh time.Time
	// usable is whether the last refresh read discovery; read whether one
	// ever did.
	usable atomic.Bool
	read   atomic.Bool
	// failedGroups are the API groups whose discovery failed at the last
	// refresh; a miss in them is not an unknown kind.
	failedGroups atomic.Pointer[map[string]error]
}

type spelling struct{ apiVersion, kind string }

// NewResolver returns a resolver over client, kube-apiserver's discovery;
// call Refresh once before use, and again (it is rate-limited) until it
// succeeds.
func NewResolver(client discovery.DiscoveryInterface) *Resolver {
	return newResolver(client, MinRefreshInterval, time.Now)
}

func newResolver(client discovery.DiscoveryInterface, interval time.Duration, now func() time.Time) *Resolver {
	cached := memory.NewMemCacheClient(client)
	deferred := restmapper.NewDeferredDiscoveryRESTMapper(cached)
	r := &Resolver{
		cached:    cached,
		deferred:  deferred,
		mapper:    restmapper.NewShortcutExpander(deferred, cached, nil),
		interval:  interval,
		now:       now,
		spellings: map[spelling]Kind{},
	}
	r.failedGroups.Store(&map[string]error{})
	return r
}

// HasRead reports whether discovery has been read once: the server is not
// ready to resolve targets before.
func (r *Resolver) HasRead() bool { return r.read.Load() }

// Resolve returns the canonical kind of what a sender wrote as apiVersion
// and kind. The error is an *UnknownKindError, or wraps
// ErrDiscoveryUnavailable.
func (r *Resolver) Resolve(ctx context.Context, apiVersion, kind string) (Kind, error) {
	key := spelling{apiVersion, kind}
	r.mu.RLock()
	k, ok := r.spellings[key]
	r.mu.RUnlock()
	if ok {
		return k, nil
	}
	gv, err := schema.ParseGroupVersion(apiVersion)
	if err != nil {
		return Kind{}, &UnknownKindError{APIVersion: apiVersion, Kind: kind}
	}
	if !r.usable.Load() && !r.Refresh(ctx) {
		return Kind{}, fmt.Errorf("%w: it has not been read yet", ErrDiscoveryUnavailable)
	}
	k, err = r.lookup(gv, kind)
	if isNoMatch(err) {
		misses.Inc()
		if r.Refresh(ctx) {
			k, err = r.lookup(gv, kind)
		}
	}
	switch {
	case isNoMatch(err):
		if groupErr, failed := (*r.failedGroups.Load())[gv.Group]; failed {
			return Kind{}, fmt.Errorf("%w: discovery of API group %q failed: %w", ErrDiscoveryUnavailable, gv.Group, groupErr)
		}
		return Kind{}, &UnknownKindError{APIVersion: apiVersion, Kind: kind, Suggestion: r.suggest(gv, kind)}
	case err != nil:
		return Kind{}, fmt.Errorf("%w: %w", ErrDiscoveryUnavailable, err)
	}
	r.mu.Lock()
	if len(r.spellings) < maxSpellings {
		r.spellings[key] = k
	}
	r.mu.Unlock()
	return k, nil
}

// lookup asks the RESTMapper for the kind in gv's group that kind names,
// in any case: a resource name (singular, plural or short, through the
// shortcut expander) or the Kind. The version is not part of an object's
// identity: the sender's is kept if the group serves the kind in it, else
// the group's preferred version names the kind.
func (r *Resolver) lookup(gv schema.GroupVersion, kind string) (Kind, error) {
	gk, err := r.groupKind(gv.Group, strings.ToLower(kind))
	if err != nil {
		return Kind{}, err
	}
	mapping, err := r.mapper.RESTMapping(gk, gv.Version)
	if isNoMatch(err) {
		mapping, err = r.mapper.RESTMapping(gk)
	}
	if err != nil {
		return Kind{}, err
	}
	if !r.listed(mapping.Resource) {
		// The mapper guesses kinds discovery does not list (List, FooList).
		return Kind{}, &meta.NoKindMatchError{GroupKind: gk}
	}
	return Kind{GroupVersionKind: mapping.GroupVersionKind, Namespaced: mapping.Scope.Name() == meta.RESTScopeNameNamespace}, nil
}

// listed reports whether discovery lists resource; the cached discovery
// answers from memory.
func (r *Resolver) listed(resource schema.GroupVersionResource) bool {
	list, err := r.cached.ServerResourcesForGroupVersion(resource.GroupVersion().String())
	if err != nil {
		return false
	}
	for _, res := range list.APIResources {
		if res.Name == resource.Resource {
			return true
		}
	}
	return false
}

// groupKind returns the canonical group and Kind in group that name, a
// lowercase resource name or kind, stands for.
func (r *Resolver) groupKind(group, name string) (schema.GroupKind, error) {
	// An empty group is "any group" to the mapper and the shortcut
	// expander: the core group is kept by filtering.
	gvks, err := r.mapper.KindsFor(schema.GroupVersionResource{Group: group, Resource: name})
	if err != nil && !isNoMatch(err) {
		return schema.GroupKind{}, err
	}
	for _, gvk := range gvks {
		if gvk.Group == group {
			return gvk.GroupKind(), nil
		}
	}
	// A kind whose lowercase is not its singular resource name: discovery
	// maps the lowercase kind to its resource, whose kind is canonical.
	m, err := r.mapper.RESTMapping(schema.GroupKind{Group: group, Kind: name})
	if err != nil {
		return schema.GroupKind{}, err
	}
	gvk, err := r.mapper.KindFor(m.Resource)
	if err != nil {
		return schema.GroupKind{}, err
	}
	return gvk.GroupKind(), nil
}

// Refresh reads discovery again, unless it was read less than
// MinRefreshInterval ago; concurrent callers share one read. It reports
// whether discovery was read and is usable.
func (r *Resolver) Refresh(ctx context.Context) bool {
	r.refreshMu.Lock()
	defer r.refreshMu.Unlock()
	if now := r.now(); !r.lastRefresh.IsZero() && now.Sub(r.lastRefresh) < r.interval {
		refreshes.WithLabelValues("limited").Inc()
		return false
	}
	r.lastRefresh = r.now()
	r.deferred.Reset()
	failed := map[string]error{}
	// One read fills the memory cache and the RESTMapper; a group that
	// failed (an aggregated API that is down) leaves the others usable.
	_, _, err := r.cached.ServerGroupsAndResources()
	var groupErr *discovery.ErrGroupDiscoveryFailed
	if errors.As(err, &groupErr) {
		for gv, e := range groupErr.Groups {
			failed[gv.Group] = e
		}
		klog.FromContext(ctx).Info("Discovery of some API groups failed; their kinds cannot be resolved until a later refresh", "err", groupErr.Error())
		err = nil
	}
	if err == nil {
		// The core group is always served: if the mapper has no Namespace,
		// discovery gave nothing usable.
		_, err = r.deferred.RESTMapping(schema.GroupKind{Kind: "Namespace"}, "v1")
	}
	if err != nil {
		refreshes.WithLabelValues("error").Inc()
		// Until a refresh succeeds, misses do not reach the mapper, which
		// would read discovery on each.
		r.usable.Store(false)
		klog.FromContext(ctx).Error(err, "Reading kube-apiserver's discovery failed; signals about kinds not resolved before are answered 503")
		return false
	}
	refreshes.WithLabelValues("ok").Inc()
	r.failedGroups.Store(&failed)
	r.mu.Lock()
	clear(r.spellings)
	r.mu.Unlock()
	r.usable.Store(true)
	r.read.Store(true)
	return true
}

func isNoMatch(err error) bool { return err != nil && meta.IsNoMatchError(err) }
