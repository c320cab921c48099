// Package apiserver wires the signals API group into a generic API server.
package apiserver

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/http"
	"sync/atomic"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/kubernetes"
	typedcorev1 "k8s.io/client-go/kubernetes/typed/core/v1"
	"k8s.io/client-go/tools/cache"
	"k8s.io/client-go/tools/record"
	"k8s.io/component-base/metrics"
	"k8s.io/component-base/metrics/legacyregistry"
	"k8s.io/klog/v2"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	remediationclient "github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/typed/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/informers/externalversions"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/frontproxy"
	"github.com/signal-apiserver/signal-apiserver/pkg/owner"
	"github.com/signal-apiserver/signal-apiserver/pkg/registry"
	alertmanagerregistry "github.com/signal-apiserver/signal-apiserver/pkg/registry/alertmanager"
	signalregistry "github.com/signal-apiserver/signal-apiserver/pkg/registry/signal"
	"github.com/signal-apiserver/signal-apiserver/pkg/signalkey"
	"github.com/signal-apiserver/signal-apiserver/pkg/targets"
)

// ExtraConfig is what the signals API group needs besides a generic server.
type ExtraConfig struct {
	// Client reads and writes RemediationRequests in kube-apiserver.
	Client versioned.Interface
	// Keys is how signals are keyed: --cluster-id,
	// --cluster-scoped-namespace and owner resolution (--resolve-owners).
	Keys signalkey.Policy
	// TargetKinds resolves the kinds of signal targets through
	// kube-apiserver's discovery; the server reads discovery once before it
	// is ready. Keys.Kinds is set to it.
	TargetKinds *targets.Resolver
	// AlertmanagerTargetRules map alert labels to the objects they name.
	AlertmanagerTargetRules []alertmanagerregistry.TargetRule
	// ManagedNamespaces are the namespaces RemediationRequests may be
	// opened in (--namespace-selector); nil means all.
	ManagedNamespaces *registry.ManagedNamespaces
	// Recurrence is the recurrence policy of finished RemediationRequests.
	Recurrence dedup.Policy
	// Events, if set, records an Event on a RemediationRequest whose
	// problem becomes Blocked.
	Events kubernetes.Interface
	// RegisterMetric registers a metric for the server's /metrics;
	// legacyregistry.Register if nil.
	RegisterMetric func(metrics.Registerable) error
}

// Config is the whole configuration of the server.
type Config struct {
	GenericConfig *genericapiserver.RecommendedConfig
	ExtraConfig   ExtraConfig
}

type completedConfig struct {
	GenericConfig genericapiserver.CompletedConfig
	ExtraConfig   *ExtraConfig
}

// CompletedConfig is a Config with defaults filled in; only it can build a
// server.
type CompletedConfig struct {
	*completedConfig
}

// Server is the signal API server.
type Server struct {
	GenericAPIServer *genericapiserver.GenericAPIServer
}

// Complete fills in the defaults.
func (cfg *Config) Complete() CompletedConfig {
	// Outermost, so that notifications answered before the storage runs
	// are counted too.
	build := cfg.GenericConfig.BuildHandlerChainFunc
	cfg.GenericConfig.BuildHandlerChainFunc = func(handler http.Handler, c *genericapiserver.Config) http.Handler {
		return alertmanagerregistry.WithNotificationMetrics(build(handler, c))
	}
	c := completedConfig{
		GenericConfig: cfg.GenericConfig.Complete(),
		ExtraConfig:   &cfg.ExtraConfig,
	}
	return CompletedConfig{&c}
}

