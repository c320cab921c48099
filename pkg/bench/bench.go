// Package bench measures signal-apiserver against the limits of its
// environment and against the gateway algorithm it replaces, on a real etcd
// and kube-apiserver of its own. cmd/signal-bench (make bench) runs it.
//
// Every scenario runs each contender in a namespace of its own, in this
// order: limit-aggregation (the cheapest round trip through the
// aggregator), limit-create (one RemediationRequest create per signal),
// baseline (the gateway algorithm as a client of kube-apiserver) and
// signal-apiserver. Each row is preceded by an unmeasured warm-up in another
// namespace. kube-apiserver's own apiserver_request_total, scraped before
// and after each row, says what each contender costs it.
package bench

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"time"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/bench/netns"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// The resource whose requests are counted.
const (
	rrGroup    = "remediation.io"
	rrResource = "remediationrequests"
)

const (
	// clientQPS is far above what the machine can serve, so client-go's
	// rate limiter never delays a request.
	clientQPS = 10000
	// requestTimeout bounds one request; signal-apiserver's own write
	// timeout is shorter.
	requestTimeout = 60 * time.Second
)

// Who sends the signal-apiserver contender's Signals.
const (
	// SenderSignalSender is an ordinary user with a ClusterRoleBinding to
	// signal-sender, as senders are deployed: signal-apiserver authorizes
	// each Signal twice (create on signals, then signal on
	// remediationrequests in its namespace) with SubjectAccessReviews
	// through kube-apiserver, cached.
	SenderSignalSender = "signal-sender"
	// SenderAdmin is the cluster admin, in system:masters, which
	// signal-apiserver's authorizer allows without asking kube-apiserver.
	SenderAdmin = "admin"
)

// senderUser is the user of SenderSignalSender.
const senderUser = "bench-signal-sender"

// ErrChecksFailed means signal-apiserver gave a wrong answer: an error, an
// extra or missing RemediationRequest, or a count that differs from the 2xx
// answers.
var ErrChecksFailed = errors.New("signal-apiserver failed its correctness checks")

// Options configure Run.
type Options struct {
	// BinDir holds kube-apiserver, etcd and kubectl.
	BinDir string
	// StateDir receives the control plane's state and logs; wiped first.
	StateDir string
	// ServerBinary is the signal-apiserver to measure.
	ServerBinary string
	// RepoRoot is the repository's root, for artifacts/.
	RepoRoot string
	// JSONPath is where the results go as JSON.
	JSONPath string
	// Scale multiplies the size of every scenario.
	Scale float64
	// Warmup is the number of unmeasured requests before each row.
	Warmup int
	// Scenarios and Contenders select what runs, by name; empty means all.
	Scenarios  []string
	Contenders []string
	// Sender is who sends the signal-apiserver contender's Signals:
	// SenderSignalSender (default) or SenderAdmin.
	Sender string
	// Out receives the table and the targets; Log the progress.
	Out io.Writer
	Log io.Writer
	// EndpointIP is the address of the network namespace the run lives in
	// (netns.Address): the replicas listen there too and the aggregator
	// reaches them through EndpointSlices. Nil means the run has no
	// namespace of its own: everything stays on loopback and the rows of two
	// replicas are skipped, for the reason NoNamespace gives.
	EndpointIP  net.IP
	NoNamespace string
	// CPUProfile, if set, is where a CPU profile of signal-apiserver (the
	// first replica) taken during row CPUProfileRow ("scenario/contender")
	// goes; it lasts CPUProfileSeconds.
	CPUProfile        string
	CPUProfileRow     string
	CPUProfileSeconds int
}

