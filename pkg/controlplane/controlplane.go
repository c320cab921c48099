// Package controlplane runs a real etcd and kube-apiserver (through envtest)
// set up for API aggregation, plus signal-apiserver processes registered with
// it, each optionally behind a fault-injecting Proxy. The Ginkgo suites under
// test/ and `make run` (hack/local-up) use it.
//
// Everything a run creates lives under Options.StateDir: certificates, etcd
// data, kubeconfigs and one log file per process. Start wipes what an earlier
// run left there, so each run begins with a fresh cluster.
//
// envtest logs through controller-runtime's logger; callers that want to see
// it call sigs.k8s.io/controller-runtime/pkg/log.SetLogger.
package controlplane

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"time"

	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclientset "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

// ServerNamespace is the namespace signal-apiserver runs in and the namespace
// of its ServiceAccount, Service and cluster-scoped RemediationRequests.
const ServerNamespace = "signal-apiserver"

// ServerUser is the user signal-apiserver authenticates to kube-apiserver as:
// the name RBAC gives its ServiceAccount, so artifacts/deploy/rbac.yaml
// applies to it unchanged.
const ServerUser = "system:serviceaccount:" + ServerNamespace + ":signal-apiserver"

// ServerGroups are the groups of ServerUser, as a ServiceAccount token would
// carry them.
var ServerGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + ServerNamespace, "system:authenticated"}

// authenticationConfig lets anonymous requests reach the health endpoints
// (envtest polls /healthz without credentials) and nothing else.
const authenticationConfig = `apiVersion: apiserver.config.k8s.io/v1
kind: AuthenticationConfiguration
anonymous:
  enabled: true
  conditions:
  - path: /livez
  - path: /readyz
  - path: /healthz
`

// startTimeout bounds each of etcd's and kube-apiserver's start-up.
const startTimeout = 60 * time.Second

// Options configures Start.
type Options struct {
	// BinDir holds kube-apiserver, etcd and kubectl, as built by
	// hack/build-control-plane.sh. Empty means $KUBEBUILDER_ASSETS.
	BinDir string
	// StateDir receives certificates, etcd data, kubeconfigs and logs. It is
	// created if missing; Start removes what an earlier run left in it.
	StateDir string
	// ServerBinary is the built signal-apiserver. Only StartServer needs it.
	ServerBinary string
	// RepoRoot is the repository's root, where artifacts/ is.
	RepoRoot string
	// WithoutCRDs leaves the CRDs of artifacts/crd out until InstallCRDs.
	WithoutCRDs bool
	// EndpointIP, if set, is where RegisterAPIServiceEndpoints says the
	// servers are, and kube-apiserver's aggregator sends each request to a
	// random endpoint of the APIService's Service, as it does with
	// --enable-aggregator-routing; RegisterAPIService does not work then.
	// EndpointSlices refuse loopback addresses, so it must be an address of
	// a network namespace the caller made for the run (pkg/bench/netns),
	// never one of the machine's own interfaces.
	EndpointIP net.IP
}

// ControlPlane is a running etcd and kube-apiserver with the RemediationRequest
// CRD and signal-apiserver's RBAC installed, and the signal-apiserver
// processes started on it.
type ControlPlane struct {
	opts             Options
	env              *envtest.Environment
	pki              *pki
	admin            *rest.Config
	adminKubeconfig  string
	serverKubeconfig string
	// serverConfig reaches kube-apiserver as ServerUser; proxies forward
	// with it.
	serverConfig *rest.Config
	logs         []*os.File

	mu      sync.Mutex
	servers []*Server
	proxies []*Proxy
	stopped bool
}

