// Package servingcert gives signal-apiserver a serving certificate that
// kube-apiserver verifies, with nothing to install besides the server: a CA
// kept in a Secret, its bundle written into the server's own APIServices'
// spec.caBundle, and a short-lived serving certificate that each replica
// issues itself from that CA, in memory, and renews long before it expires.
//
// Rotation never fails a request. A renewed serving certificate is signed by
// a CA the APIService already trusts, and is served to new connections only.
// A new CA is added to the bundle first and signs nothing until it has been
// trusted for the activation delay; the CA it replaces stays in the bundle
// until it expires. docs/install.md has the argument and the procedure for
// replacing a CA at once.
package servingcert

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	corev1client "k8s.io/client-go/kubernetes/typed/core/v1"
	certutil "k8s.io/client-go/util/cert"
	"k8s.io/client-go/util/retry"
	"k8s.io/klog/v2"
	apiregistrationv1client "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset/typed/apiregistration/v1"
	"k8s.io/utils/clock"
)

// Keys of the CA Secret. The Secret is the CAs' only store: every replica
// reads it, and every change is an update preconditioned on its
// resourceVersion, so replicas that race agree on one outcome.
const (
	// CACertKey and CAKeyKey hold the CA that signs serving certificates.
	CACertKey = "ca.crt"
	CAKeyKey  = "ca.key"
	// NextCACertKey and NextCAKeyKey hold a CA that is trusted but signs
	// nothing yet: the CA that takes over once it has been trusted for the
	// activation delay.
	NextCACertKey = "next-ca.crt"
	NextCAKeyKey  = "next-ca.key"
	// PreviousCACertKey holds the CA that signed before the current one,
	// trusted until it expires so that certificates it signed stay valid
	// while replicas renew theirs.
	PreviousCACertKey = "previous-ca.crt"
)

// Options configure a Controller.
type Options struct {
	// SecretNamespace and SecretName name the Secret that holds the CAs. It
	// must exist: the server fills it but does not create it, so its RBAC
	// can name the one Secret it may read and update.
	SecretNamespace string
	SecretName      string
	// APIServices are the APIServices whose spec.caBundle the controller
	// keeps. Their Services name the serving certificate's DNS names
	// (<service>.<namespace>.svc, what kube-apiserver verifies).
	APIServices []string
	// Validity is the lifetime of a serving certificate; it is renewed
	// after two thirds of it.
	Validity time.Duration
	// CARotateBefore starts a CA rotation when the signing CA expires
	// within it.
	CARotateBefore time.Duration
	// CAActivationDelay is how long a new CA is trusted before it signs,
	// so that every kube-apiserver has seen it in the caBundle.
	CAActivationDelay time.Duration
	// SyncPeriod is how often the controller reads the Secret and the
	// APIServices.
	SyncPeriod time.Duration
}

// Controller keeps the CA Secret, the APIServices' caBundle and this
// replica's serving certificate. It is a dynamiccertificates provider: the
// generic server serves what CurrentCertKeyContent returns and is told when
// it changes.
type Controller struct {
	secrets     corev1client.SecretsGetter
	apiServices apiregistrationv1client.APIServicesGetter
	opts        Options
	clock       clock.Clock

	mu        sync.RWMutex
	certPEM   []byte
	keyPEM    []byte
	leaf      *x509.Certificate
	issuer    *x509.Certificate
	renewAt   time.Time
	listeners []dynamiccertificates.Listener
}

var (
	_ dynamiccertificates.CertKeyContentProvider = &Controller{}
	_ dynamiccertificates.ControllerRunner       = &Controller{}
)

// New returns a Controller; RunOnce or Run makes its first certificate.
func New(secrets corev1client.SecretsGetter, apiServices apiregistrationv1client.APIServicesGetter, opts Options) *Controller {
	return newWithClock(secrets, apiServices, opts, clock.RealClock{})
}

