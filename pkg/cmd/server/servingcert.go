package server

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/wait"
	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"
	aggregatorclientset "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/servingcert"
)

// ServingCertOptions are the flags of the serving certificate the server
// keeps itself (--serving-ca-secret); without that flag the generic
// --tls-cert-file or --cert-dir flags apply.
type ServingCertOptions struct {
	// CASecret is namespace/name of the CA Secret; empty turns the
	// controller off.
	CASecret string
	// Validity is the lifetime of a serving certificate
	// (--serving-cert-validity).
	Validity time.Duration
	// CARotateBefore starts a CA rotation when the CA expires within it
	// (--serving-ca-rotate-before).
	CARotateBefore time.Duration
	// CAActivationDelay is how long a new CA is trusted before it signs
	// (--serving-ca-activation-delay).
	CAActivationDelay time.Duration
	// SyncPeriod is how often the Secret and APIService are read
	// (--serving-ca-sync-period).
	SyncPeriod time.Duration
}

// NewServingCertOptions returns the defaults: off; when on, day-long
// serving certificates from a ten-year CA rotated in its last year.
func NewServingCertOptions() *ServingCertOptions {
	return &ServingCertOptions{
		Validity:          24 * time.Hour,
		CARotateBefore:    365 * 24 * time.Hour,
		CAActivationDelay: 10 * time.Minute,
		SyncPeriod:        time.Minute,
	}
}

// AddFlags adds the flags to fs.
func (o *ServingCertOptions) AddFlags(fs *pflag.FlagSet) {
	fs.StringVar(&o.CASecret, "serving-ca-secret", o.CASecret,
		"namespace/name of a Secret (which must exist, possibly empty) where the server keeps a CA. The server writes the CA bundle into the caBundle of its APIService and serves a certificate it issues itself from that CA, renewed without a restart, so kube-apiserver verifies it with nothing else to install. Replaces --tls-cert-file and --cert-dir. See docs/install.md.")
	fs.DurationVar(&o.Validity, "serving-cert-validity", o.Validity,
		"With --serving-ca-secret: lifetime of a serving certificate; each replica renews its own after two thirds of it.")
	fs.DurationVar(&o.CARotateBefore, "serving-ca-rotate-before", o.CARotateBefore,
		"With --serving-ca-secret: start a CA rotation when the CA (valid for ten years) expires within this long.")
	fs.DurationVar(&o.CAActivationDelay, "serving-ca-activation-delay", o.CAActivationDelay,
		"With --serving-ca-secret: how long a new CA is trusted in the APIService's caBundle before it signs serving certificates.")
	fs.DurationVar(&o.SyncPeriod, "serving-ca-sync-period", o.SyncPeriod,
		"With --serving-ca-secret: how often the server reads the CA Secret and its APIService.")
}

// Enabled reports whether the server keeps its own serving certificate.
func (o *ServingCertOptions) Enabled() bool { return o.CASecret != "" }

// Validate reports invalid flags; tlsCertFile is --tls-cert-file.
func (o *ServingCertOptions) Validate(tlsCertFile string) []error {
	if !o.Enabled() {
		return nil
	}
	var errs []error
	namespace, name, ok := strings.Cut(o.CASecret, "/")
	if !ok {
		errs = append(errs, fmt.Errorf("--serving-ca-secret: want namespace/name, got %q", o.CASecret))
	} else {
		for _, msg := range validation.IsDNS1123Label(namespace) {
			errs = append(errs, fmt.Errorf("--serving-ca-secret: namespace: %s", msg))
		}
		for _, msg := range validation.IsDNS1123Subdomain(name) {
			errs = append(errs, fmt.Errorf("--serving-ca-secret: name: %s", msg))
		}
	}
	if tlsCertFile != "" {
		errs = append(errs, fmt.Errorf("--serving-ca-secret and --tls-cert-file exclude each other"))
	}
	if o.Validity < time.Minute {
		errs = append(errs, fmt.Errorf("--serving-cert-validity must be at least 1m"))
	}
	if o.CARotateBefore <= 0 || o.CAActivationDelay <= 0 || o.SyncPeriod <= 0 {
		errs = append(errs, fmt.Errorf("--serving-ca-rotate-before, --serving-ca-activation-delay and --serving-ca-sync-period must be positive"))
	}
	return errs
}

// apiServiceNames are the APIServices the server is registered under.
var apiServiceNames = []string{signalsv1.SchemeGroupVersion.Version + "." + signalsv1.SchemeGroupVersion.Group}

// ApplyTo makes the controller the server's serving certificate provider.
func (o *ServingCertOptions) ApplyTo(config *genericapiserver.RecommendedConfig) error {
	if !o.Enabled() || config.SecureServing == nil {
		return nil
	}
	namespace, name, _ := strings.Cut(o.CASecret, "/")
	core, err := kubernetes.NewForConfig(config.ClientConfig)
	if err != nil {
		return err
	}
	aggregator, err := aggregatorclientset.NewForConfig(config.ClientConfig)
	if err != nil {
		return err
	}
	config.SecureServing.Cert = servingcert.New(core.CoreV1(), aggregator.ApiregistrationV1(), servingcert.Options{
		SecretNamespace:   namespace,
		SecretName:        name,
		APIServices:       apiServiceNames,
		Validity:          o.Validity,
		CARotateBefore:    o.CARotateBefore,
		CAActivationDelay: o.CAActivationDelay,
		SyncPeriod:        o.SyncPeriod,
	})
	return nil
}

// waitForServingCert syncs the controller, if config has one, until it has
// issued a certificate: a server without one would accept connections it
// cannot complete.
func waitForServingCert(ctx context.Context, config *genericapiserver.RecommendedConfig) error {
	if config.SecureServing == nil {
		return nil
	}
	controller, ok := config.SecureServing.Cert.(*servingcert.Controller)
	if !ok {
		return nil
	}
	return wait.PollUntilContextCancel(ctx, 2*time.Second, true, func(ctx context.Context) (bool, error) {
		if err := controller.RunOnce(ctx); err != nil {
			klog.ErrorS(err, "Waiting for a serving certificate", "secret", controller.Name())
			return false, nil
		}
		return true, nil
	})
}