// Run starts a control plane and one signal-apiserver, runs the selected
// scenarios and contenders, then the rows of two replicas with a second
// signal-apiserver, prints the table and the targets, writes the JSON, and
// stops everything. It returns ErrChecksFailed, after all of that, if
// signal-apiserver answered wrongly.
func Run(ctx context.Context, o Options) (retErr error) {
	scenarios, contenders, err := o.selection()
	if err != nil {
		return err
	}
	began := time.Now()
	loadBefore := loadAverage()
	// Requests reach signal-apiserver as they do in a cluster: through a
	// Service whose endpoints the aggregator picks from, which needs an
	// address outside the loopback range: the one of the run's own network
	// namespace, where "all addresses" are that one and loopback. Without
	// it, through an ExternalName Service for localhost, and with one
	// replica only.
	routing := o.EndpointIP != nil
	var serverArgs []string
	if routing {
		if err := netns.Check(o.EndpointIP); err != nil {
			return err
		}
		serverArgs = append(serverArgs, "--bind-address=0.0.0.0")
	}
	fmt.Fprintf(o.Log, "starting etcd, kube-apiserver and signal-apiserver (state and logs in %s)\n", o.StateDir)
	cp, server, err := controlplane.StartWithServer(ctx, controlplane.Options{
		BinDir: o.BinDir, StateDir: o.StateDir, ServerBinary: o.ServerBinary, RepoRoot: o.RepoRoot, EndpointIP: o.EndpointIP,
	}, "signal-apiserver", serverArgs...)
	if err != nil {
		return err
	}
	defer func() { retErr = errors.Join(retErr, cp.Stop()) }()

	admin := cp.RESTConfig()
	admin.QPS, admin.Burst = clientQPS, clientQPS
	admin.WarningHandler = rest.NoWarnings{}
	core, err := kubernetes.NewForConfig(admin)
	if err != nil {
		return err
	}
	adminSignals, err := versioned.NewForConfig(admin)
	if err != nil {
		return err
	}
	cpu, err := newCPUMeter(o.ServerBinary)
	if err != nil {
		return err
	}
	b := &bench{opts: o, cp: cp, replicas: []*controlplane.Server{server}, core: core, admin: adminSignals, cpu: cpu}
	results := &Results{Machine: machineInfo(core.Discovery()), Scale: o.Scale, Warmup: o.Warmup, Sender: o.Sender, Failures: []string{}, Notes: []string{}}
	results.Machine.LoadAverageBefore = loadBefore
	results.Machine.EtcdArgs = cmdline(cpu.pids["etcd"][0])
	results.Machine.AggregatorRouting = routing
	results.Machine.Network = network(o)

	senderConfig, err := o.senderConfig(ctx, cp, core)
	if err != nil {
		return err
	}
	// The contenders that write RemediationRequests (limit-create,
	// limit-status-update, the baseline) write them as the server does,
	// under its identity: artifacts/deploy/policy.yaml lets no one else
	// write status.deduplication, and their writes then pass the same
	// authorization and admission as the server's.
	writerConfig, err := cp.AddUser(controlplane.ServerUser, controlplane.ServerGroups)
	if err != nil {
		return err
	}
	for _, name := range contenders {
		var cfg *rest.Config
		switch {
		case isSignalAPIServer(name):
			cfg = rest.CopyConfig(senderConfig)
		case name == LimitAggregation:
			cfg = cp.RESTConfig()
		default:
			cfg = rest.CopyConfig(writerConfig)
		}
		cs, httpClient, err := newClientset(cfg)
		if err != nil {
			return err
		}
		c, err := newContender(name, cs)
		if err != nil {
			return err
		}
		b.contenders = append(b.contenders, namedContender{name: name, contender: c, httpClient: httpClient})
	}
	defer func() {
		for _, c := range b.contenders {
			c.httpClient.CloseIdleConnections()
		}
	}()

	record := func(row Row) {
		fmt.Fprintf(o.Log, "%s/%s: %d requests, %d errors, %.2fs, %.0f req/s\n",
			row.Scenario, row.Contender, row.Requests, row.Errors, row.DurationSeconds, row.Throughput)
		results.Rows = append(results.Rows, row)
		results.Failures = append(results.Failures, checkRow(row)...)
	}
	var twoReplicas []Scenario
	for _, s := range scenarios {
		for _, c := range b.contenders {
			if !runsIn(c.name, s) {
				continue
			}
			if c.name == SignalAPIServerX2 {
				twoReplicas = append(twoReplicas, s)
				continue
			}
			row, err := b.runRow(ctx, s, c)
			if err != nil {
				return fmt.Errorf("%s/%s: %w", s.Name, c.name, err)
			}
			record(row)
		}
	}
	if len(twoReplicas) > 0 {
		if !routing {
			results.Notes = append(results.Notes, fmt.Sprintf("%s rows skipped: the aggregator spreads over replicas through EndpointSlices, which refuse loopback addresses, and the run has no network namespace of its own for another address (%s)", SignalAPIServerX2, o.NoNamespace))
		} else {
			if err := b.addReplica(ctx, serverArgs); err != nil {
				return err
			}
			c := b.contender(SignalAPIServerX2)
			for _, s := range twoReplicas {
				row, err := b.runRow(ctx, s, c)
				if err != nil {
					return fmt.Errorf("%s/%s: %w", s.Name, c.name, err)
				}
				record(row)
			}
		}
	}
	if o.CPUProfile != "" && !b.profiled {
		results.Notes = append(results.Notes, fmt.Sprintf("no CPU profile: row %s did not run", o.CPUProfileRow))
	}
	sortRows(results.Rows)
	results.Machine.LoadAverageAfter = loadAverage()
	results.FreshBound = freshBound(results.Rows)
	results.Targets = evaluateTargets(results.Rows, results.FreshBound)
	results.DurationSeconds = time.Since(began).Seconds()
	return report(o, results)
}