func newWithClock(secrets corev1client.SecretsGetter, apiServices apiregistrationv1client.APIServicesGetter, opts Options, clk clock.Clock) *Controller {
	return &Controller{secrets: secrets, apiServices: apiServices, opts: opts, clock: clk}
}

// Name names the provider in the generic server's logs.
func (c *Controller) Name() string {
	return "secret/" + c.opts.SecretNamespace + "/" + c.opts.SecretName
}

// CurrentCertKeyContent returns the serving certificate and key in PEM, or
// nothing before the first successful RunOnce.
func (c *Controller) CurrentCertKeyContent() ([]byte, []byte) {
	c.mu.RLock()
	defer c.mu.RUnlock()
	return c.certPEM, c.keyPEM
}

// AddListener registers a listener told of every new serving certificate.
func (c *Controller) AddListener(l dynamiccertificates.Listener) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.listeners = append(c.listeners, l)
}

// RunOnce syncs once: the Secret, the caBundles and the serving certificate.
func (c *Controller) RunOnce(ctx context.Context) error {
	return c.sync(ctx)
}

// Run syncs every SyncPeriod until ctx ends. workers is ignored: one sync
// at a time.
func (c *Controller) Run(ctx context.Context, _ int) {
	klog.InfoS("Starting the serving certificate controller", "secret", klog.KRef(c.opts.SecretNamespace, c.opts.SecretName), "apiServices", c.opts.APIServices)
	wait.JitterUntilWithContext(ctx, func(ctx context.Context) {
		if err := c.sync(ctx); err != nil {
			klog.ErrorS(err, "Syncing the serving certificate", "secret", klog.KRef(c.opts.SecretNamespace, c.opts.SecretName))
		}
	}, c.opts.SyncPeriod, 0.1, true)
}

// authorities are the CAs as the Secret holds them.
type authorities struct {
	secret   *corev1.Secret
	current  *authority
	next     *authority
	previous *x509.Certificate
}

// trusted returns the CAs the APIServices must trust: current, next, and
// previous while it is still valid.
func (a *authorities) trusted(now time.Time) []*x509.Certificate {
	certs := []*x509.Certificate{a.current.cert}
	if a.next != nil {
		certs = append(certs, a.next.cert)
	}
	if a.previous != nil && now.Before(a.previous.NotAfter) {
		certs = append(certs, a.previous)
	}
	return certs
}

func (c *Controller) sync(ctx context.Context) error {
	cas, err := c.syncSecret(ctx)
	if err != nil {
		return err
	}
	hosts, allTrustNext, err := c.syncCABundles(ctx, cas)
	if err != nil {
		return err
	}
	if cas.next != nil && allTrustNext && !c.clock.Now().Before(cas.next.cert.NotBefore.Add(c.opts.CAActivationDelay)) {
		if cas, err = c.promote(ctx, cas); err != nil {
			return err
		}
		// The set of trusted CAs is unchanged by a promotion, but the
		// previous CA may have expired meanwhile.
		if _, _, err = c.syncCABundles(ctx, cas); err != nil {
			return err
		}
	}
	return c.syncServingCert(cas.current, hosts)
}

