// Package server turns command-line flags into a running signal-apiserver.
package server

import (
	"context"
	"fmt"
	"net"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/apimachinery/pkg/labels"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/validation"
	openapinamer "k8s.io/apiserver/pkg/endpoints/openapi"
	genericapiserver "k8s.io/apiserver/pkg/server"
	genericoptions "k8s.io/apiserver/pkg/server/options"
	"k8s.io/apiserver/pkg/util/compatibility"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/metadata"
	"k8s.io/client-go/rest"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/term"
	"k8s.io/klog/v2"
	netutils "k8s.io/utils/net"

	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	generatedopenapi "github.com/signal-apiserver/signal-apiserver/generated/openapi"
	"github.com/signal-apiserver/signal-apiserver/pkg/apiserver"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/owner"
	"github.com/signal-apiserver/signal-apiserver/pkg/registry"
	alertmanagerregistry "github.com/signal-apiserver/signal-apiserver/pkg/registry/alertmanager"
	"github.com/signal-apiserver/signal-apiserver/pkg/signalkey"
	"github.com/signal-apiserver/signal-apiserver/pkg/targets"
	"github.com/signal-apiserver/signal-apiserver/pkg/version"
)

// Options are the flags of signal-apiserver.
type Options struct {
	// RecommendedOptions are k8s.io/apiserver's: serving, delegated
	// authentication and authorization, audit, admission, the core API's
	// kubeconfig.
	RecommendedOptions *genericoptions.RecommendedOptions
	// Logs are component-base's logging flags.
	Logs *logs.Options

	// ClusterID goes into default fingerprints.
	ClusterID string
	// ClusterScopedNamespace holds the RemediationRequests of signals about
	// cluster-scoped objects.
	ClusterScopedNamespace string
	// KubeAPIQPS and KubeAPIBurst limit the server's own calls to
	// kube-apiserver.
	KubeAPIQPS   float32
	KubeAPIBurst int
	// ResolveOwners fingerprints signals by their target's top-level
	// controller; OwnerCacheTTL is how long owner metadata is reused.
	ResolveOwners bool
	OwnerCacheTTL time.Duration
	// AlertmanagerTargetLabels map alert labels to target kinds, in order.
	AlertmanagerTargetLabels []string
	// NamespaceSelector is a label selector on Namespaces: signals about
	// other namespaces open no RemediationRequest. Empty selects all.
	NamespaceSelector string
	// MaxRequestsInFlight and MaxMutatingRequestsInFlight bound the
	// requests one replica serves at once; past them it answers 429 with
	// Retry-After, before reading the body. Every Signal is a mutating
	// request. Members of system:masters are never turned away.
	MaxRequestsInFlight         int
	MaxMutatingRequestsInFlight int
	// ServingCert keeps the serving certificate in-cluster
	// (--serving-ca-secret).
	ServingCert *ServingCertOptions
	// ShutdownDelay is how long the server keeps serving after SIGTERM,
	// with /readyz failing, so that endpoints drop it before it stops.
	ShutdownDelay time.Duration

	// Recurrence is the recurrence policy: how long a finished problem's
	// next RemediationRequest is held back (--recurrence-*).
	Recurrence dedup.Policy

	// Derived by Complete.
	targetRules       []alertmanagerregistry.TargetRule
	namespaceSelector labels.Selector
}

// ownerCacheSize bounds the objects whose metadata the owner resolver keeps
// (a few hundred bytes each).
const ownerCacheSize = 16384

// ownerLookupTimeout bounds one metadata GET of the owner resolver; a signal
// whose lookup times out is fingerprinted by its own target.
const ownerLookupTimeout = 2 * time.Second

// NewOptions returns the defaults: k8s.io/apiserver's recommended options
// without etcd (nothing of a Signal is stored) and without API Priority and
// Fairness (--max-requests-inflight bounds the work instead).
func NewOptions() *Options {
	o := &Options{
		RecommendedOptions: genericoptions.NewRecommendedOptions("", apiserver.Codecs.LegacyCodec(signalsv1.SchemeGroupVersion)),
		Logs:               logs.NewOptions(),

		ClusterScopedNamespace: "signal-apiserver",
		ResolveOwners:          true,
		OwnerCacheTTL:          5 * time.Minute,
		KubeAPIQPS:             500,
		KubeAPIBurst:           1000,

		AlertmanagerTargetLabels:    alertmanagerregistry.DefaultTargetRules,
		MaxRequestsInFlight:         400,
		MaxMutatingRequestsInFlight: 200,
		ServingCert:                 NewServingCertOptions(),
		Recurrence:                  dedup.DefaultPolicy,
	}
	o.RecommendedOptions.Etcd = nil
	o.RecommendedOptions.Features.EnablePriorityAndFairness = false
	return o
}

