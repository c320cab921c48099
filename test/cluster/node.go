package cluster

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// NodeOptions are what the node needs, passed from the host side.
type NodeOptions struct {
	// StateDir is the cluster's state folder, prepared by the host side.
	StateDir string
	// ControlPlaneDir holds kube-apiserver, etcd and kubectl.
	ControlPlaneDir string
	// ComponentsDir holds kubelet, kube-controller-manager, kube-scheduler
	// and kube-proxy.
	ComponentsDir string
	// Images are image archives to import into containerd.
	Images []string
}

// Args returns o as the command-line arguments of the node command.
func (o NodeOptions) Args() []string {
	args := []string{"--state-dir", o.StateDir, "--control-plane", o.ControlPlaneDir, "--components", o.ComponentsDir}
	for _, image := range o.Images {
		args = append(args, "--image", image)
	}
	return args
}

// RunInit is PID 1 of the cluster's PID namespace: it runs the node command
// (argv) as its child, reaps every orphan the namespace hands it
// (containerd shims, container processes), passes SIGTERM on and exits with
// the node's status. When it exits, the kernel kills whatever is left in the
// namespace: nothing of the cluster outlives it.
func RunInit(argv []string) int {
	signal.Ignore(syscall.SIGINT) // Ctrl-C goes to the host side, which tears down in order
	terms := make(chan os.Signal, 1)
	signal.Notify(terms, syscall.SIGTERM)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	if err := cmd.Start(); err != nil {
		fmt.Fprintln(os.Stderr, "init:", err)
		return 1
	}
	go func() {
		for s := range terms {
			_ = cmd.Process.Signal(s)
		}
	}()
	for {
		var status syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &status, 0, nil)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return 1
		}
		if pid == cmd.Process.Pid {
			return status.ExitStatus()
		}
	}
}

// RunNode runs inside the cluster's mount, network and PID namespaces. It
// makes the namespaces a node (mounts, network, kernel settings), starts
// containerd, etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// kube-proxy and kubelet, forwards <state>/apiserver.sock to kube-apiserver
// for the host side, and stops everything, in reverse order, when its
// standard input closes: the host side holds the other end.
func RunNode(o NodeOptions) error {
	signal.Ignore(syscall.SIGINT)
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM)
	defer stop()
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		klog.InfoS("Standard input closed: stopping the node")
		stop()
	}()

	s := &stateDir{dir: o.StateDir}
	n := &node{opts: o, state: s}
	defer n.stopAll()
	if err := n.start(ctx); err != nil {
		return err
	}
	klog.InfoS("Node is up")
	<-ctx.Done()
	return nil
}

type node struct {
	opts  NodeOptions
	state *stateDir

	mu    sync.Mutex
	procs []*process
}

