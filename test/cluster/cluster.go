// Package cluster runs a real single-node Kubernetes cluster on this machine
// for `make cluster` and `make e2e`: containerd, runc and CNI plugins from
// Debian; etcd, kube-apiserver, kube-controller-manager, kube-scheduler,
// kube-proxy and kubelet built from Go modules; every image imported from an
// archive (nothing can be pulled).
//
// The node lives in a mount, network and PID namespace of its own
// (`unshare`): its interfaces, addresses, routes and iptables rules, the
// fixed paths its components write (/run, /var/lib, /var/log, bound to the
// state folder) and the VM-wide kernel settings kubelet rewrites (files
// mounted over /proc/sys) exist only there, and when its PID 1 exits the
// kernel ends every process in it. What is left on the host are the
// /kubepods and /k8s.io cgroups kubelet and containerd make, which Down
// removes. kube-apiserver is reached from the host through a Unix socket in
// the state folder and a forwarder on 127.0.0.1.
//
// One cluster per machine at a time: the cgroup names are fixed.
package cluster

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/klog/v2"
)

// Options configure Up.
type Options struct {
	// RepoRoot is the repository's root, where artifacts/ is.
	RepoRoot string
	// StateDir receives certificates, configuration, logs and the node's
	// filesystems; Up wipes what an earlier run left there.
	StateDir string
	// ControlPlaneDir holds kube-apiserver, etcd and kubectl.
	ControlPlaneDir string
	// ComponentsDir holds kubelet, kube-controller-manager, kube-scheduler
	// and kube-proxy.
	ComponentsDir string
	// ImagesDir holds images.txt and the archives of hack/build-images.sh,
	// and e2e/ with the test images.
	ImagesDir string
	// Self is the program that runs `node-init` and `node` inside the
	// namespaces (see RunInit and RunNode): normally os.Executable().
	Self string
}

// Cluster is a running single-node cluster.
type Cluster struct {
	opts       Options
	state      *stateDir
	kubeconfig string
	images     map[string]string // image name -> reference

	lock      net.Listener
	forwarder net.Listener
	node      *exec.Cmd
	nodeStdin interface{ Close() error }
	nodeDone  chan struct{}
	nodeErr   error
	cgroups   *cgroupSnapshot
}

// lockName is an abstract Unix socket name: held while a cluster runs,
// released by the kernel when its holder dies, leaving nothing behind.
const lockName = "@signal-apiserver-e2e-cluster"

// Up starts the cluster and waits until its node is Ready. It does not
// install anything: see Install.
func Up(ctx context.Context, o Options) (_ *Cluster, retErr error) {
	if os.Geteuid() != 0 {
		return nil, errors.New("the cluster needs root: it makes namespaces, mounts and cgroups")
	}
	c := &Cluster{opts: o, state: &stateDir{dir: o.StateDir}}
	var err error
	if c.lock, err = net.Listen("unix", lockName); err != nil {
		return nil, fmt.Errorf("another cluster runs on this machine (%s is taken): %w", lockName, err)
	}
	defer func() {
		if retErr != nil {
			retErr = errors.Join(retErr, c.Down(context.Background()))
		}
	}()
	if err := checkTools(); err != nil {
		return nil, err
	}
	if c.cgroups, err = snapshotCgroups(); err != nil {
		return nil, err
	}
	if c.images, err = readImageList(filepath.Join(o.ImagesDir, "images.txt"), filepath.Join(o.ImagesDir, "e2e", "images.txt")); err != nil {
		return nil, err
	}
	if err := c.prepareState(); err != nil {
		return nil, fmt.Errorf("preparing %s: %w", o.StateDir, err)
	}

	archives, err := filepath.Glob(filepath.Join(o.ImagesDir, "*.tar"))
	if err != nil {
		return nil, err
	}
	e2eArchives, err := filepath.Glob(filepath.Join(o.ImagesDir, "e2e", "*.tar"))
	if err != nil {
		return nil, err
	}
	nodeOpts := NodeOptions{
		StateDir:        o.StateDir,
		ControlPlaneDir: o.ControlPlaneDir,
		ComponentsDir:   o.ComponentsDir,
		Images:          append(archives, e2eArchives...),
	}
	if err := c.startNode(nodeOpts); err != nil {
		return nil, err
	}
	if err := c.startForwarder(); err != nil {
		return nil, err
	}

	klog.InfoS("Waiting for kube-apiserver and the node", "logs", c.state.path("logs"))
	if err := c.waitForNode(ctx); err != nil {
		return nil, err
	}
	return c, nil
}