// Flags returns the flags, in named sections for --help.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	o.RecommendedOptions.AddFlags(fss.FlagSet("generic"))
	logsapi.AddFlags(o.Logs, fss.FlagSet("logs"))

	fs := fss.FlagSet("signals")
	fs.StringVar(&o.ClusterID, "cluster-id", o.ClusterID,
		"Identifies this cluster in default fingerprints, when several clusters feed one remediation system. Changing it starts new RemediationRequests for every target.")
	fs.StringVar(&o.ClusterScopedNamespace, "cluster-scoped-namespace", o.ClusterScopedNamespace,
		"Namespace of the RemediationRequests of signals about cluster-scoped objects, such as Nodes.")
	fs.BoolVar(&o.ResolveOwners, "resolve-owners", o.ResolveOwners,
		"Fingerprint signals without a fingerprint of their own by their target's top-level controller (Pod → ReplicaSet → Deployment, Pod → StatefulSet, DaemonSet or Job, Job → CronJob), read as metadata from kube-apiserver. Changing it starts new RemediationRequests for Pods, ReplicaSets and Jobs.")
	fs.DurationVar(&o.OwnerCacheTTL, "owner-cache-ttl", o.OwnerCacheTTL,
		"How long the owner of a Pod, ReplicaSet or Job is reused before it is read again.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Queries per second of the server's own calls to kube-apiserver.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst of the server's own calls to kube-apiserver.")
	fs.StringSliceVar(&o.AlertmanagerTargetLabels, "alertmanager-target-labels", o.AlertmanagerTargetLabels,
		"Ordered rules label=apiVersion/Kind[:Cluster]: the first rule whose label an alert has (and, unless :Cluster, whose alert has a namespace label) names the alert's target. See docs/alertmanager.md.")
	fs.StringVar(&o.NamespaceSelector, "namespace-selector", o.NamespaceSelector,
		"Label selector on Namespaces (e.g. kubernaut.ai/managed=true): signals about a namespace that does not match open and count nothing and get 422. Cluster-scoped objects' RemediationRequests live in --cluster-scoped-namespace, which must match too. Namespaces are watched: labelling one takes effect without a restart. Empty: every namespace.")
	fs.IntVar(&o.MaxRequestsInFlight, "max-requests-inflight", o.MaxRequestsInFlight,
		"Maximum number of non-mutating requests in flight; further ones get 429 with Retry-After. Zero disables the limit.")
	fs.IntVar(&o.MaxMutatingRequestsInFlight, "max-mutating-requests-inflight", o.MaxMutatingRequestsInFlight,
		"Maximum number of mutating requests, signals among them, in flight; further ones get 429 with Retry-After. Zero disables the limit.")
	fs.DurationVar(&o.ShutdownDelay, "shutdown-delay-duration", o.ShutdownDelay,
		"After SIGTERM, keep serving this long with /readyz failing before the listener closes, so that Service endpoints and kube-apiserver's aggregator stop routing here first. Keep the Pod's terminationGracePeriodSeconds above it.")
	o.ServingCert.AddFlags(fss.FlagSet("serving certificate"))

	rs := fss.FlagSet("recurrence")
	rs.DurationVar(&o.Recurrence.Cooldown, "recurrence-cooldown", o.Recurrence.Cooldown,
		"After a RemediationRequest ends Completed, Skipped or Cancelled, its problem's firing signals are counted on it (outcome Held) this long before they open the next one: the fix needs time to show, and alerts lag. A Resolved signal ends it sooner. 0: no cooldown.")
	rs.DurationVar(&o.Recurrence.Backoff, "recurrence-backoff", o.Recurrence.Backoff,
		"After a RemediationRequest ends Failed or TimedOut, the next one is held back this long, doubled for each further failure in a row up to --recurrence-backoff-max. 0: no backoff.")
	rs.DurationVar(&o.Recurrence.BackoffMax, "recurrence-backoff-max", o.Recurrence.BackoffMax,
		"Cap of the backoff after failures; a quiet period of twice this between a finish and the next opening starts the count of failures in a row afresh. 0: no backoff.")
	rs.IntVar(&o.Recurrence.BlockAfter, "recurrence-block-after", o.Recurrence.BlockAfter,
		"After this many Failed or TimedOut remediations of a problem in a row it is Blocked: no new RemediationRequest until a person runs kubectl annotate rr NAME signals.remediation.io/unblock=now (or deletes the finished one). 0: never block.")
	rs.IntVar(&o.Recurrence.FlapThreshold, "recurrence-flap-threshold", o.Recurrence.FlapThreshold,
		"A problem with this many remediations opened within --recurrence-flap-window is flapping: a Resolved signal no longer ends its hold. 0: a resolution always ends the hold.")
	rs.DurationVar(&o.Recurrence.FlapWindow, "recurrence-flap-window", o.Recurrence.FlapWindow,
		"The window of --recurrence-flap-threshold.")
	return fss
}

