// Command signal-bench runs the signal-apiserver benchmark (make bench) on a
// control plane of its own: see package pkg/bench. It exits 1 if
// signal-apiserver answers wrongly; missed performance targets are only
// reported.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"k8s.io/klog/v2"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	"github.com/signal-apiserver/signal-apiserver/pkg/bench"
	"github.com/signal-apiserver/signal-apiserver/pkg/bench/netns"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

func main() {
	o := bench.Options{Out: os.Stdout, Log: os.Stderr}
	var scenarios, contenders string
	var soak time.Duration
	var soakClients int
	flag.StringVar(&o.ServerBinary, "server-binary", "bin/signal-apiserver", "the built signal-apiserver to measure")
	flag.StringVar(&o.BinDir, "bin-dir", "", "folder with kube-apiserver, etcd and kubectl (default: $KUBEBUILDER_ASSETS, else the one under bin/control-plane)")
	flag.StringVar(&o.StateDir, "state-dir", "", "folder for the control plane's state and logs, wiped first (default <repo>/bin/bench/state)")
	flag.StringVar(&o.JSONPath, "json", "bin/bench/results.json", "where to write the results as JSON")
	flag.Float64Var(&o.Scale, "scale", 1, "multiplies the number of signals and fingerprints of every scenario, e.g. 0.1 for a quick run")
	flag.IntVar(&o.Warmup, "warmup", 50, "unmeasured requests before each row")
	flag.StringVar(&scenarios, "scenarios", "", "comma-separated scenarios to run: storm, keyed, spread, fresh (default all)")
	flag.StringVar(&o.Sender, "sender", bench.SenderSignalSender, "who sends the signal-apiserver contenders' Signals: signal-sender (a user bound to the ClusterRole, authorized by SubjectAccessReview, cached) or admin (system:masters, allowed without asking kube-apiserver)")
	flag.StringVar(&contenders, "contenders", "", "comma-separated contenders to run: limit-aggregation, limit-create, limit-status-update, baseline, signal-apiserver, signal-apiserver-x2 (default all)")
	flag.StringVar(&o.CPUProfile, "cpu-profile", "", "write a CPU profile of signal-apiserver during the row --cpu-profile-row to this file")
	flag.StringVar(&o.CPUProfileRow, "cpu-profile-row", "storm/signal-apiserver", "the row (scenario/contender) to profile")
	flag.IntVar(&o.CPUProfileSeconds, "cpu-profile-seconds", 10, "how long the CPU profile lasts; make the row at least as long (--scale)")
	flag.DurationVar(&soak, "soak", 0, "instead of the benchmark, send mixed signals for this long and sample the server's memory (make soak)")
	flag.IntVar(&soakClients, "soak-clients", 20, "concurrent clients of the soak")
	klog.InitFlags(nil)
	flag.Parse()
	ctrllog.SetLogger(klog.NewKlogr())
	o.Scenarios, o.Contenders = list(scenarios), list(contenders)

	// The run lives in a network namespace of its own: re-executed there
	// first, then set up. Without one it stays on loopback.
	if netns.Inside() {
		if err := netns.Setup(); err != nil {
			fmt.Fprintln(os.Stderr, "signal-bench:", err)
			os.Exit(1)
		}
		o.EndpointIP = netns.Address
		fmt.Fprintf(os.Stderr, "signal-bench: in a network namespace of its own: loopback and %s (%v)\n", netns.Interface, netns.Address)
	} else if err := netns.Usable(); err != nil {
		o.NoNamespace = err.Error()
		fmt.Fprintf(os.Stderr, "signal-bench: cannot make a network namespace (%s): running on loopback only; the %s rows, which need EndpointSlices, are skipped\n", o.NoNamespace, bench.SignalAPIServerX2)
	} else {
		code, err := netns.Reexec(os.Args[1:])
		if err != nil {
			fmt.Fprintln(os.Stderr, "signal-bench:", err)
			os.Exit(1)
		}
		os.Exit(code)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, o, soak, soakClients); err != nil {
		fmt.Fprintln(os.Stderr, "signal-bench:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, o bench.Options, soak time.Duration, soakClients int) error {
	var err error
	if o.RepoRoot, err = controlplane.FindRepoRoot(); err != nil {
		return err
	}
	if o.BinDir == "" {
		if o.BinDir, err = controlplane.FindBinDir(o.RepoRoot); err != nil {
			return err
		}
	}
	if o.StateDir == "" {
		o.StateDir = filepath.Join(o.RepoRoot, "bin", "bench", "state")
	}
	if soak > 0 {
		return bench.RunSoak(ctx, o, soak, soakClients)
	}
	return bench.Run(ctx, o)
}

func list(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}