// KubeconfigPath returns the admin kubeconfig, for kubectl on the host.
func (c *Cluster) KubeconfigPath() string { return c.kubeconfig }

// KubectlPath returns the kubectl that matches kube-apiserver's version.
func (c *Cluster) KubectlPath() string { return filepath.Join(c.opts.ControlPlaneDir, "kubectl") }

// LogDir returns the folder with every component's log.
func (c *Cluster) LogDir() string { return c.state.path("logs") }

// Image returns the reference of an image built by hack/build-images.sh.
func (c *Cluster) Image(name string) string { return c.images[name] }

// NodeDone is closed when the node has stopped.
func (c *Cluster) NodeDone() <-chan struct{} { return c.nodeDone }

func checkTools() error {
	for _, tool := range []string{"unshare", "ip", "containerd", "containerd-shim-runc-v2", "runc", "ctr", "iptables", "conntrack"} {
		if _, err := exec.LookPath(tool); err != nil {
			return fmt.Errorf("%s is missing: run hack/cluster-deps.sh (make cluster and make e2e do)", tool)
		}
	}
	if _, err := os.Stat("/usr/lib/cni/bridge"); err != nil {
		return errors.New("the CNI plugins are missing (/usr/lib/cni): run hack/cluster-deps.sh")
	}
	return nil
}

// prepareState wipes the state folder and writes certificates, kubeconfigs
// and configuration files.
func (c *Cluster) prepareState() error {
	s := c.state
	if err := os.RemoveAll(s.dir); err != nil {
		return err
	}
	for _, d := range []string{"logs", "kubeconfig", "config", "cni", "etcd", "kube-apiserver", "containerd-opt"} {
		if err := os.MkdirAll(s.path(d), 0o755); err != nil {
			return err
		}
	}
	p, err := newPKI(s.path("pki"))
	if err != nil {
		return err
	}
	internal := fmt.Sprintf("https://%s:%d", nodeIP, apiserverPort)
	for _, name := range []string{"kubelet", "kube-controller-manager", "kube-scheduler", "kube-proxy"} {
		cert := name
		if name == "kubelet" {
			cert = "kubelet-client"
		}
		if err := writeKubeconfig(s.path("kubeconfig", name), internal, p, cert); err != nil {
			return err
		}
	}
	for path, content := range map[string]string{
		s.path("config", "containerd.toml"): containerdConfig(s),
		s.path("cni", "10-e2e.conflist"):    cniConfig,
		s.path("config", "kubelet.yaml"):    kubeletConfig(p),
		s.path("config", "kube-proxy.yaml"): kubeProxyConfig(s.path("kubeconfig", "kube-proxy")),
	} {
		if err := writeFile(path, content); err != nil {
			return err
		}
	}
	return nil
}

