// Package eventsource turns command-line flags into a running
// signal-event-source.
package eventsource

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/spf13/cobra"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/server/healthz"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
	cliflag "k8s.io/component-base/cli/flag"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
	"k8s.io/component-base/metrics/legacyregistry"
	_ "k8s.io/component-base/metrics/prometheus/clientgo"  // client-go's request metrics
	_ "k8s.io/component-base/metrics/prometheus/workqueue" // the queue's depth, latency and retries
	"k8s.io/component-base/term"
	"k8s.io/klog/v2"

	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/eventsource"
	"github.com/signal-apiserver/signal-apiserver/pkg/version"
)

// Options are the flags of signal-event-source.
type Options struct {
	Logs *logs.Options

	// Kubeconfig is the kubeconfig file; empty means in-cluster.
	Kubeconfig   string
	KubeAPIQPS   float32
	KubeAPIBurst int

	Namespaces        []string
	ExcludeNamespaces []string
	Reasons           []string
	ExcludeReasons    []string
	MaxEventAge       time.Duration

	PerObjectQPS   float64
	PerObjectBurst int
	Workers        int

	// BindAddress serves /healthz, /livez, /readyz and /metrics.
	BindAddress string
}

// NewOptions returns the defaults.
func NewOptions() *Options {
	return &Options{
		Logs:           logs.NewOptions(),
		KubeAPIQPS:     50,
		KubeAPIBurst:   100,
		MaxEventAge:    10 * time.Minute,
		PerObjectQPS:   0.1,
		PerObjectBurst: 5,
		Workers:        4,
		BindAddress:    ":8080",
	}
}

// Flags returns the flags, in named sections for --help.
func (o *Options) Flags() cliflag.NamedFlagSets {
	var fss cliflag.NamedFlagSets
	fs := fss.FlagSet("kubernetes")
	fs.StringVar(&o.Kubeconfig, "kubeconfig", o.Kubeconfig, "Kubeconfig file; empty means the in-cluster service account.")
	fs.Float32Var(&o.KubeAPIQPS, "kube-api-qps", o.KubeAPIQPS, "Queries per second to kube-apiserver.")
	fs.IntVar(&o.KubeAPIBurst, "kube-api-burst", o.KubeAPIBurst, "Burst of queries to kube-apiserver.")

	fs = fss.FlagSet("events")
	fs.StringSliceVar(&o.Namespaces, "namespaces", o.Namespaces, "Only Events in these namespaces; empty means all.")
	fs.StringSliceVar(&o.ExcludeNamespaces, "exclude-namespaces", o.ExcludeNamespaces, "Never Events in these namespaces.")
	fs.StringSliceVar(&o.Reasons, "reasons", o.Reasons, "Only Events with these reasons; empty means all.")
	fs.StringSliceVar(&o.ExcludeReasons, "exclude-reasons", o.ExcludeReasons, "Never Events with these reasons.")
	fs.DurationVar(&o.MaxEventAge, "max-event-age", o.MaxEventAge,
		"Ignore an Event whose latest occurrence is older than this when it is seen, e.g. the stored Events a restart lists again; 0 never does.")
	fs.Float64Var(&o.PerObjectQPS, "per-object-qps", o.PerObjectQPS,
		"Signals per second about one involved object; excess Event versions wait in the queue, and a later version of an Event replaces a waiting one.")
	fs.IntVar(&o.PerObjectBurst, "per-object-burst", o.PerObjectBurst, "Burst of Signals about one involved object.")
	fs.IntVar(&o.Workers, "workers", o.Workers, "Concurrent submissions.")

	fs = fss.FlagSet("serving")
	fs.StringVar(&o.BindAddress, "bind-address", o.BindAddress, "Address for /healthz, /livez, /readyz and /metrics (plain HTTP).")

	logsapi.AddFlags(o.Logs, fss.FlagSet("logs"))
	return fss
}

