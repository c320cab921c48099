package controlplane

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func (c *ControlPlane) crdDir() string { return filepath.Join(c.opts.RepoRoot, "artifacts", "crd") }

// InstallCRDs installs the CRDs of artifacts/crd, for a control plane started
// WithoutCRDs, and waits until they are Established.
func (c *ControlPlane) InstallCRDs(ctx context.Context) error {
	crds, err := envtest.InstallCRDs(c.admin, envtest.CRDInstallOptions{
		Paths:              []string{c.crdDir()},
		ErrorIfPathMissing: true,
	})
	if err != nil {
		return err
	}
	return waitForCRDsEstablished(ctx, c.admin, crds)
}

// StopAPIServer stops kube-apiserver (SIGTERM, as a rolling restart does) and
// leaves etcd and the signal-apiservers running.
func (c *ControlPlane) StopAPIServer() error {
	return c.env.ControlPlane.APIServer.Stop()
}

// StartAPIServer starts kube-apiserver again after StopAPIServer, on the same
// port, certificates and etcd, and waits for its /healthz.
func (c *ControlPlane) StartAPIServer() error {
	return c.env.ControlPlane.APIServer.Start()
}

// EtcdPID returns the process id of this control plane's etcd, found by its
// data directory on its command line (envtest does not export it), so a test
// can pause it with SIGSTOP.
func (c *ControlPlane) EtcdPID() (int, error) {
	dataDir := []byte(filepath.Join(c.opts.StateDir, "etcd"))
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := bytes.Split(cmdline, []byte{0})
		if len(args) == 0 || filepath.Base(string(args[0])) != "etcd" {
			continue
		}
		for _, a := range args {
			if bytes.HasSuffix(a, dataDir) {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("controlplane: no etcd process with data directory %s", dataDir)
}

// ServerReadyz asks s's /readyz once, on a new connection, and returns the
// HTTP status code and body. An error means no answer at all.
func (c *ControlPlane) ServerReadyz(ctx context.Context, s *Server) (int, string, error) {
	tlsConfig, err := rest.TLSConfigFor(c.FrontProxyClientConfig(s, "system:admin", []string{"system:masters"}))
	if err != nil {
		return 0, "", err
	}
	client := &http.Client{
		Transport: transport.NewAuthProxyRoundTripper("system:admin", "", []string{"system:masters"}, nil,
			&http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}),
		Timeout: 5 * time.Second,
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d/readyz?verbose", s.Port), nil)
	if err != nil {
		return 0, "", err
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	var body bytes.Buffer
	_, _ = body.ReadFrom(resp.Body)
	return resp.StatusCode, body.String(), nil
}