func (n *node) start(ctx context.Context) error {
	if err := n.mounts(); err != nil {
		return fmt.Errorf("mounts: %w", err)
	}
	if err := n.network(); err != nil {
		return fmt.Errorf("network: %w", err)
	}

	s := n.state
	if _, err := n.run("containerd", "containerd", "--config", s.path("config", "containerd.toml")); err != nil {
		return err
	}
	if err := waitForFile(ctx, "/run/containerd/containerd.sock", time.Minute); err != nil {
		return fmt.Errorf("containerd did not start (log %s): %w", s.log("containerd"), err)
	}
	for _, image := range n.opts.Images {
		out, err := exec.CommandContext(ctx, "ctr", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io",
			"images", "import", image).CombinedOutput()
		if err != nil {
			return fmt.Errorf("importing %s: %w: %s", image, err, out)
		}
		klog.InfoS("Imported image", "archive", image, "ctr", strings.TrimSpace(string(out)))
	}

	cp, comp := n.opts.ControlPlaneDir, n.opts.ComponentsDir
	if _, err := n.run("etcd", filepath.Join(cp, "etcd"),
		"--data-dir", s.path("etcd"),
		"--listen-client-urls", etcdURL, "--advertise-client-urls", etcdURL,
		"--listen-peer-urls", "http://127.0.0.1:2380", "--initial-advertise-peer-urls", "http://127.0.0.1:2380",
		"--initial-cluster", "default=http://127.0.0.1:2380",
		// The cluster is thrown away after the run.
		"--unsafe-no-fsync"); err != nil {
		return err
	}
	pki := s.path("pki")
	p := func(f string) string { return filepath.Join(pki, f) }
	if _, err := n.run("kube-apiserver", filepath.Join(cp, "kube-apiserver"),
		"--etcd-servers", etcdURL,
		"--bind-address", "0.0.0.0", "--secure-port", strconv.Itoa(apiserverPort), "--advertise-address", nodeIP,
		"--service-cluster-ip-range", serviceCIDR,
		"--client-ca-file", p("ca.crt"),
		"--tls-cert-file", p("apiserver.crt"), "--tls-private-key-file", p("apiserver.key"),
		"--kubelet-client-certificate", p("apiserver-kubelet-client.crt"), "--kubelet-client-key", p("apiserver-kubelet-client.key"),
		"--kubelet-certificate-authority", p("ca.crt"), "--kubelet-preferred-address-types", "InternalIP",
		"--service-account-issuer", "https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file", p("sa.key"), "--service-account-signing-key-file", p("sa.key"),
		"--authorization-mode", "Node,RBAC",
		"--enable-admission-plugins", "NodeRestriction",
		// Aggregation: the front-proxy identity, and Pod endpoints dialled
		// directly rather than through a cluster IP.
		"--requestheader-client-ca-file", p("front-proxy-ca.crt"),
		"--requestheader-allowed-names", frontProxyUser,
		"--requestheader-username-headers", "X-Remote-User",
		"--requestheader-group-headers", "X-Remote-Group",
		"--requestheader-extra-headers-prefix", "X-Remote-Extra-",
		"--requestheader-uid-headers", "X-Remote-Uid",
		"--proxy-client-cert-file", p("front-proxy-client.crt"), "--proxy-client-key-file", p("front-proxy-client.key"),
		"--enable-aggregator-routing=true",
		"--cert-dir", s.path("kube-apiserver"),
		"--profiling=false"); err != nil {
		return err
	}
	if err := waitForAPIServer(ctx, s, 2*time.Minute); err != nil {
		return fmt.Errorf("kube-apiserver is not ready (log %s): %w", s.log("kube-apiserver"), err)
	}
	if err := n.forwardAPIServer(ctx); err != nil {
		return err
	}

	kc := func(name string) string { return s.path("kubeconfig", name) }
	if _, err := n.run("kube-controller-manager", filepath.Join(comp, "kube-controller-manager"),
		"--kubeconfig", kc("kube-controller-manager"),
		"--authentication-kubeconfig", kc("kube-controller-manager"),
		"--authorization-kubeconfig", kc("kube-controller-manager"),
		"--root-ca-file", p("ca.crt"),
		"--service-account-private-key-file", p("sa.key"),
		"--use-service-account-credentials=true",
		"--service-cluster-ip-range", serviceCIDR,
		"--bind-address", "127.0.0.1",
		"--leader-elect=false"); err != nil {
		return err
	}
	if _, err := n.run("kube-scheduler", filepath.Join(comp, "kube-scheduler"),
		"--kubeconfig", kc("kube-scheduler"),
		"--authentication-kubeconfig", kc("kube-scheduler"),
		"--authorization-kubeconfig", kc("kube-scheduler"),
		"--bind-address", "127.0.0.1",
		"--leader-elect=false"); err != nil {
		return err
	}
	if _, err := n.run("kube-proxy", filepath.Join(comp, "kube-proxy"),
		"--config", s.path("config", "kube-proxy.yaml")); err != nil {
		return err
	}
	if _, err := n.run("kubelet", filepath.Join(comp, "kubelet"),
		"--config", s.path("config", "kubelet.yaml"),
		"--kubeconfig", kc("kubelet"),
		"--hostname-override", nodeName,
		"--node-ip", nodeIP); err != nil {
		return err
	}
	return nil
}

