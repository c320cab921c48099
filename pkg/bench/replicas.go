package bench

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// signalsTotal is signal-apiserver's counter of the signals it answered.
const signalsTotal = "signal_apiserver_signals_total"

// spreadAttempts bounds the batches addReplica sends until the aggregator
// has sent signals to every replica.
const spreadAttempts = 20

// addReplica starts a second signal-apiserver, puts both behind the
// APIService's Service and waits until the aggregator sends signals to
// both.
func (b *bench) addReplica(ctx context.Context, serverArgs []string) error {
	name := "signal-apiserver-" + strconv.Itoa(len(b.replicas)+1)
	fmt.Fprintf(b.opts.Log, "starting %s\n", name)
	s, err := b.cp.StartServer(ctx, name, serverArgs...)
	if err != nil {
		return err
	}
	b.cpu.add("signal-apiserver", s.PID())
	b.replicas = append(b.replicas, s)
	if err := b.cp.RegisterAPIServiceEndpoints(ctx, b.replicas...); err != nil {
		return err
	}

	namespace := "bench-replicas"
	if err := b.createNamespace(ctx, namespace); err != nil {
		return err
	}
	c := b.contender(SignalAPIServerX2)
	w := newWorkload(Scenario{Name: "replicas", Signals: 20, Fingerprints: 1, Concurrency: 20}, namespace)
	before, err := b.replicaSignals(ctx)
	if err != nil {
		return err
	}
	for range spreadAttempts {
		if stats := drive(ctx, w, c.contender); stats.errors > 0 {
			return fmt.Errorf("signals to %d replicas failed, e.g.: %v", len(b.replicas), stats.errorSamples)
		}
		after, err := b.replicaSignals(ctx)
		if err != nil {
			return err
		}
		served := 0
		for i := range after {
			if after[i] > before[i] {
				served++
			}
		}
		if served == len(b.replicas) {
			return nil
		}
	}
	return fmt.Errorf("the aggregator did not send signals to all %d replicas in %d batches", len(b.replicas), spreadAttempts)
}

// replicaSignals returns how many signals each replica has answered.
func (b *bench) replicaSignals(ctx context.Context) ([]float64, error) {
	counts := make([]float64, 0, len(b.replicas))
	for _, s := range b.replicas {
		n, err := scrapeCounter(ctx, b.direct(s), signalsTotal)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", s.Name, err)
		}
		counts = append(counts, n)
	}
	return counts, nil
}

// direct returns a client of server s itself, as system:admin through the
// front proxy.
func (b *bench) direct(s *controlplane.Server) rest.Interface {
	cfg := b.cp.FrontProxyClientConfig(s, "system:admin", []string{"system:masters"})
	return kubernetes.NewForConfigOrDie(cfg).CoreV1().RESTClient()
}

// scrapeCounter returns the sum of a counter over its labels from the
// /metrics of client's server.
func scrapeCounter(ctx context.Context, client rest.Interface, name string) (float64, error) {
	body, err := client.Get().AbsPath("/metrics").SetHeader("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain))).Stream(ctx)
	if err != nil {
		return 0, fmt.Errorf("GET /metrics: %w", err)
	}
	defer body.Close()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(body)
	if err != nil {
		return 0, fmt.Errorf("parsing metrics: %w", err)
	}
	var sum float64
	if family, ok := families[name]; ok {
		for _, m := range family.GetMetric() {
			sum += m.GetCounter().GetValue()
		}
	}
	return sum, nil
}

// startProfile starts a CPU profile of the first replica if row is the row
// Options.CPUProfileRow names, and returns a function that waits for it and
// writes it to Options.CPUProfile.
func (b *bench) startProfile(ctx context.Context, row string) func() error {
	o := b.opts
	if o.CPUProfile == "" || row != o.CPUProfileRow {
		return func() error { return nil }
	}
	b.profiled = true
	seconds := max(o.CPUProfileSeconds, 1)
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(ctx, time.Duration(seconds)*time.Second+time.Minute)
		defer cancel()
		data, err := b.direct(b.replicas[0]).Get().AbsPath("/debug/pprof/profile").
			Param("seconds", strconv.Itoa(seconds)).Timeout(time.Duration(seconds)*time.Second + time.Minute).DoRaw(ctx)
		if err != nil {
			done <- fmt.Errorf("CPU profile of %s: %w", row, err)
			return
		}
		if err := os.MkdirAll(filepath.Dir(o.CPUProfile), 0o755); err != nil {
			done <- err
			return
		}
		done <- os.WriteFile(o.CPUProfile, data, 0o644)
	}()
	return func() error {
		fmt.Fprintf(o.Log, "waiting for the %ds CPU profile of %s\n", seconds, row)
		err := <-done
		if err == nil {
			fmt.Fprintf(o.Log, "CPU profile of %s in %s (go tool pprof -top %s %s)\n", row, o.CPUProfile, o.ServerBinary, o.CPUProfile)
		}
		return err
	}
}
