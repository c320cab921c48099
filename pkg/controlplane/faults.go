package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
	"sigs.k8s.io/controller-runtime/pkg/envtest"
)

func (c *ControlPlane) crdDir() string { return filepath.Join(c.opts.RepoRoot, "artifacts", "crd") }

// InstallCRDs installs the CRDs of artifacts/crd, for a control plane started
// WithoutCRDs, and waits until they are Established.
func (c *ControlPlane) InstallCRDs(ctx context.Context) error {
	return c.InstallCRDsFrom(ctx, c.crdDir())
}

// InstallCRDsFrom installs, or updates, the CRDs of the given files or
// folders, and waits until they are Established: an upgrade test installs an
// earlier version's CRD first.
func (c *ControlPlane) InstallCRDsFrom(ctx context.Context, paths ...string) error {
	crds, err := envtest.InstallCRDs(c.admin, envtest.CRDInstallOptions{
		Paths:              paths,
		ErrorIfPathMissing: true,
	})
	if err != nil {
		return err
	}
	return waitForCRDsEstablished(ctx, c.admin, crds)
}

// KillAPIServer kills kube-apiserver with SIGKILL, as a crash or an expired
// termination grace period does, and leaves etcd and the signal-apiservers
// running. A graceful stop is no faster: kube-apiserver waits up to its
// 60 s shutdown timeout for open watches.
func (c *ControlPlane) KillAPIServer() error {
	pid, err := findProcess("kube-apiserver", filepath.Join(c.opts.StateDir, "kube-apiserver"))
	if err != nil {
		return err
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return err
	}
	// envtest reaps the process and forgets it.
	if err := c.env.ControlPlane.APIServer.Stop(); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	return nil
}

// StartAPIServer starts kube-apiserver again after KillAPIServer, on the
// same port, certificates and etcd, and waits for its /healthz.
func (c *ControlPlane) StartAPIServer() error {
	return c.env.ControlPlane.APIServer.Start()
}

// EtcdPID returns the process id of this control plane's etcd (envtest does
// not export it), so a test can pause it with SIGSTOP.
func (c *ControlPlane) EtcdPID() (int, error) {
	return findProcess("etcd", filepath.Join(c.opts.StateDir, "etcd"))
}

// findProcess returns the pid of the process running binary name with an
// argument that ends in dir.
func findProcess(name, dir string) (int, error) {
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
		if len(args) == 0 || filepath.Base(string(args[0])) != name {
			continue
		}
		for _, a := range args {
			if bytes.HasSuffix(a, []byte(dir)) {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("controlplane: no %s process with an argument ending in %s", name, dir)
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
