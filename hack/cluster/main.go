// Command cluster runs the single-node cluster of test/cluster with
// signal-apiserver, signal-event-source and Alertmanager installed from
// their images.
//
// Without a command (`make cluster`) it prints `export KUBECONFIG=...` and
// runs until Ctrl-C; with one after `--` (`make e2e`) it runs the command
// with KUBECONFIG and the E2E_* variables set, and exits with its status.
// Either way it tears the cluster down and leaves the machine as it found it.
//
// `node-init` and `node` are what it runs inside the cluster's namespaces.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"

	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
	"github.com/signal-apiserver/signal-apiserver/test/cluster"
)

func main() {
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "node-init":
			os.Exit(cluster.RunInit(os.Args[2:]))
		case "node":
			if err := runNode(os.Args[2:]); err != nil {
				fmt.Fprintln(os.Stderr, "node:", err)
				os.Exit(1)
			}
			return
		}
	}
	os.Exit(run())
}

type images []string

func (i *images) String() string     { return strings.Join(*i, ",") }
func (i *images) Set(v string) error { *i = append(*i, v); return nil }

func runNode(args []string) error {
	var o cluster.NodeOptions
	fs := flag.NewFlagSet("node", flag.ContinueOnError)
	fs.StringVar(&o.StateDir, "state-dir", "", "")
	fs.StringVar(&o.ControlPlaneDir, "control-plane", "", "")
	fs.StringVar(&o.ComponentsDir, "components", "", "")
	fs.Var((*images)(&o.Images), "image", "")
	if err := fs.Parse(args); err != nil {
		return err
	}
	return cluster.RunNode(o)
}

func run() int {
	repoRoot, err := controlplane.FindRepoRoot()
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	var o cluster.Options
	flag.StringVar(&o.ControlPlaneDir, "control-plane", "", "folder with kube-apiserver, etcd and kubectl (hack/build-control-plane.sh)")
	flag.StringVar(&o.ComponentsDir, "components", "", "folder with kubelet, kube-controller-manager, kube-scheduler and kube-proxy (hack/build-cluster-components.sh)")
	flag.StringVar(&o.ImagesDir, "images", filepath.Join(repoRoot, "bin", "images"), "folder of hack/build-images.sh --e2e")
	flag.StringVar(&o.StateDir, "state-dir", filepath.Join(repoRoot, ".cluster"), "folder for certificates, configuration, logs and the node's files; wiped at start")
	flag.Parse()
	o.RepoRoot = repoRoot
	if o.Self, err = os.Executable(); err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		return 1
	}
	command := flag.Args()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	status, err := upAndRun(ctx, o, command)
	if err != nil {
		fmt.Fprintln(os.Stderr, "cluster:", err)
		if status == 0 {
			status = 1
		}
	}
	return status
}

// upAndRun brings the cluster up, installs everything, runs command (or
// waits for a signal) and tears the cluster down, whatever happened. Further
// signals are ignored while tearing down, which is bounded.
func upAndRun(ctx context.Context, o cluster.Options, command []string) (status int, retErr error) {
	start := time.Now()
	fmt.Fprintf(os.Stderr, "starting the cluster (state and logs in %s)\n", o.StateDir)
	c, err := cluster.Up(ctx, o)
	if err != nil {
		return 1, interrupted(ctx, err)
	}
	defer func() {
		signal.Ignore(os.Interrupt, syscall.SIGTERM)
		downStart := time.Now()
		fmt.Fprintln(os.Stderr, "tearing the cluster down")
		if err := c.Down(context.Background()); err != nil {
			retErr = errors.Join(retErr, fmt.Errorf("tearing down: %w", err))
			return
		}
		fmt.Fprintf(os.Stderr, "cluster torn down in %s (logs kept in %s)\n", time.Since(downStart).Round(time.Second), c.LogDir())
	}()
	fmt.Fprintf(os.Stderr, "node ready in %s; installing\n", time.Since(start).Round(time.Second))
	if err := c.Install(ctx); err != nil {
		return 1, interrupted(ctx, err)
	}
	fmt.Fprintf(os.Stderr, "cluster up and installed in %s\n", time.Since(start).Round(time.Second))

	env := []string{
		"KUBECONFIG=" + c.KubeconfigPath(),
		"E2E_KUBECTL=" + c.KubectlPath(),
		"E2E_CLUSTER_LOGS=" + c.LogDir(),
		"E2E_CRASHLOOP_IMAGE=" + c.Image(cluster.CrashLoopImage),
		"E2E_SERVER_IMAGE=" + c.Image(cluster.ServerImage),
	}
	if len(command) == 0 {
		fmt.Fprintf(os.Stderr, "a kubectl matching kube-apiserver: %s\n", c.KubectlPath())
		fmt.Printf("export KUBECONFIG=%s\n", c.KubeconfigPath())
		fmt.Println("kubectl create -f artifacts/examples/signal.yaml")
		fmt.Fprintln(os.Stderr, "press Ctrl-C to tear the cluster down")
		select {
		case <-ctx.Done():
			return 0, nil
		case <-c.NodeDone():
			return 1, fmt.Errorf("the node exited (logs in %s)", c.LogDir())
		}
	}

	testStart := time.Now()
	cmd := exec.CommandContext(ctx, command[0], command[1:]...)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	cmd.Env = append(os.Environ(), env...)
	err = cmd.Run()
	fmt.Fprintf(os.Stderr, "%s took %s\n", strings.Join(command, " "), time.Since(testStart).Round(time.Second))
	var exitErr *exec.ExitError
	if errors.As(err, &exitErr) {
		return exitErr.ExitCode(), nil
	}
	if err != nil {
		return 1, err
	}
	return 0, nil
}

// interrupted turns an error caused by a signal into a clean exit.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		klog.InfoS("Interrupted", "err", err)
		return nil
	}
	return err
}
