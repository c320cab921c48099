package controlplane

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/transport"
)

const (
	// serverStartTimeout bounds the wait for a new server's /readyz.
	serverStartTimeout = 60 * time.Second
	// serverStopTimeout is how long Stop waits after SIGTERM before SIGKILL.
	serverStopTimeout = 30 * time.Second
)

// Server is one signal-apiserver process on a loopback port.
type Server struct {
	// Name names the process; its log is <StateDir>/<Name>.log.
	Name string
	// Port is the port it serves HTTPS on, on 127.0.0.1.
	Port int
	// CABundle is the PEM CA that signed its serving certificate, which is
	// valid for localhost, 127.0.0.1 and signal-apiserver.signal-apiserver.svc;
	// nil for a server started with --serving-ca-secret, which keeps its own
	// CA and writes it into the APIService.
	CABundle []byte
	// LogPath is the file its stdout and stderr go to.
	LogPath string

	binary    string
	extraArgs []string
	cmd       *exec.Cmd
	log       *os.File
	done      chan struct{}
	exitErr   error

	stopOnce sync.Once
	stopErr  error
}

// StartServer starts a signal-apiserver process named name on a free loopback
// port and waits until its /readyz answers 200. Call it again with another
// name for another replica. extraArgs are appended to the flags the harness
// sets. ctx bounds the wait only: the process runs until Stop, Kill or
// ControlPlane.Stop.
func (c *ControlPlane) StartServer(ctx context.Context, name string, extraArgs ...string) (*Server, error) {
	s, err := c.StartServerNoWait(name, extraArgs...)
	if err != nil {
		return nil, err
	}
	if err := c.waitForReady(ctx, s); err != nil {
		return nil, errors.Join(err, s.Kill())
	}
	return s, nil
}

// StartServerNoWait starts a signal-apiserver process like StartServer but
// returns as soon as the process runs, ready or not.
func (c *ControlPlane) StartServerNoWait(name string, extraArgs ...string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	return c.startServer(c.opts.ServerBinary, name, port, extraArgs)
}

// StartServerFrom starts a replica like StartServer, from binary instead of
// Options.ServerBinary: another release's signal-apiserver, for an upgrade
// with both running. It is given the same flags, which that release must
// know.
func (c *ControlPlane) StartServerFrom(ctx context.Context, binary, name string, extraArgs ...string) (*Server, error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	if binary, err = filepath.Abs(binary); err != nil {
		return nil, err
	}
	s, err := c.startServer(binary, name, port, extraArgs)
	if err != nil {
		return nil, err
	}
	if err := c.waitForReady(ctx, s); err != nil {
		return nil, errors.Join(err, s.Kill())
	}
	return s, nil
}

func (c *ControlPlane) startServer(binary, name string, port int, extraArgs []string) (*Server, error) {
	if binary == "" {
		return nil, errors.New("controlplane: Options.ServerBinary is not set")
	}
	if _, err := os.Stat(binary); err != nil {
		return nil, fmt.Errorf("controlplane: signal-apiserver binary: %w (build it: go build -o bin/signal-apiserver ./cmd/signal-apiserver)", err)
	}
	s := &Server{
		Name:      name,
		Port:      port,
		binary:    binary,
		CABundle:  c.pki.servingCA.certPEM,
		LogPath:   filepath.Join(c.opts.StateDir, name+".log"),
		extraArgs: extraArgs,
		done:      make(chan struct{}),
	}
	var err error
	// Appending: a restarted server keeps the log of its earlier life.
	if s.log, err = os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600); err != nil {
		return nil, err
	}
	args := []string{
		"--secure-port=" + strconv.Itoa(port),
		"--bind-address=127.0.0.1",
	}
	if slices.ContainsFunc(extraArgs, func(a string) bool { return strings.HasPrefix(a, "--serving-ca-secret") }) {
		// The server issues its own certificate from the CA it keeps.
		s.CABundle = nil
	} else {
		args = append(args, "--tls-cert-file="+c.pki.path("serving.crt"), "--tls-private-key-file="+c.pki.path("serving.key"))
	}
	args = append(args,
		"--kubeconfig="+c.serverKubeconfig,
		"--authentication-kubeconfig="+c.serverKubeconfig,
		"--authorization-kubeconfig="+c.serverKubeconfig,
		"--cluster-scoped-namespace="+ServerNamespace,
		"--v=2",
	)
	s.cmd = exec.Command(binary, append(args, extraArgs...)...)
	s.cmd.Stdout = s.log
	s.cmd.Stderr = s.log
	// Its own process group: a Ctrl-C in the terminal reaches only the
	// parent, which then stops the servers before kube-apiserver.
	s.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}

	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		s.log.Close()
		return nil, errors.New("controlplane: stopped")
	}
	if err := s.cmd.Start(); err != nil {
		c.mu.Unlock()
		s.log.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	c.servers = append(c.servers, s)
	c.mu.Unlock()
	go func() {
		s.exitErr = s.cmd.Wait()
		s.log.Close()
		close(s.done)
	}()
	return s, nil
}