// network describes where the run's servers and clients are.
func network(o Options) string {
	if o.EndpointIP == nil {
		return "the machine's loopback only, no network namespace of its own (" + o.NoNamespace + ")"
	}
	return fmt.Sprintf("a network namespace of its own: loopback and %s (%v)", netns.Interface, o.EndpointIP)
}

// report prints the results, writes the JSON and returns ErrChecksFailed
// if any check failed.
func report(o Options, results *Results) error {
	m := results.Machine
	fmt.Fprintf(o.Out, "\nmachine: %d CPUs (%s), GOMAXPROCS %d, %s, kube-apiserver %s, %s; load average %s before, %s after\n",
		m.NumCPU, m.CPUModel, m.GOMAXPROCS, m.MemTotal, m.KubeAPIServerVersion, m.GoVersion, m.LoadAverageBefore, m.LoadAverageAfter)
	fmt.Fprintf(o.Out, "network: %s\n", m.Network)
	fmt.Fprintf(o.Out, "etcd: %s\nscale %g, warm-up %d requests per row, signal-apiserver's Signals sent as %s\n\n", strings.Join(m.EtcdArgs, " "), results.Scale, results.Warmup, results.Sender)
	if err := printTable(o.Out, results.Rows); err != nil {
		return err
	}
	fmt.Fprintln(o.Out, "\n(LIST..PATCH: kube-apiserver requests for remediationrequests per signal; 409: status updates refused for a stale resourceVersion, per signal; lost = 2xx - sum of counts; extra = RRs - fingerprints; status B: JSON bytes of an RR's status)")
	printNotes(o.Out, results)
	fmt.Fprintln(o.Out, "\nwhere the time goes: CPU ms per signal by process (bench: the clients); share of all CPUs used by these, by other processes and stolen by the hypervisor; kube-apiserver's mean ms per remediationrequests request")
	if err := printTimeTable(o.Out, results.Rows); err != nil {
		return err
	}
	fmt.Fprintln(o.Out)
	if err := printTargets(o.Out, results.Targets); err != nil {
		return err
	}
	for _, f := range results.Failures {
		fmt.Fprintln(o.Out, "FAIL:", f)
	}
	fmt.Fprintf(o.Out, "\ntotal %.0fs; results in %s\n", results.DurationSeconds, o.JSONPath)
	if err := writeJSON(o.JSONPath, results); err != nil {
		return err
	}
	if len(results.Failures) > 0 {
		return ErrChecksFailed
	}
	return nil
}

func (o Options) selection() ([]Scenario, []string, error) {
	var scenarios []Scenario
	for _, s := range Scenarios {
		if len(o.Scenarios) == 0 || slices.Contains(o.Scenarios, s.Name) {
			scenarios = append(scenarios, s.Scaled(o.Scale))
		}
	}
	for _, name := range o.Scenarios {
		if !slices.ContainsFunc(Scenarios, func(s Scenario) bool { return s.Name == name }) {
			return nil, nil, fmt.Errorf("unknown scenario %q", name)
		}
	}
	var contenders []string
	for _, name := range Contenders {
		if len(o.Contenders) == 0 || slices.Contains(o.Contenders, name) {
			contenders = append(contenders, name)
		}
	}
	for _, name := range o.Contenders {
		if !slices.Contains(Contenders, name) {
			return nil, nil, fmt.Errorf("unknown contender %q", name)
		}
	}
	if o.Scale <= 0 {
		return nil, nil, fmt.Errorf("scale must be positive, not %g", o.Scale)
	}
	if o.Sender != SenderSignalSender && o.Sender != SenderAdmin {
		return nil, nil, fmt.Errorf("unknown sender %q: %s or %s", o.Sender, SenderSignalSender, SenderAdmin)
	}
	return scenarios, contenders, nil
}