// Complete derives what Validate and Config use from the flags that have a
// syntax of their own: the target rules of --alertmanager-target-labels and
// the selector of --namespace-selector. Its errors name the flag.
func (o *Options) Complete() error {
	var errs []error
	var err error
	if o.targetRules, err = alertmanagerregistry.ParseTargetRules(o.AlertmanagerTargetLabels); err != nil {
		errs = append(errs, fmt.Errorf("--alertmanager-target-labels: %w", err))
	}
	if o.namespaceSelector, err = labels.Parse(o.NamespaceSelector); err != nil {
		errs = append(errs, fmt.Errorf("--namespace-selector: %w", err))
	}
	return utilerrors.NewAggregate(errs)
}

// Validate reports every invalid flag but those Complete reports, and
// applies the logging flags (k8s.io/component-base allows that once per
// process). Call it after Complete.
func (o *Options) Validate() error {
	errs := o.RecommendedOptions.Validate()
	for _, msg := range validation.IsDNS1123Label(o.ClusterScopedNamespace) {
		errs = append(errs, fmt.Errorf("--cluster-scoped-namespace: %s", msg))
	}
	if len(o.ClusterID) > 253 {
		errs = append(errs, fmt.Errorf("--cluster-id: must be no more than 253 characters"))
	}
	if o.OwnerCacheTTL <= 0 {
		errs = append(errs, fmt.Errorf("--owner-cache-ttl must be positive"))
	}
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst <= 0 {
		errs = append(errs, fmt.Errorf("--kube-api-qps and --kube-api-burst must be positive"))
	}
	if o.targetRules == nil || o.namespaceSelector == nil {
		errs = append(errs, fmt.Errorf("the options were not completed"))
	}
	if o.MaxRequestsInFlight < 0 || o.MaxMutatingRequestsInFlight < 0 {
		errs = append(errs, fmt.Errorf("--max-requests-inflight and --max-mutating-requests-inflight must not be negative"))
	}
	if o.ShutdownDelay < 0 {
		errs = append(errs, fmt.Errorf("--shutdown-delay-duration must not be negative"))
	}
	if r := o.Recurrence; r.Cooldown < 0 || r.Backoff < 0 || r.BackoffMax < 0 || r.BlockAfter < 0 || r.FlapThreshold < 0 || r.FlapWindow < 0 {
		errs = append(errs, fmt.Errorf("--recurrence-* must not be negative"))
	}
	errs = append(errs, o.ServingCert.Validate(o.RecommendedOptions.SecureServing.ServerCert.CertKey.CertFile)...)
	if err := logsapi.ValidateAndApply(o.Logs, nil); err != nil {
		// Its errors name configuration fields ("format"), not flags.
		errs = append(errs, fmt.Errorf("logging flags: %w", err))
	}
	return utilerrors.NewAggregate(errs)
}