// New builds the server in named steps: the metrics, the RemediationRequest
// cache and the dedup engine over it, the managed namespaces, and the
// signals API group, whose storages let senders through with the server's
// own delegated authorizer.
func (c completedConfig) New() (*Server, error) {
	generic, err := c.GenericConfig.New("signal-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}
	if err := c.registerMetrics(); err != nil {
		return nil, fmt.Errorf("registering metrics: %w", err)
	}
	engine, err := c.startEngine(generic)
	if err != nil {
		return nil, err
	}
	gate := &registry.Gate{
		// The authorizer of every request, SubjectAccessReviews cached for
		// --authorization-webhook-cache-(un)authorized-ttl.
		Authorizer: c.GenericConfig.Authorization.Authorizer,
	}
	if err := c.startManagedNamespaces(generic, gate); err != nil {
		return nil, err
	}
	if err := c.startTargetKinds(generic); err != nil {
		return nil, err
	}
	if err := c.installSignalsAPIGroup(generic, gate, engine); err != nil {
		return nil, err
	}
	return &Server{GenericAPIServer: generic}, nil
}

// registerMetrics registers the metrics of every part of the server.
func (c completedConfig) registerMetrics() error {
	register := c.ExtraConfig.RegisterMetric
	if register == nil {
		register = legacyregistry.Register
	}
	for _, registerMetrics := range []func(func(metrics.Registerable) error) error{
		dedup.RegisterMetrics, owner.RegisterMetrics, registry.RegisterMetrics, frontproxy.RegisterMetrics,
		signalregistry.RegisterMetrics, alertmanagerregistry.RegisterMetrics, targets.RegisterMetrics, registerServerMetrics,
	} {
		if err := registerMetrics(register); err != nil {
			return err
		}
	}
	return nil
}

// startEngine builds the dedup engine over an informer cache of
// RemediationRequests, starts the informer once kube-apiserver refuses
// RemediationRequests not named after their fingerprint (from then on no
// RemediationRequest under another name can appear, so its first list holds
// every one an earlier version opened), and adds a readiness check for each.
func (c completedConfig) startEngine(generic *genericapiserver.GenericAPIServer) (*dedup.Engine, error) {
	factory := externalversions.NewSharedInformerFactoryWithOptions(c.ExtraConfig.Client, 0, // no resyncs: the engine only reads the cache
		externalversions.WithTransform(dedup.StripForCache))
	informer := factory.Remediation().V1alpha1().RemediationRequests().Informer()
	rrCache, err := dedup.NewInformerCache(informer)
	if err != nil {
		return nil, err
	}
	opts := []dedup.Option{dedup.WithPolicy(c.ExtraConfig.Recurrence)}
	var broadcaster record.EventBroadcaster
	if c.ExtraConfig.Events != nil {
		broadcaster = record.NewBroadcaster()
		scheme := runtime.NewScheme()
		if err := remediationv1alpha1.AddToScheme(scheme); err != nil {
			return nil, err
		}
		opts = append(opts, dedup.WithEventRecorder(broadcaster.NewRecorder(scheme, corev1.EventSource{Component: "signal-apiserver"})))
	}
	// The engine's writes are never sent again by client-go itself: one that
	// landed but was answered with an error must not be applied twice.
	writes := remediationclient.New(dedup.WithoutResend(c.ExtraConfig.Client.RemediationV1alpha1().RESTClient()))
	engine := dedup.NewEngine(writes, rrCache, opts...)
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc: func(obj any) {
			if rr, ok := obj.(*remediationv1alpha1.RemediationRequest); ok {
				engine.Observe(rr)
			}
		},
		UpdateFunc: func(_, obj any) {
			if rr, ok := obj.(*remediationv1alpha1.RemediationRequest); ok {
				engine.Observe(rr)
			}
		},
		DeleteFunc: func(obj any) {
			if tombstone, ok := obj.(cache.DeletedFinalStateUnknown); ok {
				obj = tombstone.Obj
			}
			if rr, ok := obj.(*remediationv1alpha1.RemediationRequest); ok {
				engine.Forget(rr.Namespace, rr.Spec.SignalFingerprint, rr.Name, rr.UID)
			}
		},
	}); err != nil {
		return nil, fmt.Errorf("watching RemediationRequest deletions: %w", err)
	}

	var nameRuleChecked atomic.Bool
	if err := generic.AddPostStartHook("start-remediationrequest-informer", func(ctx genericapiserver.PostStartHookContext) error {
		go func() {
			backoff := wait.Backoff{Duration: time.Second, Factor: 2, Cap: 30 * time.Second, Steps: math.MaxInt32}
			err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
				err := dedup.CheckNameRule(ctx, c.ExtraConfig.Client.RemediationV1alpha1(), c.ExtraConfig.Keys.ClusterScopedNamespace)
				if err != nil {
					klog.ErrorS(err, "Not serving signals yet")
				}
				return err == nil, nil
			})
			if err != nil {
				return
			}
			nameRuleChecked.Store(true)
			if broadcaster != nil {
				broadcaster.StartRecordingToSink(&typedcorev1.EventSinkImpl{Interface: c.ExtraConfig.Events.CoreV1().Events("")})
				go func() {
					<-ctx.Done()
					broadcaster.Shutdown()
				}()
			}
			go engine.Run(ctx)
			factory.Start(ctx.Done())
			if cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
				cacheSynced.Set(1)
			}
		}()
		return nil
	}); err != nil {
		return nil, err
	}
	err = generic.AddReadyzChecks(
		healthz.NamedCheck("remediationrequest-name-rule", func(*http.Request) error {
			if !nameRuleChecked.Load() {
				return errors.New("kube-apiserver has not yet been seen refusing RemediationRequests not named after their fingerprint (the CRD of this version)")
			}
			return nil
		}),
		healthz.NamedCheck("remediationrequest-cache-synced", func(*http.Request) error {
			if !informer.HasSynced() {
				return errors.New("the RemediationRequest informer has not synced")
			}
			return nil
		}),
	)
	return engine, err
}