// senderConfig returns the config the signal-apiserver contender sends
// with: the admin's, or that of a user bound to signal-sender.
func (o Options) senderConfig(ctx context.Context, cp *controlplane.ControlPlane, core kubernetes.Interface) (*rest.Config, error) {
	if o.Sender == SenderAdmin {
		return cp.RESTConfig(), nil
	}
	_, err := core.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
		ObjectMeta: metav1.ObjectMeta{Name: senderUser},
		RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "signal-sender"},
		Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: senderUser}},
	}, metav1.CreateOptions{})
	if err != nil {
		return nil, fmt.Errorf("binding %s to signal-sender: %w", senderUser, err)
	}
	return cp.AddUser(senderUser, nil)
}

type bench struct {
	opts Options
	cp   *controlplane.ControlPlane
	// replicas are the signal-apiserver processes behind the APIService.
	replicas   []*controlplane.Server
	core       kubernetes.Interface
	admin      versioned.Interface
	cpu        *cpuMeter
	contenders []namedContender
	// profiled is set once the row of Options.CPUProfileRow ran.
	profiled bool
}

func (b *bench) contender(name string) namedContender {
	for _, c := range b.contenders {
		if c.name == name {
			return c
		}
	}
	return namedContender{}
}

type namedContender struct {
	name       string
	contender  contender
	httpClient *http.Client
}