// syncSecret reads the CAs, filling an empty Secret with a first CA and
// adding a next CA when the signing one nears its expiry.
func (c *Controller) syncSecret(ctx context.Context) (*authorities, error) {
	secrets := c.secrets.Secrets(c.opts.SecretNamespace)
	secret, err := secrets.Get(ctx, c.opts.SecretName, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		return nil, fmt.Errorf("secret %s/%s does not exist: the server fills it but does not create it (artifacts/deploy creates it empty)", c.opts.SecretNamespace, c.opts.SecretName)
	}
	if err != nil {
		return nil, fmt.Errorf("reading the CA secret: %w", err)
	}
	now := c.clock.Now()
	if len(secret.Data[CACertKey]) == 0 && len(secret.Data[CAKeyKey]) == 0 {
		ca, err := newAuthority(now)
		if err != nil {
			return nil, err
		}
		if secret, err = c.update(ctx, secret, func(data map[string][]byte) error {
			clear(data)
			return put(data, CACertKey, CAKeyKey, ca)
		}); err != nil {
			return nil, err
		}
		klog.InfoS("Created the serving CA", "secret", klog.KObj(secret), "notAfter", ca.cert.NotAfter)
	}
	cas, err := parseSecret(secret)
	if err != nil {
		return nil, err
	}
	if cas.next == nil && cas.current.cert.NotAfter.Sub(now) < c.opts.CARotateBefore {
		next, err := newAuthority(now)
		if err != nil {
			return nil, err
		}
		if secret, err = c.update(ctx, secret, func(data map[string][]byte) error {
			return put(data, NextCACertKey, NextCAKeyKey, next)
		}); err != nil {
			return nil, err
		}
		klog.InfoS("Added the next serving CA: trusted now, signing after the activation delay",
			"secret", klog.KObj(secret), "currentNotAfter", cas.current.cert.NotAfter, "activationDelay", c.opts.CAActivationDelay)
		if cas, err = parseSecret(secret); err != nil {
			return nil, err
		}
	}
	return cas, nil
}

// promote makes the next CA the signing one and keeps the signing one as
// previous.
func (c *Controller) promote(ctx context.Context, cas *authorities) (*authorities, error) {
	secret, err := c.update(ctx, cas.secret, func(data map[string][]byte) error {
		data[PreviousCACertKey] = data[CACertKey]
		data[CACertKey], data[CAKeyKey] = data[NextCACertKey], data[NextCAKeyKey]
		delete(data, NextCACertKey)
		delete(data, NextCAKeyKey)
		return nil
	})
	if err != nil {
		return nil, err
	}
	klog.InfoS("Promoted the next serving CA to signing", "secret", klog.KObj(secret))
	return parseSecret(secret)
}

// update writes the Secret changed by mutate, preconditioned on the
// resourceVersion it was read at: a replica that lost a race gets a
// conflict, and its next sync starts from what the winner wrote.
func (c *Controller) update(ctx context.Context, secret *corev1.Secret, mutate func(map[string][]byte) error) (*corev1.Secret, error) {
	secret = secret.DeepCopy()
	if secret.Data == nil {
		secret.Data = map[string][]byte{}
	}
	if err := mutate(secret.Data); err != nil {
		return nil, err
	}
	updated, err := c.secrets.Secrets(secret.Namespace).Update(ctx, secret, metav1.UpdateOptions{})
	if err != nil {
		return nil, fmt.Errorf("updating the CA secret: %w", err)
	}
	return updated, nil
}

func put(data map[string][]byte, certKey, keyKey string, a *authority) error {
	certPEM, keyPEM, err := a.pem()
	if err != nil {
		return err
	}
	data[certKey], data[keyKey] = certPEM, keyPEM
	return nil
}

func parseSecret(secret *corev1.Secret) (*authorities, error) {
	cas := &authorities{secret: secret}
	var err error
	if cas.current, err = parseAuthority(secret.Data[CACertKey], secret.Data[CAKeyKey]); err != nil {
		return nil, fmt.Errorf("secret %s/%s: %s and %s: %w", secret.Namespace, secret.Name, CACertKey, CAKeyKey, err)
	}
	if len(secret.Data[NextCACertKey]) > 0 {
		if cas.next, err = parseAuthority(secret.Data[NextCACertKey], secret.Data[NextCAKeyKey]); err != nil {
			return nil, fmt.Errorf("secret %s/%s: %s and %s: %w", secret.Namespace, secret.Name, NextCACertKey, NextCAKeyKey, err)
		}
	}
	if len(secret.Data[PreviousCACertKey]) > 0 {
		previous, err := parseAuthority(secret.Data[PreviousCACertKey], nil)
		if err != nil {
			return nil, fmt.Errorf("secret %s/%s: %s: %w", secret.Namespace, secret.Name, PreviousCACertKey, err)
		}
		cas.previous = previous.cert
	}
	return cas, nil
}