// startManagedNamespaces puts --namespace-selector's namespaces, if set, in
// gate, starts their informer and adds its readiness check.
func (c completedConfig) startManagedNamespaces(generic *genericapiserver.GenericAPIServer, gate *registry.Gate) error {
	managed := c.ExtraConfig.ManagedNamespaces
	if managed == nil {
		return nil
	}
	gate.Namespaces = managed
	if err := generic.AddPostStartHook("start-managed-namespace-informer", func(ctx genericapiserver.PostStartHookContext) error {
		go managed.Informer().RunWithContext(ctx)
		return nil
	}); err != nil {
		return err
	}
	return generic.AddReadyzChecks(healthz.NamedCheck("managed-namespaces-synced", func(*http.Request) error {
		if !managed.Informer().HasSynced() {
			return errors.New("the informer of managed namespaces (--namespace-selector) has not synced")
		}
		return nil
	}))
}

// startTargetKinds reads kube-apiserver's discovery, retrying, for
// resolving target kinds, and adds the readiness check that it was read:
// before, no signal's target can be told from a made-up one.
func (c completedConfig) startTargetKinds(generic *genericapiserver.GenericAPIServer) error {
	kinds := c.ExtraConfig.TargetKinds
	if kinds == nil {
		return nil
	}
	c.ExtraConfig.Keys.Kinds = kinds
	if err := generic.AddPostStartHook("read-target-kind-discovery", func(ctx genericapiserver.PostStartHookContext) error {
		go func() {
			// Refresh is rate-limited to once per targets.MinRefreshInterval.
			_ = wait.PollUntilContextCancel(ctx, time.Second, true, func(ctx context.Context) (bool, error) {
				return kinds.Refresh(ctx), nil
			})
		}()
		return nil
	}); err != nil {
		return err
	}
	return generic.AddReadyzChecks(healthz.NamedCheck("target-kind-discovery", func(*http.Request) error {
		if !kinds.HasRead() {
			return errors.New("kube-apiserver's discovery, which resolves the kinds of signal targets, has not been read")
		}
		return nil
	}))
}

// installSignalsAPIGroup serves signals and alertmanagernotifications.
func (c completedConfig) installSignalsAPIGroup(generic *genericapiserver.GenericAPIServer, gate *registry.Gate, engine *dedup.Engine) error {
	keys := &c.ExtraConfig.Keys
	apiGroupInfo := genericapiserver.NewDefaultAPIGroupInfo(signals.GroupName, Scheme, metav1.ParameterCodec, Codecs)
	apiGroupInfo.NegotiatedSerializer = newSignalsSerializer(Codecs)
	apiGroupInfo.VersionedResourcesStorageMap[signalsv1.SchemeGroupVersion.Version] = map[string]rest.Storage{
		"signals":                   signalregistry.NewREST(keys, gate, engine),
		"alertmanagernotifications": alertmanagerregistry.NewREST(keys, gate, engine, c.ExtraConfig.AlertmanagerTargetRules),
	}
	if err := generic.InstallAPIGroup(&apiGroupInfo); err != nil {
		return err
	}
	klog.V(2).InfoS("Installed the signals API group", "groupVersion", signalsv1.SchemeGroupVersion)
	return nil
}