// Validate reports every invalid flag.
func (o *Options) Validate() error {
	var errs []error
	if o.KubeAPIQPS <= 0 || o.KubeAPIBurst <= 0 {
		errs = append(errs, errors.New("--kube-api-qps and --kube-api-burst must be positive"))
	}
	if o.PerObjectQPS <= 0 || o.PerObjectBurst <= 0 {
		errs = append(errs, errors.New("--per-object-qps and --per-object-burst must be positive"))
	}
	if o.MaxEventAge < 0 {
		errs = append(errs, errors.New("--max-event-age must not be negative"))
	}
	if o.Workers <= 0 {
		errs = append(errs, errors.New("--workers must be positive"))
	}
	if _, _, err := net.SplitHostPort(o.BindAddress); err != nil {
		errs = append(errs, fmt.Errorf("--bind-address: %w", err))
	}
	if err := logsapi.ValidateAndApply(o.Logs, nil); err != nil {
		// Its errors name configuration fields ("format"), not flags.
		errs = append(errs, fmt.Errorf("logging flags: %w", err))
	}
	return utilerrors.NewAggregate(errs)
}

// Run watches Events and serves health and metrics until ctx ends.
func (o *Options) Run(ctx context.Context) error {
	klog.InfoS("Starting signal-event-source", "version", version.Get())
	restConfig, err := clientcmd.BuildConfigFromFlags("", o.Kubeconfig)
	if err != nil {
		return fmt.Errorf("loading the kubeconfig: %w", err)
	}
	restConfig.QPS, restConfig.Burst = o.KubeAPIQPS, o.KubeAPIBurst
	restConfig.UserAgent = "signal-event-source/" + version.Get().Version
	kube, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	signals, err := versioned.NewForConfig(restConfig)
	if err != nil {
		return err
	}
	if err := eventsource.RegisterMetrics(legacyregistry.Register); err != nil {
		return fmt.Errorf("registering metrics: %w", err)
	}
	source, err := eventsource.New(eventsource.Config{
		Kube:    kube,
		Signals: signals,
		Filter: eventsource.Filter{
			Namespaces:        sets.New(o.Namespaces...),
			ExcludeNamespaces: sets.New(o.ExcludeNamespaces...),
			Reasons:           sets.New(o.Reasons...),
			ExcludeReasons:    sets.New(o.ExcludeReasons...),
			MaxAge:            o.MaxEventAge,
		},
		PerObjectQPS:   o.PerObjectQPS,
		PerObjectBurst: o.PerObjectBurst,
		Workers:        o.Workers,
		RetryBaseDelay: 500 * time.Millisecond,
		RetryMaxDelay:  5 * time.Minute,
	})
	if err != nil {
		return err
	}

	mux := http.NewServeMux()
	healthz.InstallHandler(mux)
	healthz.InstallLivezHandler(mux)
	healthz.InstallReadyzHandler(mux, healthz.NamedCheck("events-informer-synced", func(*http.Request) error {
		if !source.HasSynced() {
			return errors.New("the Events informer has not synced yet")
		}
		return nil
	}))
	mux.Handle("/metrics", legacyregistry.Handler())
	listener, err := net.Listen("tcp", o.BindAddress)
	if err != nil {
		return err
	}
	server := &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	serveErr := make(chan error, 1)
	go func() { serveErr <- server.Serve(listener) }()
	klog.FromContext(ctx).Info("Serving health and metrics", "address", listener.Addr().String())

	runErr := source.Run(ctx)
	shutdownCtx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	if err := server.Shutdown(shutdownCtx); err != nil {
		return errors.Join(runErr, err)
	}
	if err := <-serveErr; !errors.Is(err, http.ErrServerClosed) {
		return errors.Join(runErr, err)
	}
	return runErr
}

// NewCommand returns the signal-event-source command.
func NewCommand(ctx context.Context) *cobra.Command {
	o := NewOptions()
	cmd := &cobra.Command{
		Use:   "signal-event-source",
		Short: "Submits Kubernetes Warning Events as Signals",
		RunE: func(_ *cobra.Command, _ []string) error {
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