// procSysFiles are the VM-wide kernel settings kubelet rewrites at start
// (ContainerManager's "protect kernel defaults" set). Inside the node they
// are files of the state folder mounted over /proc/sys, so kubelet changes
// copies, not the VM.
var procSysFiles = []string{
	"vm/overcommit_memory", "vm/panic_on_oom",
	"kernel/panic", "kernel/panic_on_oops",
	"kernel/keys/root_maxkeys", "kernel/keys/root_maxbytes",
}

// mounts puts the fixed paths kubelet, containerd, CNI and runc write to
// (/run, /var/lib, /var/log) and the kernel settings above onto the state
// folder, in this mount namespace only.
func (n *node) mounts() error {
	for target, dir := range map[string]string{"/run": "run", "/var/lib": "var-lib", "/var/log": "var-log"} {
		src := n.state.path("fs", dir)
		if err := os.MkdirAll(src, 0o755); err != nil {
			return err
		}
		if err := syscall.Mount(src, target, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting %s over %s: %w", src, target, err)
		}
	}
	for _, f := range procSysFiles {
		target := filepath.Join("/proc/sys", f)
		value, err := os.ReadFile(target)
		if errors.Is(err, os.ErrNotExist) {
			continue // not in this kernel: nothing to protect
		}
		if err != nil {
			return err
		}
		copyPath := n.state.path("fs", "proc-sys", strings.ReplaceAll(f, "/", "."))
		if err := writeFile(copyPath, string(value)); err != nil {
			return err
		}
		if err := syscall.Mount(copyPath, target, "", syscall.MS_BIND, ""); err != nil {
			return fmt.Errorf("bind-mounting %s over %s: %w", copyPath, target, err)
		}
	}
	return nil
}