// Start starts etcd and kube-apiserver, configured for API aggregation,
// installs the CRDs from artifacts/crd and the Namespace, ServiceAccount,
// RBAC and (empty) serving CA Secret from artifacts/deploy, and writes kubeconfigs for an admin and for
// signal-apiserver. ctx bounds the start-up only.
func Start(ctx context.Context, o Options) (_ *ControlPlane, retErr error) {
	o, err := o.complete()
	if err != nil {
		return nil, err
	}
	for _, dir := range []string{"etcd", "kube-apiserver", "pki"} {
		// Stale certificates would also break envtest: it keeps an existing
		// apiserver.crt but then has no CA for it.
		if err := os.RemoveAll(filepath.Join(o.StateDir, dir)); err != nil {
			return nil, err
		}
	}
	if o.EndpointIP != nil && (o.EndpointIP.To4() == nil || o.EndpointIP.IsLoopback()) {
		return nil, fmt.Errorf("controlplane: EndpointIP %v is not an IPv4 address outside the loopback range", o.EndpointIP)
	}
	if err := os.MkdirAll(filepath.Join(o.StateDir, "etcd"), 0o700); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(o.StateDir, "kube-apiserver"), 0o700); err != nil {
		return nil, err
	}

	c := &ControlPlane{opts: o}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, c.Stop())
		}
	}()
	if c.pki, err = newPKI(filepath.Join(o.StateDir, "pki")); err != nil {
		return nil, fmt.Errorf("generating certificates: %w", err)
	}
	etcdLog, err := c.createLog("etcd.log")
	if err != nil {
		return nil, err
	}
	apiserverLog, err := c.createLog("kube-apiserver.log")
	if err != nil {
		return nil, err
	}

	if err := os.WriteFile(c.pki.path("authentication-config.yaml"), []byte(authenticationConfig), 0o600); err != nil {
		return nil, err
	}
	c.env = &envtest.Environment{
		ControlPlane: envtest.ControlPlane{
			Etcd: &envtest.Etcd{
				Path:    filepath.Join(o.BinDir, "etcd"),
				DataDir: filepath.Join(o.StateDir, "etcd"),
				Out:     etcdLog,
				Err:     etcdLog,
			},
			APIServer: &envtest.APIServer{
				Path:    filepath.Join(o.BinDir, "kube-apiserver"),
				CertDir: filepath.Join(o.StateDir, "kube-apiserver"),
				Out:     apiserverLog,
				Err:     apiserverLog,
			},
			KubectlPath: filepath.Join(o.BinDir, "kubectl"),
		},
		ErrorIfCRDPathMissing:    true,
		ControlPlaneStartTimeout: startTimeout,
		ControlPlaneStopTimeout:  startTimeout,
	}
	if !o.WithoutCRDs {
		c.env.CRDDirectoryPaths = []string{c.crdDir()}
	}
	c.env.ControlPlane.GetAPIServer().Configure().
		// Aggregation: kube-apiserver proxies to signal-apiserver as
		// front-proxy-client and names the user in these headers.
		Set("requestheader-client-ca-file", c.pki.path("front-proxy-ca.crt")).
		Set("requestheader-allowed-names", frontProxyClientName).
		Set("requestheader-username-headers", "X-Remote-User").
		Set("requestheader-group-headers", "X-Remote-Group").
		Set("requestheader-extra-headers-prefix", "X-Remote-Extra-").
		Set("requestheader-uid-headers", "X-Remote-Uid").
		Set("proxy-client-cert-file", c.pki.path("front-proxy-client.crt")).
		Set("proxy-client-key-file", c.pki.path("front-proxy-client.key")).
		// Keep everything on loopback; with a loopback advertise address the
		// endpoint reconciler must be off.
		Set("advertise-address", "127.0.0.1").
		Set("endpoint-reconciler-type", "none").
		// Anonymous requests only for health checks, as hardened clusters
		// do: anything else unauthenticated gets 401.
		Set("authentication-config", c.pki.path("authentication-config.yaml"))
	if o.EndpointIP != nil {
		c.env.ControlPlane.GetAPIServer().Configure().Set("enable-aggregator-routing", "true")
	}

	if c.admin, err = c.env.Start(); err != nil {
		return nil, fmt.Errorf("starting etcd and kube-apiserver (logs in %s): %w", o.StateDir, err)
	}
	if err := waitForCRDsEstablished(ctx, c.admin, c.env.CRDs); err != nil {
		return nil, err
	}
	c.adminKubeconfig = filepath.Join(o.StateDir, "admin.kubeconfig")
	if err := os.WriteFile(c.adminKubeconfig, c.env.KubeConfig, 0o600); err != nil {
		return nil, err
	}
	if err := c.applyFiles(ctx, filepath.Join(o.RepoRoot, "artifacts", "deploy"),
		"namespace.yaml", "serviceaccount.yaml", "rbac.yaml", "policy.yaml", "servingcert.yaml"); err != nil {
		return nil, err
	}

	server, err := c.env.AddUser(envtest.User{Name: ServerUser, Groups: ServerGroups}, nil)
	if err != nil {
		return nil, fmt.Errorf("adding user %s: %w", ServerUser, err)
	}
	c.serverConfig = server.Config()
	kubeconfig, err := server.KubeConfig()
	if err != nil {
		return nil, err
	}
	c.serverKubeconfig = filepath.Join(o.StateDir, "signal-apiserver.kubeconfig")
	if err := os.WriteFile(c.serverKubeconfig, kubeconfig, 0o600); err != nil {
		return nil, err
	}
	return c, nil
}

