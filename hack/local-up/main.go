// Command local-up runs a fresh etcd, kube-apiserver and one signal-apiserver
// on loopback for `make run`, registers signal-apiserver with the aggregator,
// and prints how to point kubectl at it. It stops everything on SIGINT or
// SIGTERM. State and logs go to <repo>/.local, wiped at each start.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

func main() {
	binDir := flag.String("bin-dir", os.Getenv("KUBEBUILDER_ASSETS"),
		"folder with kube-apiserver, etcd and kubectl, as printed by hack/build-control-plane.sh")
	serverBinary := flag.String("server-binary", "bin/signal-apiserver", "the built signal-apiserver")
	stateDir := flag.String("state-dir", "", "folder for certificates, etcd data, kubeconfigs and logs (default <repo>/.local)")
	flag.Parse()
	ctrllog.SetLogger(klog.NewKlogr())

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, *binDir, *serverBinary, *stateDir); err != nil {
		fmt.Fprintln(os.Stderr, "local-up:", err)
		os.Exit(1)
	}
}

// run starts everything, waits for a signal (or for signal-apiserver to die)
// and stops everything. A signal during start-up is a clean exit too. Further
// signals are ignored while stopping, which is bounded: dying half-way would
// leave kube-apiserver and etcd running in their own process groups.
func run(ctx context.Context, binDir, serverBinary, stateDir string) (retErr error) {
	repoRoot, err := controlplane.FindRepoRoot()
	if err != nil {
		return err
	}
	if stateDir == "" {
		stateDir = filepath.Join(repoRoot, ".local")
	}

	fmt.Fprintf(os.Stderr, "starting etcd and kube-apiserver (state and logs in %s)\n", stateDir)
	cp, server, err := controlplane.StartWithServer(ctx, controlplane.Options{
		BinDir:       binDir,
		StateDir:     stateDir,
		ServerBinary: serverBinary,
		RepoRoot:     repoRoot,
	}, "signal-apiserver")
	if err != nil {
		return interrupted(ctx, err)
	}
	defer func() {
		fmt.Fprintln(os.Stderr, "stopping signal-apiserver, kube-apiserver and etcd")
		retErr = errors.Join(retErr, cp.Stop())
	}()

	fmt.Fprintf(os.Stderr, "signal-apiserver is serving on https://127.0.0.1:%d (log: %s)\n", server.Port, server.LogPath)
	fmt.Fprintf(os.Stderr, "a kubectl matching kube-apiserver: %s\n", cp.KubectlPath())
	fmt.Printf("export KUBECONFIG=%s\n", cp.KubeconfigPath())
	fmt.Println("kubectl create -f artifacts/examples/signal.yaml")
	fmt.Fprintln(os.Stderr, "press Ctrl-C to stop")

	select {
	case <-ctx.Done():
		return nil
	case <-server.Done():
		return fmt.Errorf("signal-apiserver exited (log: %s)", server.LogPath)
	}
}

// interrupted turns an error caused by a signal during start-up into a clean
// exit.
func interrupted(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return nil
	}
	return err
}