// syncCABundles makes every APIService trust exactly the trusted CAs. It
// returns the DNS names of the APIServices' Services and whether every
// APIService trusted the next CA before this sync (the condition, with the
// activation delay, for it to start signing).
func (c *Controller) syncCABundles(ctx context.Context, cas *authorities) (hosts []string, allTrustNext bool, err error) {
	trusted := cas.trusted(c.clock.Now())
	bundle, err := encodeBundle(trusted...)
	if err != nil {
		return nil, false, err
	}
	allTrustNext = cas.next != nil
	for _, name := range c.opts.APIServices {
		err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
			svc, err := c.apiServices.APIServices().Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if svc.Spec.Service == nil {
				return fmt.Errorf("APIService %s has no service: it is served by kube-apiserver itself", name)
			}
			if host := svc.Spec.Service.Name + "." + svc.Spec.Service.Namespace + ".svc"; !slices.Contains(hosts, host) {
				hosts = append(hosts, host)
			}
			if cas.next != nil && !bundleContains(svc.Spec.CABundle, cas.next.cert) {
				allTrustNext = false
			}
			if sameCertificates(svc.Spec.CABundle, trusted) && !svc.Spec.InsecureSkipTLSVerify {
				return nil
			}
			// Never write a bundle from a Secret another replica has changed
			// since: it could drop a CA that replica just added.
			latest, err := c.secrets.Secrets(cas.secret.Namespace).Get(ctx, cas.secret.Name, metav1.GetOptions{})
			if err != nil {
				return err
			}
			if latest.ResourceVersion != cas.secret.ResourceVersion {
				return errSecretChanged
			}
			svc.Spec.CABundle = bundle
			// A caBundle is refused beside insecureSkipTLSVerify, which
			// this controller exists to replace.
			svc.Spec.InsecureSkipTLSVerify = false
			if _, err := c.apiServices.APIServices().Update(ctx, svc, metav1.UpdateOptions{}); err != nil {
				return err
			}
			klog.InfoS("Wrote the serving CA bundle into the APIService", "apiService", name, "certificates", len(trusted))
			return nil
		})
		if err != nil {
			return nil, false, fmt.Errorf("keeping the caBundle of APIService %s: %w", name, err)
		}
	}
	if len(hosts) == 0 {
		return nil, false, errors.New("no APIService to serve")
	}
	slices.Sort(hosts)
	return hosts, allTrustNext, nil
}

// errSecretChanged ends a sync that read the CA Secret before another
// replica changed it; the next sync starts from the new Secret.
var errSecretChanged = errors.New("the CA secret changed during the sync")

func bundleContains(bundle []byte, c *x509.Certificate) bool {
	if len(bundle) == 0 {
		return false
	}
	certs, err := certutil.ParseCertsPEM(bundle)
	return err == nil && containsCertificate(certs, c)
}

// syncServingCert issues a new serving certificate when there is none, when
// the signing CA or the hosts changed, or when two thirds of its life have
// passed, and tells the listeners.
func (c *Controller) syncServingCert(ca *authority, hosts []string) error {
	now := c.clock.Now()
	c.mu.RLock()
	fresh := c.leaf != nil && c.issuer.Equal(ca.cert) && slices.Equal(c.leaf.DNSNames, hosts) && now.Before(c.renewAt)
	c.mu.RUnlock()
	if fresh {
		return nil
	}
	certPEM, keyPEM, leaf, err := ca.issue(hosts, now, c.opts.Validity)
	if err != nil {
		return err
	}
	c.mu.Lock()
	c.certPEM, c.keyPEM, c.leaf, c.issuer = certPEM, keyPEM, leaf, ca.cert
	c.renewAt = now.Add(leaf.NotAfter.Sub(now) * 2 / 3)
	listeners := slices.Clone(c.listeners)
	c.mu.Unlock()
	klog.InfoS("Issued a serving certificate", "hosts", hosts, "notAfter", leaf.NotAfter, "renewAt", c.renewAt, "issuer", ca.cert.Subject.CommonName)
	for _, l := range listeners {
		l.Enqueue()
	}
	return nil
}