func (o Options) complete() (Options, error) {
	if o.BinDir == "" {
		o.BinDir = os.Getenv("KUBEBUILDER_ASSETS")
	}
	if err := checkBinDir(o.BinDir); err != nil {
		return o, err
	}
	if o.StateDir == "" {
		return o, errors.New("controlplane: Options.StateDir is required")
	}
	if o.RepoRoot == "" {
		return o, errors.New("controlplane: Options.RepoRoot is required")
	}
	var err error
	for _, p := range []*string{&o.BinDir, &o.StateDir, &o.RepoRoot} {
		if *p, err = filepath.Abs(*p); err != nil {
			return o, err
		}
	}
	if o.ServerBinary != "" {
		if o.ServerBinary, err = filepath.Abs(o.ServerBinary); err != nil {
			return o, err
		}
	}
	return o, os.MkdirAll(o.StateDir, 0o700)
}

func (c *ControlPlane) createLog(name string) (*os.File, error) {
	f, err := os.Create(filepath.Join(c.opts.StateDir, name))
	if err != nil {
		return nil, err
	}
	c.logs = append(c.logs, f)
	return f, nil
}

func waitForCRDsEstablished(ctx context.Context, cfg *rest.Config, crds []*apiextensionsv1.CustomResourceDefinition) error {
	client, err := apiextensionsclientset.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, crd := range crds {
		err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
			got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			return apihelpers.IsCRDConditionTrue(got, apiextensionsv1.Established), nil
		})
		if err != nil {
			return fmt.Errorf("waiting for CRD %s to be Established: %w", crd.Name, err)
		}
	}
	return nil
}

// RESTConfig returns a config for kube-apiserver as an admin (system:masters).
func (c *ControlPlane) RESTConfig() *rest.Config { return rest.CopyConfig(c.admin) }

// KubeconfigPath returns the admin's kubeconfig file, for kubectl.
func (c *ControlPlane) KubeconfigPath() string { return c.adminKubeconfig }

// KubectlPath returns the kubectl that matches kube-apiserver's version.
func (c *ControlPlane) KubectlPath() string { return c.env.ControlPlane.KubectlPath }

// StateDir returns the folder with certificates, etcd data, kubeconfigs and logs.
func (c *ControlPlane) StateDir() string { return c.opts.StateDir }

// AddUser returns a config for kube-apiserver as the given user, who
// authenticates with a client certificate and has no permissions beyond what
// RBAC grants name or groups.
func (c *ControlPlane) AddUser(name string, groups []string) (*rest.Config, error) {
	u, err := c.env.AddUser(envtest.User{Name: name, Groups: groups}, &rest.Config{QPS: 1000, Burst: 2000})
	if err != nil {
		return nil, err
	}
	return u.Config(), nil
}

// Stop closes the proxies (releasing what they hold), stops the
// signal-apiserver processes, then kube-apiserver and etcd. It leaves
// StateDir in place; calling it again does nothing.
func (c *ControlPlane) Stop() error {
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil
	}
	c.stopped = true
	servers, proxies := c.servers, c.proxies
	c.mu.Unlock()

	var errs []error
	for _, p := range proxies {
		if err := p.Close(); err != nil {
			errs = append(errs, fmt.Errorf("closing proxy %s: %w", p.Name, err))
		}
	}
	for i := len(servers) - 1; i >= 0; i-- {
		if err := servers[i].Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping %s: %w", servers[i].Name, err))
		}
	}
	if c.env != nil {
		if err := c.env.Stop(); err != nil {
			errs = append(errs, fmt.Errorf("stopping kube-apiserver and etcd: %w", err))
		}
	}
	for _, f := range c.logs {
		if err := f.Close(); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// checkBinDir fails unless dir holds the three control-plane binaries.
func checkBinDir(dir string) error {
	if dir == "" {
		return errors.New("controlplane: no folder with kube-apiserver, etcd and kubectl: set Options.BinDir or KUBEBUILDER_ASSETS (run `make control-plane`)")
	}
	for _, name := range []string{"kube-apiserver", "etcd", "kubectl"} {
		p := filepath.Join(dir, name)
		if st, err := os.Stat(p); err != nil || st.IsDir() || st.Mode()&0o111 == 0 {
			return fmt.Errorf("controlplane: %s is missing or not executable: run `make control-plane` (hack/build-control-plane.sh)", p)
		}
	}
	return nil
}
