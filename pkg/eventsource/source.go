package eventsource

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"golang.org/x/time/rate"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/types"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	corev1listers "k8s.io/client-go/listers/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/util/workqueue"
	"k8s.io/klog/v2"
	"k8s.io/utils/lru"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/apistatus"
)

// limiterGCInterval is how often idle per-object limiters are forgotten.
const limiterGCInterval = time.Minute

// maxRefusalReporters bounds the reporters whose refused Events were
// logged; one forgotten is logged again.
const maxRefusalReporters = 1024

// Config configures a Source.
type Config struct {
	// Kube watches Events.
	Kube kubernetes.Interface
	// Signals submits Signals through kube-apiserver.
	Signals versioned.Interface
	// Filter decides which Events become Signals.
	Filter Filter
	// PerObjectQPS and PerObjectBurst bound the submissions about one
	// involved object. Excess versions wait in the queue, where a later
	// version of the same Event replaces an earlier one.
	PerObjectQPS   float64
	PerObjectBurst int
	// Workers is the number of concurrent submissions.
	Workers int
	// RetryBaseDelay and RetryMaxDelay bound the exponential backoff of a
	// failed submission.
	RetryBaseDelay, RetryMaxDelay time.Duration
}

// Source watches Warning Events and submits a Signal for each version.
type Source struct {
	cfg      Config
	factory  informers.SharedInformerFactory
	informer cache.SharedIndexInformer
	lister   corev1listers.EventLister
	queue    workqueue.TypedRateLimitingInterface[string]
	now      func() time.Time
	// logger is the one Run was given, for the event handlers.
	logger klog.Logger

	mu sync.Mutex
	// submitted is, by Event key, the version last submitted, so that an
	// update that does not bump the count submits nothing.
	submitted map[string]version
	// limiters are the per-object rate limits, by involved object.
	limiters map[string]*rate.Limiter
	// refusalsLogged are the reporters (Event namespace and component)
	// whose refused Events were logged: once each, so that a tenant
	// writing such Events cannot flood the log.
	refusalsLogged *lru.Cache
}

// version is one version of an Event, as its idempotency key counts it.
type version struct {
	uid   types.UID
	count int32
}

// New returns a Source that has not started yet.
func New(cfg Config) (*Source, error) {
	s := &Source{
		cfg:            cfg,
		now:            time.Now,
		logger:         klog.Background(),
		submitted:      map[string]version{},
		limiters:       map[string]*rate.Limiter{},
		refusalsLogged: lru.New(maxRefusalReporters),
		queue: workqueue.NewTypedRateLimitingQueueWithConfig(
			workqueue.NewTypedItemExponentialFailureRateLimiter[string](cfg.RetryBaseDelay, cfg.RetryMaxDelay),
			workqueue.TypedRateLimitingQueueConfig[string]{Name: "events"}),
	}
	opts := []informers.SharedInformerOption{informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = fieldSelector(&cfg.Filter)
	})}
	if cfg.Filter.Namespaces.Len() == 1 {
		opts = append(opts, informers.WithNamespace(cfg.Filter.Namespaces.UnsortedList()[0]))
	}
	s.factory = informers.NewSharedInformerFactoryWithOptions(cfg.Kube, 0, opts...)
	events := s.factory.Core().V1().Events()
	s.informer = events.Informer()
	s.lister = events.Lister()
	_, err := s.informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    s.enqueue,
		UpdateFunc: func(_, obj any) { s.enqueue(obj) },
		DeleteFunc: s.forget,
	})
	if err != nil {
		return nil, err
	}
	return s, nil
}

// fieldSelector lets kube-apiserver drop what the filter would: Events
// that are not warnings and Events in excluded namespaces.
func fieldSelector(f *Filter) string {
	selectors := []fields.Selector{fields.OneTermEqualSelector("type", corev1.EventTypeWarning)}
	for _, ns := range sets.List(f.ExcludeNamespaces) {
		selectors = append(selectors, fields.OneTermNotEqualSelector("metadata.namespace", ns))
	}
	return fields.AndSelectors(selectors...).String()
}

// HasSynced says whether the Events informer has seen every stored Event.
func (s *Source) HasSynced() bool { return s.informer.HasSynced() }

// Run watches and submits until ctx ends.
func (s *Source) Run(ctx context.Context) error {
	defer utilruntime.HandleCrashWithContext(ctx)
	defer s.queue.ShutDown()

	s.logger = klog.FromContext(ctx)
	s.factory.Start(ctx.Done())
	defer s.factory.Shutdown()
	klog.FromContext(ctx).Info("Waiting for the Events informer to sync")
	if !cache.WaitForCacheSync(ctx.Done(), s.informer.HasSynced) {
		return errors.New("the Events informer did not sync")
	}
	for range s.cfg.Workers {
		go wait.UntilWithContext(ctx, s.work, time.Second)
	}
	go wait.UntilWithContext(ctx, s.forgetIdleLimiters, limiterGCInterval)
	klog.FromContext(ctx).Info("Submitting Warning Events as Signals", "workers", s.cfg.Workers)
	<-ctx.Done()
	return nil
}

func (s *Source) enqueue(obj any) {
	ev, ok := obj.(*corev1.Event)
	if !ok {
		return
	}
	if ev.Type == corev1.EventTypeWarning {
		if why := Refuse(ev); why != "" {
			s.refused(ev, why)
			return
		}
	}
	if why := s.cfg.Filter.Ignore(ev, s.now()); why != "" {
		eventsIgnored.WithLabelValues(why).Inc()
		return
	}
	key, err := cache.MetaNamespaceKeyFunc(ev)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	s.queue.Add(key)
}