// network makes the node's interface (a bridge with an address and a
// default route) and turns on forwarding and bridge netfilter, which are
// settings of this network namespace only.
func (n *node) network() error {
	for _, args := range [][]string{
		{"link", "set", "lo", "up"},
		{"link", "add", "node0", "type", "bridge"},
		{"addr", "add", nodeCIDR, "dev", "node0"},
		{"link", "set", "node0", "up"},
		{"route", "add", "default", "via", nodeGateway, "dev", "node0"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	for f, v := range map[string]string{
		"net/ipv4/ip_forward":                 "1",
		"net/bridge/bridge-nf-call-iptables":  "1",
		"net/bridge/bridge-nf-call-ip6tables": "1",
	} {
		if err := os.WriteFile(filepath.Join("/proc/sys", f), []byte(v), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// forwardAPIServer serves <state>/apiserver.sock: each connection is piped
// to kube-apiserver. A pathname socket is reachable from the host's network
// namespace, where the host side listens on loopback for kubectl.
func (n *node) forwardAPIServer(ctx context.Context) error {
	sock := n.state.path("apiserver.sock")
	_ = os.Remove(sock)
	l, err := net.Listen("unix", sock)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		l.Close()
	}()
	go serveForward(l, func() (net.Conn, error) {
		return net.Dial("tcp", net.JoinHostPort(nodeIP, strconv.Itoa(apiserverPort)))
	})
	return nil
}

// serveForward pipes every connection accepted on l to a connection from
// dial, until l closes.
func serveForward(l net.Listener, dial func() (net.Conn, error)) {
	for {
		in, err := l.Accept()
		if err != nil {
			return
		}
		go func() {
			defer in.Close()
			out, err := dial()
			if err != nil {
				return
			}
			defer out.Close()
			done := make(chan struct{}, 2)
			pipe := func(dst, src net.Conn) {
				_, _ = io.Copy(dst, src)
				if c, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = c.CloseWrite()
				}
				done <- struct{}{}
			}
			go pipe(out, in)
			go pipe(in, out)
			<-done
			<-done
		}()
	}
}

// stopTimeouts bound each component's SIGTERM before SIGKILL.
var stopTimeouts = map[string]time.Duration{"kubelet": 30 * time.Second, "containerd": 30 * time.Second}

// stopAll stops the processes in reverse start order: kubelet first (the
// host side has deleted the workloads while it lived), containerd last.
func (n *node) stopAll() {
	n.mu.Lock()
	procs := n.procs
	n.procs = nil
	n.mu.Unlock()
	for i := len(procs) - 1; i >= 0; i-- {
		timeout, ok := stopTimeouts[procs[i].name]
		if !ok {
			timeout = 15 * time.Second
		}
		procs[i].stop(timeout)
	}
}

type process struct {
	name string
	cmd  *exec.Cmd
	done chan struct{}
}

// run starts a component with its output in <state>/logs/<name>.log.
func (n *node) run(name, path string, args ...string) (*process, error) {
	logFile, err := os.OpenFile(n.state.log(name), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(path, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
	if err := cmd.Start(); err != nil {
		logFile.Close()
		return nil, fmt.Errorf("starting %s: %w", name, err)
	}
	p := &process{name: name, cmd: cmd, done: make(chan struct{})}
	go func() {
		err := cmd.Wait()
		logFile.Close()
		klog.InfoS("Process exited", "name", name, "err", err)
		close(p.done)
	}()
	n.mu.Lock()
	n.procs = append(n.procs, p)
	n.mu.Unlock()
	klog.InfoS("Started", "name", name, "pid", cmd.Process.Pid, "log", n.state.log(name))
	return p, nil
}

func (p *process) stop(timeout time.Duration) {
	_ = p.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-p.done:
	case <-time.After(timeout):
		klog.InfoS("Killing after timeout", "name", p.name, "timeout", timeout)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

func waitForFile(ctx context.Context, path string, timeout time.Duration) error {
	return wait.PollUntilContextTimeout(ctx, 200*time.Millisecond, timeout, true, func(context.Context) (bool, error) {
		_, err := os.Stat(path)
		return err == nil, nil
	})
}

// waitForAPIServer polls kube-apiserver's /readyz as the admin.
func waitForAPIServer(ctx context.Context, s *stateDir, timeout time.Duration) error {
	client, err := adminHTTPClient(s)
	if err != nil {
		return err
	}
	url := fmt.Sprintf("https://%s:%d/readyz", nodeIP, apiserverPort)
	return wait.PollUntilContextTimeout(ctx, 500*time.Millisecond, timeout, true, func(ctx context.Context) (bool, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		if err != nil {
			return false, err
		}
		resp, err := client.Do(req)
		if err != nil {
			return false, nil
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK, nil
	})
}

func adminHTTPClient(s *stateDir) (*http.Client, error) {
	cert, err := tls.LoadX509KeyPair(s.path("pki", "admin.crt"), s.path("pki", "admin.key"))
	if err != nil {
		return nil, err
	}
	caPEM, err := os.ReadFile(s.path("pki", "ca.crt"))
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(caPEM)
	return &http.Client{
		Timeout:   5 * time.Second,
		Transport: &http.Transport{TLSClientConfig: &tls.Config{Certificates: []tls.Certificate{cert}, RootCAs: roots}},
	}, nil
}

// stateDir is the cluster's state folder.
type stateDir struct{ dir string }

func (s *stateDir) path(elem ...string) string {
	return filepath.Join(append([]string{s.dir}, elem...)...)
}

func (s *stateDir) log(name string) string { return s.path("logs", name+".log") }

// tail returns the last lines of a file, for error messages.
func tail(path string, lines int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var last []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		last = append(last, sc.Text())
		if len(last) > lines {
			last = last[1:]
		}
	}
	return strings.Join(last, "\n")
}