// RestartServer starts a new process in place of s, which must have exited:
// same name, port and flags, so the APIService and clients of s reach it. It
// waits until the new process is ready.
func (c *ControlPlane) RestartServer(ctx context.Context, s *Server) (*Server, error) {
	select {
	case <-s.done:
	default:
		return nil, fmt.Errorf("controlplane: %s is still running", s.Name)
	}
	restarted, err := c.startServer(s.binary, s.Name, s.Port, s.extraArgs)
	if err != nil {
		return nil, err
	}
	if err := c.waitForReady(ctx, restarted); err != nil {
		return nil, errors.Join(err, restarted.Kill())
	}
	return restarted, nil
}

// WaitForServerReady waits until s's /readyz answers 200 and it serves
// discovery of signals.remediation.io/v1, as StartServer does.
func (c *ControlPlane) WaitForServerReady(ctx context.Context, s *Server) error {
	return c.waitForReady(ctx, s)
}

// waitForReady polls the server directly, as system:admin through the
// front-proxy, until /readyz answers 200 and an authenticated discovery
// request succeeds.
//
// It dials a new connection for every poll. client-go shares one pooled
// transport between rest.Configs with the same certificates, and a TLS
// connection made while the server was still loading its client CAs carries
// no client certificate for as long as it lives: reused by a test, it would
// make that test's requests anonymous.
func (c *ControlPlane) waitForReady(ctx context.Context, s *Server) error {
	cfg := c.FrontProxyClientConfig(s, "system:admin", []string{"system:masters"})
	tlsConfig, err := rest.TLSConfigFor(cfg)
	if err != nil {
		return err
	}
	httpClient := &http.Client{
		Transport: transport.NewAuthProxyRoundTripper("system:admin", "", []string{"system:masters"}, nil,
			&http.Transport{TLSClientConfig: tlsConfig, DisableKeepAlives: true}),
		Timeout: 5 * time.Second,
	}
	var last string
	get := func(ctx context.Context, path string) bool {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", s.Port, path), nil)
		if err != nil {
			last = err.Error()
			return false
		}
		resp, err := httpClient.Do(req)
		if err != nil {
			last = err.Error()
			return false
		}
		defer resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			return true
		}
		var body bytes.Buffer
		_, _ = body.ReadFrom(resp.Body)
		last = fmt.Sprintf("%s %s: %s", path, resp.Status, body.String())
		return false
	}
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, serverStartTimeout, true, func(ctx context.Context) (bool, error) {
		select {
		case <-s.done:
			return false, fmt.Errorf("%s exited: %v", s.Name, s.exitErr) //nolint:errorlint // nil when it exited 0, which %w would print as %!w(<nil>)
		default:
		}
		return get(ctx, "/readyz") && get(ctx, "/apis/signals.remediation.io/v1"), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %s to be ready (last answer: %s; log: %s): %w", s.Name, last, s.LogPath, err)
	}
	return nil
}

// FrontProxyClientConfig returns a config that talks to server s directly,
// bypassing kube-apiserver, the way kube-apiserver's aggregator does: with the
// front-proxy client certificate and the user in X-Remote-User and
// X-Remote-Group.
func (c *ControlPlane) FrontProxyClientConfig(s *Server, user string, groups []string) *rest.Config {
	return &rest.Config{
		Host: fmt.Sprintf("https://127.0.0.1:%d", s.Port),
		TLSClientConfig: rest.TLSClientConfig{
			CAData:   s.CABundle,
			CertData: c.pki.frontProxyClient.certPEM,
			KeyData:  c.pki.frontProxyClient.keyPEM,
		},
		WrapTransport: func(rt http.RoundTripper) http.RoundTripper {
			return transport.NewAuthProxyRoundTripper(user, "", groups, nil, rt)
		},
		QPS:   1000,
		Burst: 2000,
	}
}

// Done is closed when the process has exited.
func (s *Server) Done() <-chan struct{} { return s.done }

// Stop sends SIGTERM and waits for the process to exit, sending SIGKILL after
// 30 seconds. It returns the process's exit error, nil for a clean exit.
func (s *Server) Stop() error {
	return s.terminate(syscall.SIGTERM, serverStopTimeout)
}

// Kill sends SIGKILL and waits for the process to exit.
func (s *Server) Kill() error {
	return s.terminate(syscall.SIGKILL, serverStopTimeout)
}

func (s *Server) terminate(sig syscall.Signal, timeout time.Duration) error {
	s.stopOnce.Do(func() {
		select {
		case <-s.done:
			s.stopErr = s.exitErr
			return
		default:
		}
		if err := s.cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
			s.stopErr = err
			return
		}
		select {
		case <-s.done:
			if sig != syscall.SIGKILL {
				s.stopErr = s.exitErr
			}
		case <-time.After(timeout):
			_ = s.cmd.Process.Kill()
			<-s.done
			s.stopErr = fmt.Errorf("%s did not exit within %s of %s; killed", s.Name, timeout, sig)
		}
	})
	return s.stopErr
}

// freePort returns a loopback port that was free a moment ago.
func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