// Config builds the server configuration from the completed options. Without
// --tls-cert-file or --serving-ca-secret it serves the certificate in
// --cert-dir, generating a self-signed one there if there is none (in
// memory if --cert-dir is empty).
func (o *Options) Config() (*apiserver.Config, error) {
	if !o.ServingCert.Enabled() {
		if err := o.RecommendedOptions.SecureServing.MaybeDefaultWithSelfSignedCerts(
			"localhost", nil, []net.IP{netutils.ParseIPSloppy("127.0.0.1")}); err != nil {
			return nil, fmt.Errorf("creating self-signed certificates: %w", err)
		}
	}

	serverConfig := genericapiserver.NewRecommendedConfig(apiserver.Codecs)
	// The Kubernetes libraries this server is built from decide which
	// features and API behaviours it has.
	serverConfig.EffectiveVersion = compatibility.DefaultBuildEffectiveVersion()
	namer := openapinamer.NewDefinitionNamer(apiserver.Scheme)
	serverConfig.OpenAPIConfig = genericapiserver.DefaultOpenAPIConfig(generatedopenapi.GetOpenAPIDefinitions, namer)
	serverConfig.OpenAPIConfig.Info.Title = "signal-apiserver"
	serverConfig.OpenAPIConfig.Info.Version = version.Get().Version
	serverConfig.OpenAPIV3Config = genericapiserver.DefaultOpenAPIV3Config(generatedopenapi.GetOpenAPIDefinitions, namer)
	serverConfig.OpenAPIV3Config.Info.Title = "signal-apiserver"
	serverConfig.OpenAPIV3Config.Info.Version = version.Get().Version
	// kube-apiserver's own limit: room for an Alertmanager notification
	// of alertmanager.MaxAlerts alerts of about 3 KiB each. A larger body
	// is a mistake or an attack (413); a Signal this large is refused by
	// its validation bounds (422).
	serverConfig.MaxRequestBodyBytes = 3 << 20
	// With API Priority and Fairness off, k8s.io/apiserver's max-in-flight
	// filter enforces these.
	serverConfig.MaxRequestsInFlight = o.MaxRequestsInFlight
	serverConfig.MaxMutatingRequestsInFlight = o.MaxMutatingRequestsInFlight
	serverConfig.ShutdownDelayDuration = o.ShutdownDelay

	if err := o.RecommendedOptions.ApplyTo(serverConfig); err != nil {
		return nil, err
	}
	if err := o.ServingCert.ApplyTo(serverConfig); err != nil {
		return nil, err
	}
	if serverConfig.Authentication.Authenticator != nil {
		serverConfig.Authentication.Authenticator = healthOnlyAnonymous(cacheFrontProxyVerifications(serverConfig.Authentication))
	}
	// kube-apiserver's aggregator authenticates with its front-proxy
	// certificate: accept connections once that can be verified.
	if serving, rh := serverConfig.SecureServing, serverConfig.Authentication.RequestHeaderConfig; serving != nil && serving.Listener != nil && rh != nil {
		serving.Listener = gateOnCA(serving.Listener, rh.CAContentProvider)
	}

	clientConfig := rest.CopyConfig(serverConfig.ClientConfig)
	clientConfig.QPS = o.KubeAPIQPS
	clientConfig.Burst = o.KubeAPIBurst
	client, err := versioned.NewForConfig(clientConfig)
	if err != nil {
		return nil, fmt.Errorf("creating the RemediationRequest client: %w", err)
	}
	kubeClient, err := kubernetes.NewForConfig(clientConfig)
	if err != nil {
		return nil, fmt.Errorf("creating the Event client: %w", err)
	}
	metadataClient, err := metadata.NewForConfig(clientConfig)
	if err != nil {
		return nil, fmt.Errorf("creating the metadata client: %w", err)
	}

	extra := apiserver.ExtraConfig{
		Client: client,
		Keys: signalkey.Policy{
			ClusterID:              o.ClusterID,
			ClusterScopedNamespace: o.ClusterScopedNamespace,
		},
		AlertmanagerTargetRules: o.targetRules,
		Recurrence:              o.Recurrence,
		Events:                  kubeClient,
	}
	discoveryClient, err := discovery.NewDiscoveryClientForConfig(clientConfig)
	if err != nil {
		return nil, fmt.Errorf("creating the discovery client: %w", err)
	}
	extra.TargetKinds = targets.NewResolver(discoveryClient)
	if !o.namespaceSelector.Empty() {
		extra.ManagedNamespaces = registry.NewManagedNamespaces(metadataClient, o.namespaceSelector)
	}
	if o.ResolveOwners {
		extra.Keys.Owners = owner.NewResolver(metadataClient, owner.Options{
			TTL:       o.OwnerCacheTTL,
			CacheSize: ownerCacheSize,
			Timeout:   ownerLookupTimeout,
		})
	}
	return &apiserver.Config{GenericConfig: serverConfig, ExtraConfig: extra}, nil
}

// Run waits for kube-apiserver and for a serving certificate, then serves
// until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	klog.InfoS("Starting signal-apiserver", "version", version.Get())
	if o.RecommendedOptions.CoreAPI != nil {
		if err := o.waitForKubeAPIServer(ctx); err != nil {
			return err
		}
	}
	config, err := o.Config()
	if err != nil {
		return err
	}
	if err := waitForServingCert(ctx, config.GenericConfig); err != nil {
		return err
	}
	server, err := config.Complete().New()
	if err != nil {
		return err
	}
	return server.GenericAPIServer.PrepareRun().RunWithContext(ctx)
}

// NewCommand returns the signal-apiserver command.
func NewCommand(ctx context.Context) *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "signal-apiserver",
		Short: "Aggregated API server that deduplicates signals into RemediationRequests",
		RunE: func(_ *cobra.Command, _ []string) error {
			if err := o.Complete(); err != nil {
				return err
			}
			if err := o.Validate(); err != nil {
				return err
			}
			return o.Run(ctx)
		},
	}
	fs := cmd.Flags()
	namedFlagSets := o.Flags()
	for _, f := range namedFlagSets.FlagSets {
		fs.AddFlagSet(f)
	}
	cols, _, _ := term.TerminalSize(cmd.OutOrStdout())
	cliflag.SetUsageAndHelpFunc(cmd, namedFlagSets, cols)
	return cmd
}