// newClientset returns a clientset with a transport of its own, shared by
// all of one contender's clients: client-go multiplexes them over HTTP/2.
func newClientset(cfg *rest.Config) (versioned.Interface, *http.Client, error) {
	cfg.QPS, cfg.Burst = clientQPS, clientQPS
	cfg.WarningHandler = rest.NoWarnings{}
	cfg.Timeout = requestTimeout
	// A dialer of its own keeps client-go from sharing the transport it
	// caches for these credentials with the other contenders.
	cfg.Dial = (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext
	httpClient, err := rest.HTTPClientFor(cfg)
	if err != nil {
		return nil, nil, err
	}
	cs, err := versioned.NewForConfigAndClient(cfg, httpClient)
	if err != nil {
		return nil, nil, err
	}
	return cs, httpClient, nil
}

// runRow warms c up, then measures it on scenario s.
func (b *bench) runRow(ctx context.Context, s Scenario, c namedContender) (Row, error) {
	namespace := "bench-" + s.Name + "-" + c.name
	prep, _ := c.contender.(preparer)
	if b.opts.Warmup > 0 {
		warmup := Scenario{
			Name:         s.Name,
			Signals:      b.opts.Warmup,
			Fingerprints: min(s.Fingerprints, b.opts.Warmup),
			Concurrency:  min(s.Concurrency, b.opts.Warmup),
			Keyed:        s.Keyed,
		}
		if err := b.createNamespace(ctx, namespace+"-warmup"); err != nil {
			return Row{}, err
		}
		w := newWorkload(warmup, namespace+"-warmup")
		if prep != nil {
			if err := prep.prepare(ctx, w); err != nil {
				return Row{}, err
			}
		}
		drive(ctx, w, c.contender)
	}
	if err := b.createNamespace(ctx, namespace); err != nil {
		return Row{}, err
	}
	w := newWorkload(s, namespace)
	if prep != nil {
		if err := prep.prepare(ctx, w); err != nil {
			return Row{}, err
		}
	}
	var prefilled int
	if s.Prefill > 0 && !isLimit(c.name) {
		stats := drive(ctx, w.prefill(), c.contender)
		if stats.errors > 0 {
			return Row{}, fmt.Errorf("%d of %d signals filling the key window failed, e.g.: %s", stats.errors, s.Prefill, strings.Join(stats.errorSamples, " | "))
		}
		prefilled = stats.ok
	}

	before, err := scrapeRequestMetrics(ctx, b.core.Discovery().RESTClient())
	if err != nil {
		return Row{}, err
	}
	var replicasBefore []float64
	if isSignalAPIServer(c.name) {
		if replicasBefore, err = b.replicaSignals(ctx); err != nil {
			return Row{}, err
		}
	}
	cpuBefore, err := b.cpu.read()
	if err != nil {
		return Row{}, err
	}
	machineBefore, err := readMachineCPU()
	if err != nil {
		return Row{}, err
	}
	profile := b.startProfile(ctx, s.Name+"/"+c.name)
	stats := drive(ctx, w, c.contender)
	machineAfter, err := readMachineCPU()
	if err != nil {
		return Row{}, err
	}
	cpuAfter, err := b.cpu.read()
	if err != nil {
		return Row{}, err
	}
	if err := profile(); err != nil {
		return Row{}, err
	}
	// Every answer is complete, so kube-apiserver has counted every request
	// of the row: it records a request before it ends the response.
	after, err := scrapeRequestMetrics(ctx, b.core.Discovery().RESTClient())
	if err != nil {
		return Row{}, err
	}
	cpu := cpuAfter.Sub(cpuBefore)
	capacity := stats.duration.Seconds() * float64(runtime.NumCPU())

	metrics := after.Sub(before)
	delta := metrics.Requests
	perSignal := VerbCounts{}
	for _, verb := range Verbs {
		if _, ok := delta[verb]; !ok {
			delta[verb] = 0 // reported as zero, not left out
		}
		perSignal[verb] = delta[verb] / float64(s.Signals)
	}
	row := Row{
		Scenario:           s.Name,
		Contender:          c.name,
		Namespace:          namespace,
		Requests:           s.Signals,
		Fingerprints:       s.Fingerprints,
		Concurrency:        s.Concurrency,
		OK:                 stats.ok,
		Errors:             stats.errors,
		ErrorSamples:       stats.errorSamples,
		AlreadyExists:      stats.alreadyExists,
		Swallowed:          stats.swallowed,
		SwallowedSamples:   stats.swallowedSamples,
		DurationSeconds:    stats.duration.Seconds(),
		Throughput:         float64(s.Signals) / stats.duration.Seconds(),
		LatencyMS:          summarize(stats.latencies),
		APIRequests:        delta,
		PerSignal:          perSignal,
		ConflictsPerSignal: metrics.Conflicts["UPDATE"] / float64(s.Signals),
		APILatencyMS:       metrics.MeanMilliseconds(),
		CPU:                cpu,
		CPUBusy:            cpu.Total() / capacity,
		OtherCPU:           (machineAfter.Busy - machineBefore.Busy - cpu.Total()) / capacity,
		Steal:              (machineAfter.Steal - machineBefore.Steal) / capacity,
	}
	if replicasBefore != nil {
		replicasAfter, err := b.replicaSignals(ctx)
		if err != nil {
			return Row{}, err
		}
		for i := range replicasAfter {
			row.ReplicaSignals = append(row.ReplicaSignals, replicasAfter[i]-replicasBefore[i])
		}
	}
	if !isLimit(c.name) {
		if row.Dedup, err = b.dedup(ctx, namespace, s.Fingerprints, stats.ok, prefilled); err != nil {
			return Row{}, err
		}
	}
	return row, nil
}

// dedup counts the RemediationRequests of namespace and their counts;
// prefilled signals were counted before the row.
func (b *bench) dedup(ctx context.Context, namespace string, expected, ok, prefilled int) (*Dedup, error) {
	list, err := b.admin.RemediationV1alpha1().RemediationRequests(namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("listing RemediationRequests in %s: %w", namespace, err)
	}
	d := &Dedup{Expected: expected, RRs: len(list.Items), Prefilled: int64(prefilled)}
	var statusBytes int
	for _, rr := range list.Items {
		if rr.Status.Deduplication != nil {
			d.SumCounts += rr.Status.Deduplication.OccurrenceCount
		}
		status, err := json.Marshal(rr.Status)
		if err != nil {
			return nil, err
		}
		statusBytes += len(status)
	}
	if d.RRs > 0 {
		d.StatusBytes = float64(statusBytes) / float64(d.RRs)
	}
	d.ExtraRRs = d.RRs - d.Expected
	d.LostCounts = int64(ok) + d.Prefilled - d.SumCounts
	return d, nil
}

func (b *bench) createNamespace(ctx context.Context, name string) error {
	_, err := b.core.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	if err != nil {
		return fmt.Errorf("creating namespace %s: %w", name, err)
	}
	return nil
}