// refused counts an Event that may not speak about its involved object, or
// whose object is gone, and logs it, once per reporter.
func (s *Source) refused(ev *corev1.Event, why string) {
	eventsRefused.WithLabelValues(why).Inc()
	key := reporter(ev)
	if _, seen := s.refusalsLogged.Get(key); seen {
		return
	}
	s.refusalsLogged.Add(key, struct{}{})
	o := ev.InvolvedObject
	s.logger.Info("Refusing an Event about an object it may not speak about or that was deleted; further ones from this reporter are only counted",
		"event", klog.KObj(ev), "reporter", key, "reason", why,
		"involvedObject", klog.KRef(o.Namespace, o.Name), "kind", o.Kind, "apiVersion", o.APIVersion)
}

func (s *Source) forget(obj any) {
	key, err := cache.DeletionHandlingMetaNamespaceKeyFunc(obj)
	if err != nil {
		utilruntime.HandleError(err)
		return
	}
	s.mu.Lock()
	delete(s.submitted, key)
	s.mu.Unlock()
}

func (s *Source) work(ctx context.Context) {
	for {
		key, shutdown := s.queue.Get()
		if shutdown {
			return
		}
		s.process(ctx, key)
		s.queue.Done(key)
	}
}

// process submits the latest version of the Event key, unless it was
// submitted already.
func (s *Source) process(ctx context.Context, key string) {
	logger := klog.FromContext(ctx).WithValues("event", key)
	namespace, name, err := cache.SplitMetaNamespaceKey(key)
	if err != nil {
		s.queue.Forget(key)
		return
	}
	ev, err := s.lister.Events(namespace).Get(name)
	if apierrors.IsNotFound(err) {
		s.queue.Forget(key)
		return
	}
	if err != nil {
		utilruntime.HandleErrorWithContext(ctx, err, "Reading an Event from the cache", "event", key)
		s.queue.AddRateLimited(key)
		return
	}
	v := version{uid: ev.UID, count: Count(ev)}
	s.mu.Lock()
	done := s.submitted[key] == v
	s.mu.Unlock()
	if done {
		s.queue.Forget(key)
		return
	}

	r := s.limiter(ev).Reserve()
	if d := r.Delay(); d > 0 {
		r.Cancel()
		delayed.Inc()
		s.queue.AddAfter(key, d)
		return
	}

	sig := SignalFor(ev)
	rr, err := s.cfg.Signals.SignalsV1().Signals().Create(ctx, sig, metav1.CreateOptions{})
	switch {
	case err != nil && retriable(err):
		submissions.WithLabelValues(resultRetried).Inc()
		logger.Error(err, "Submitting a Signal failed; retrying", "idempotencyKey", sig.Spec.IdempotencyKey)
		s.queue.AddRateLimited(key)
		return
	case err != nil && uidMismatch(err):
		submissions.WithLabelValues(resultDropped).Inc()
		s.refused(ev, RefusedUIDMismatch)
	case err != nil:
		submissions.WithLabelValues(resultDropped).Inc()
		logger.Error(err, "Signal rejected; dropping this Event version", "idempotencyKey", sig.Spec.IdempotencyKey)
	default:
		outcome := rr.Annotations[signalsv1.AnnotationOutcome]
		submissions.WithLabelValues(strings.ToLower(outcome)).Inc()
		logger.V(2).Info("Submitted a Signal", "idempotencyKey", sig.Spec.IdempotencyKey,
			"outcome", outcome, "rr", klog.KObj(rr), "occurrenceCount", occurrenceCount(rr))
	}
	s.queue.Forget(key)
	s.mu.Lock()
	s.submitted[key] = v
	s.mu.Unlock()
}

// retriable says whether a failed submission may succeed later, by the
// classification the server's metrics use (pkg/apistatus): everything but
// a Rejected answer, and of those the 404 of an APIService that is still
// being registered and the 409 of a moment's name conflict.
func retriable(err error) bool {
	return apistatus.Of(err) != apistatus.Rejected || apierrors.IsNotFound(err) || apierrors.IsConflict(err)
}

// uidMismatch says whether err is the server's 422 on spec.target.uid: the
// involved object was deleted and its name reused.
func uidMismatch(err error) bool {
	if !apierrors.IsInvalid(err) {
		return false
	}
	status, ok := err.(apierrors.APIStatus)
	if !ok || status.Status().Details == nil {
		return false
	}
	for _, c := range status.Status().Details.Causes {
		if c.Field == "spec.target.uid" {
			return true
		}
	}
	return false
}

// limiter returns the rate limit of ev's involved object.
func (s *Source) limiter(ev *corev1.Event) *rate.Limiter {
	o := ev.InvolvedObject
	key := fmt.Sprintf("%s/%s/%s/%s", o.APIVersion, o.Kind, o.Namespace, o.Name)
	s.mu.Lock()
	defer s.mu.Unlock()
	l, ok := s.limiters[key]
	if !ok {
		l = rate.NewLimiter(rate.Limit(s.cfg.PerObjectQPS), s.cfg.PerObjectBurst)
		s.limiters[key] = l
	}
	return l
}

// forgetIdleLimiters drops the limiters whose bucket is full again: a full
// bucket behaves exactly like a new one.
func (s *Source) forgetIdleLimiters(context.Context) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for key, l := range s.limiters {
		if l.Tokens() >= float64(s.cfg.PerObjectBurst) {
			delete(s.limiters, key)
		}
	}
}

func occurrenceCount(rr *remediationv1alpha1.RemediationRequest) int64 {
	if rr.Status.Deduplication == nil {
		return 0
	}
	return rr.Status.Deduplication.OccurrenceCount
}
