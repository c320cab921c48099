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

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/registry/rest"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/generated/informers/externalversions"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/owner"
	alertmanagerregistry "github.com/signal-apiserver/signal-apiserver/pkg/registry/alertmanager"
	signalregistry "github.com/signal-apiserver/signal-apiserver/pkg/registry/signal"
)

// ExtraConfig is what the signals API group needs besides a generic server.
type ExtraConfig struct {
	// Client reads and writes RemediationRequests in kube-apiserver.
	Client versioned.Interface
	// ClusterID goes into default fingerprints.
	ClusterID string
	// ClusterScopedNamespace holds the RemediationRequests of signals about
	// cluster-scoped objects.
	ClusterScopedNamespace string
	// Owners resolves signal targets to their top-level controllers; nil
	// turns resolution off.
	Owners signalregistry.OwnerResolver
	// AlertmanagerTargetRules map alert labels to the objects they name.
	AlertmanagerTargetRules []alertmanagerregistry.TargetRule
	// ManagedNamespaces are the namespaces RemediationRequests may be
	// opened in (--namespace-selector); nil means all.
	ManagedNamespaces *signalregistry.ManagedNamespaces
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
	c := completedConfig{
		GenericConfig: cfg.GenericConfig.Complete(),
		ExtraConfig:   &cfg.ExtraConfig,
	}
	return CompletedConfig{&c}
}

// New builds the server: the RemediationRequest informer and its readiness
// check, the managed namespaces' informer and its readiness check, the dedup
// engine, and the signals API group, whose storage authorizes senders with
// the server's own delegated authorizer.
func (c completedConfig) New() (*Server, error) {
	generic, err := c.GenericConfig.New("signal-apiserver", genericapiserver.NewEmptyDelegate())
	if err != nil {
		return nil, err
	}

	factory := externalversions.NewSharedInformerFactoryWithOptions(c.ExtraConfig.Client, 0, // no resyncs: the engine only reads the cache
		externalversions.WithTransform(dedup.StripForCache))
	informer := factory.Remediation().V1alpha1().RemediationRequests().Informer()
	rrCache, err := dedup.NewInformerCache(informer)
	if err != nil {
		return nil, err
	}
	engine := dedup.NewEngine(c.ExtraConfig.Client.RemediationV1alpha1(), rrCache)
	if _, err := informer.AddEventHandler(cache.ResourceEventHandlerFuncs{
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

	dedup.RegisterMetrics()
	signalregistry.RegisterMetrics()
	owner.RegisterMetrics()
	alertmanagerregistry.RegisterMetrics()
	registerMetrics()
	var nameRuleChecked atomic.Bool
	if err := generic.AddPostStartHook("start-remediationrequest-informer", func(ctx genericapiserver.PostStartHookContext) error {
		go func() {
			// The informer starts once the CRD refuses RemediationRequests
			// not named after their fingerprint: from then on no
			// RemediationRequest under another name can appear, so the
			// first list holds every one an earlier version opened.
			backoff := wait.Backoff{Duration: time.Second, Factor: 2, Cap: 30 * time.Second, Steps: math.MaxInt32}
			err := wait.ExponentialBackoffWithContext(ctx, backoff, func(ctx context.Context) (bool, error) {
				err := dedup.CheckNameRule(ctx, c.ExtraConfig.Client.RemediationV1alpha1(), c.ExtraConfig.ClusterScopedNamespace)
				if err != nil {
					klog.ErrorS(err, "Not serving signals yet")
				}
				return err == nil, nil
			})
			if err != nil {
				return
			}
			nameRuleChecked.Store(true)
			factory.Start(ctx.Done())
			if cache.WaitForCacheSync(ctx.Done(), informer.HasSynced) {
				cacheSynced.Set(1)
			}
		}()
		return nil
	}); err != nil {
		return nil, err
	}
	if err := generic.AddReadyzChecks(
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
	); err != nil {
		return nil, err
	}
	var namespaces signalregistry.NamespaceGate
	if managed := c.ExtraConfig.ManagedNamespaces; managed != nil {
		namespaces = managed
		if err := generic.AddPostStartHook("start-managed-namespace-informer", func(ctx genericapiserver.PostStartHookContext) error {
			go managed.Informer().RunWithContext(ctx)
			return nil
		}); err != nil {
			return nil, err
		}
		if err := generic.AddReadyzChecks(healthz.NamedCheck("managed-namespaces-synced", func(*http.Request) error {
			if !managed.Informer().HasSynced() {
				return errors.New("the informer of managed namespaces (--namespace-selector) has not synced")
			}
			return nil
		})); err != nil {
			return nil, err
		}
	}

	apiGroupInfo := genericapiserver.NewDefaultAPIGroupInfo(signals.GroupName, Scheme, metav1.ParameterCodec, Codecs)
	apiGroupInfo.NegotiatedSerializer = newSignalsSerializer(Codecs)
	signalREST := signalregistry.NewREST(engine, signalregistry.Options{
		ClusterID:              c.ExtraConfig.ClusterID,
		ClusterScopedNamespace: c.ExtraConfig.ClusterScopedNamespace,
		Owners:                 c.ExtraConfig.Owners,
		// The authorizer of every request, SubjectAccessReviews cached for
		// --authorization-webhook-cache-(un)authorized-ttl.
		Authorizer: c.GenericConfig.Authorization.Authorizer,
		Namespaces: namespaces,
	})
	apiGroupInfo.VersionedResourcesStorageMap[signalsv1.SchemeGroupVersion.Version] = map[string]rest.Storage{
		"signals":                   signalREST,
		"alertmanagernotifications": alertmanagerregistry.NewREST(signalREST, engine, c.ExtraConfig.AlertmanagerTargetRules),
	}
	if err := generic.InstallAPIGroup(&apiGroupInfo); err != nil {
		return nil, err
	}
	klog.V(2).InfoS("Installed the signals API group", "groupVersion", signalsv1.SchemeGroupVersion)
	return &Server{GenericAPIServer: generic}, nil
}