// startNode starts `unshare ... <self> node-init <self> node ...` in a
// process group of its own (Ctrl-C in the terminal reaches the host side
// only, which stops things in order) that dies with this process.
func (c *Cluster) startNode(o NodeOptions) error {
	logFile, err := os.OpenFile(c.state.log("node"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	args := append([]string{
		"--mount", "--net", "--pid", "--fork", "--mount-proc", "--propagation", "private", "--kill-child",
		"--", c.opts.Self, "node-init", c.opts.Self, "node",
	}, o.Args()...)
	c.node = exec.Command("unshare", args...)
	stdin, err := c.node.StdinPipe()
	if err != nil {
		logFile.Close()
		return err
	}
	c.nodeStdin = stdin
	c.node.Stdout, c.node.Stderr = logFile, logFile
	c.node.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := c.node.Start(); err != nil {
		logFile.Close()
		return fmt.Errorf("starting the node: %w", err)
	}
	c.nodeDone = make(chan struct{})
	go func() {
		c.nodeErr = c.node.Wait()
		logFile.Close()
		close(c.nodeDone)
	}()
	return nil
}

// startForwarder listens on a free loopback port and pipes each connection
// to the node's apiserver.sock; the admin kubeconfig points there.
func (c *Cluster) startForwarder() error {
	var err error
	if c.forwarder, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		return err
	}
	sock := c.state.path("apiserver.sock")
	go serveForward(c.forwarder, func() (net.Conn, error) { return net.Dial("unix", sock) })
	p := &pki{dir: c.state.path("pki")}
	c.kubeconfig = c.state.path("admin.kubeconfig")
	return writeKubeconfig(c.kubeconfig, "https://"+c.forwarder.Addr().String(), p, "admin")
}

func (c *Cluster) waitForNode(ctx context.Context) error {
	var last string
	err := wait.PollUntilContextTimeout(ctx, time.Second, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		select {
		case <-c.nodeDone:
			return false, fmt.Errorf("the node exited (%v); last lines of %s:\n%s", c.nodeErr, c.state.log("node"), tail(c.state.log("node"), 30)) //nolint:errorlint // nil when it exited 0, which %w would print as %!w(<nil>)
		default:
		}
		out, err := c.Kubectl(ctx, "get", "node", nodeName, "-o", `jsonpath={.status.conditions[?(@.type=="Ready")].status}`)
		if err != nil {
			last = err.Error()
			return false, nil
		}
		last = "Ready=" + out
		return out == "True", nil
	})
	if err != nil {
		return fmt.Errorf("waiting for node %s to be Ready (last: %s; logs in %s): %w", nodeName, last, c.state.path("logs"), err)
	}
	return nil
}

// Kubectl runs the cluster's kubectl as the admin and returns its trimmed
// standard output; the error carries standard error.
func (c *Cluster) Kubectl(ctx context.Context, args ...string) (string, error) {
	return c.kubectlStdin(ctx, nil, args...)
}

func (c *Cluster) kubectlStdin(ctx context.Context, stdin []byte, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, c.KubectlPath(), append([]string{"--kubeconfig", c.kubeconfig}, args...)...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if stdin != nil {
		cmd.Stdin = bytes.NewReader(stdin)
	}
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(stderr.String()))
	}
	return strings.TrimSpace(stdout.String()), nil
}

// Down deletes the workloads while kubelet lives, stops the node (which
// stops kubelet, the control plane and containerd, and with its PID 1 ends
// the namespaces), removes the cgroups they made and the node's
// filesystems. Logs stay in the state folder.
func (c *Cluster) Down(ctx context.Context) error {
	var errs []error
	if c.node != nil && c.node.Process != nil {
		select {
		case <-c.nodeDone:
		default:
			// The containers' logs go with their Pods: keep a copy.
			if err := os.CopyFS(c.state.path("logs", "pods"), os.DirFS(c.state.path("fs", "var-log", "pods"))); err != nil {
				klog.ErrorS(err, "Copying the containers' logs")
			}
			if c.kubeconfig != "" {
				if err := c.deleteWorkloads(ctx); err != nil {
					klog.ErrorS(err, "Deleting the workloads; the node's end stops what is left")
				}
			}
			c.nodeStdin.Close()
			select {
			case <-c.nodeDone:
			case <-time.After(3 * time.Minute):
				errs = append(errs, errors.New("the node did not stop within 3 minutes: killed"))
				_ = c.node.Process.Kill()
				<-c.nodeDone
			}
		}
	}
	if c.forwarder != nil {
		c.forwarder.Close()
	}
	if c.cgroups != nil {
		if err := c.cgroups.removeNew(); err != nil {
			errs = append(errs, err)
		}
	}
	if c.state != nil {
		for _, d := range []string{"fs", "containerd-opt", "etcd"} {
			if err := os.RemoveAll(c.state.path(d)); err != nil {
				errs = append(errs, err)
			}
		}
	}
	if c.lock != nil {
		c.lock.Close()
	}
	return errors.Join(errs...)
}

// deleteWorkloads deletes every namespaced workload and Pod, and waits
// until kubelet has stopped their containers and released their networks.
func (c *Cluster) deleteWorkloads(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	if _, err := c.Kubectl(ctx, "delete", "deployments,statefulsets,daemonsets,replicasets,jobs,cronjobs",
		"--all", "--all-namespaces", "--wait=false"); err != nil {
		return err
	}
	_, err := c.Kubectl(ctx, "delete", "pods", "--all", "--all-namespaces", "--grace-period=1", "--timeout=90s")
	return err
}
