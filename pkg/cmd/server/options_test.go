package server

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"k8s.io/apimachinery/pkg/labels"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"

	alertmanagerregistry "github.com/signal-apiserver/signal-apiserver/pkg/registry/alertmanager"
)

func TestMain(m *testing.M) {
	// Validate applies the logging flags, which k8s.io/component-base
	// allows once per process unless told to accept the same again. Apply
	// the defaults before any test starts goroutines that log: applying
	// them again is then a no-op, not a write racing with their reads.
	logsapi.ReapplyHandling = logsapi.ReapplyHandlingIgnoreUnchanged
	if err := logsapi.ValidateAndApply(logs.NewOptions(), nil); err != nil {
		panic(err)
	}
	os.Exit(m.Run())
}

// parse returns options with args parsed by the flags of Flags, as the
// command does.
func parse(t *testing.T, args ...string) *Options {
	t.Helper()
	o := NewOptions()
	fs := pflag.NewFlagSet("signal-apiserver", pflag.ContinueOnError)
	for _, f := range o.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	return o
}

// messages returns the messages of an aggregate error, or of err alone.
func messages(err error) []string {
	if err == nil {
		return nil
	}
	var agg utilerrors.Aggregate
	if !errors.As(err, &agg) {
		return []string{err.Error()}
	}
	var msgs []string
	for _, e := range agg.Errors() {
		msgs = append(msgs, e.Error())
	}
	return msgs
}

func TestDefaults(t *testing.T) {
	o := parse(t)
	if o.RecommendedOptions.Etcd != nil {
		t.Errorf("RecommendedOptions.Etcd = %+v, want nil: nothing of a Signal is stored", o.RecommendedOptions.Etcd)
	}
	if o.RecommendedOptions.Features.EnablePriorityAndFairness {
		t.Error("API Priority and Fairness is on by default, want off (--max-requests-inflight bounds the work)")
	}
	want := struct {
		ClusterID, ClusterScopedNamespace, NamespaceSelector string
		ResolveOwners                                        bool
		OwnerCacheTTL, ShutdownDelay                         time.Duration
		KubeAPIQPS                                           float32
		KubeAPIBurst, MaxRequestsInFlight, MaxMutating       int
		AlertmanagerTargetLabels                             []string
		ServingCASecret                                      string
	}{
		ClusterScopedNamespace:   "signal-apiserver",
		ResolveOwners:            true,
		OwnerCacheTTL:            5 * time.Minute,
		KubeAPIQPS:               500,
		KubeAPIBurst:             1000,
		MaxRequestsInFlight:      400,
		MaxMutating:              200,
		AlertmanagerTargetLabels: alertmanagerregistry.DefaultTargetRules,
	}
	got := want
	got.ClusterID, got.ClusterScopedNamespace, got.NamespaceSelector = o.ClusterID, o.ClusterScopedNamespace, o.NamespaceSelector
	got.ResolveOwners, got.OwnerCacheTTL, got.ShutdownDelay = o.ResolveOwners, o.OwnerCacheTTL, o.ShutdownDelay
	got.KubeAPIQPS, got.KubeAPIBurst = o.KubeAPIQPS, o.KubeAPIBurst
	got.MaxRequestsInFlight, got.MaxMutating = o.MaxRequestsInFlight, o.MaxMutatingRequestsInFlight
	got.AlertmanagerTargetLabels, got.ServingCASecret = o.AlertmanagerTargetLabels, o.ServingCert.CASecret
	if !reflect.DeepEqual(got, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", got, want)
	}

	// The defaults are valid, and their target rules are the default ones.
	if err := o.Complete(); err != nil {
		t.Fatalf("Complete: %v", err)
	}
	if err := o.Validate(); err != nil {
		t.Fatalf("Validate: %v", err)
	}
	if len(o.targetRules) != len(alertmanagerregistry.DefaultTargetRules) {
		t.Fatalf("%d target rules, want %d", len(o.targetRules), len(alertmanagerregistry.DefaultTargetRules))
	}
	first, last := o.targetRules[0], o.targetRules[len(o.targetRules)-1]
	if want := (alertmanagerregistry.TargetRule{Label: "pod", APIVersion: "v1", Kind: "Pod"}); first != want {
		t.Errorf("first target rule = %+v, want %+v", first, want)
	}
	if want := (alertmanagerregistry.TargetRule{Label: "namespace", APIVersion: "v1", Kind: "Namespace", ClusterScoped: true}); last != want {
		t.Errorf("last target rule = %+v, want %+v", last, want)
	}
	if !o.namespaceSelector.Empty() {
		t.Errorf("namespace selector = %q, want empty (every namespace)", o.namespaceSelector)
	}
}

func TestEtcdFlagsAbsent(t *testing.T) {
	o := NewOptions()
	for _, name := range []string{"etcd-servers", "etcd-prefix", "storage-backend"} {
		for _, fs := range o.Flags().FlagSets {
			if fs.Lookup(name) != nil {
				t.Errorf("--%s is a flag, but the server has no storage of its own", name)
			}
		}
	}
}

func TestComplete(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantErrs  []string
		wantRules []alertmanagerregistry.TargetRule
		wantSel   string
	}{{
		name: "rules in order, with a cluster scope, and a selector",
		args: []string{"--alertmanager-target-labels=node=v1/Node:Cluster,app=apps/v1/Deployment", "--namespace-selector=kubernaut.ai/managed=true"},
		wantRules: []alertmanagerregistry.TargetRule{
			{Label: "node", APIVersion: "v1", Kind: "Node", ClusterScoped: true},
			{Label: "app", APIVersion: "apps/v1", Kind: "Deployment"},
		},
		wantSel: "kubernaut.ai/managed=true",
	}, {
		name:      "no rules",
		args:      []string{"--alertmanager-target-labels="},
		wantRules: []alertmanagerregistry.TargetRule{},
	}, {
		name:     "a rule without a kind",
		args:     []string{"--alertmanager-target-labels=pod=v1"},
		wantErrs: []string{`--alertmanager-target-labels: target rule "pod=v1": want label=apiVersion/Kind[:Cluster]`},
	}, {
		name:     "an invalid selector",
		args:     []string{"--namespace-selector=a=b=c"},
		wantErrs: []string{"--namespace-selector: " + selectorError("a=b=c")},
	}, {
		name:     "a scope other than Cluster",
		args:     []string{"--alertmanager-target-labels=node=v1/Node:Namespaced"},
		wantErrs: []string{`--alertmanager-target-labels: target rule "node=v1/Node:Namespaced": the only scope suffix is :Cluster`},
	}, {
		name:     "a rule without a label",
		args:     []string{"--alertmanager-target-labels==v1/Pod"},
		wantErrs: []string{`--alertmanager-target-labels: target rule "=v1/Pod": want label=apiVersion/Kind[:Cluster]`},
	}, {
		name: "both invalid: both reported",
		args: []string{"--alertmanager-target-labels=pod", "--namespace-selector=a=b=c"},
		wantErrs: []string{
			`--alertmanager-target-labels: target rule "pod": want label=apiVersion/Kind[:Cluster]`,
			"--namespace-selector: " + selectorError("a=b=c"),
		},
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := parse(t, tt.args...)
			msgs := messages(o.Complete())
			if len(msgs) != len(tt.wantErrs) {
				t.Fatalf("Complete errors %q, want %q", msgs, tt.wantErrs)
			}
			for i := range msgs {
				if msgs[i] != tt.wantErrs[i] {
					t.Errorf("Complete error %d = %q, want %q", i, msgs[i], tt.wantErrs[i])
				}
			}
			if tt.wantErrs != nil {
				return
			}
			if !reflect.DeepEqual(o.targetRules, tt.wantRules) {
				t.Errorf("target rules = %+v, want %+v", o.targetRules, tt.wantRules)
			}
			if got := o.namespaceSelector.String(); got != tt.wantSel {
				t.Errorf("namespace selector = %q, want %q", got, tt.wantSel)
			}
		})
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		complete bool
		want     []string
	}{
		{name: "defaults", complete: true},
		{name: "not completed", want: []string{"the options were not completed"}},
		{
			name: "cluster-scoped namespace not a DNS label", complete: true,
			args: []string{"--cluster-scoped-namespace=Signal_Apiserver"},
			want: []string{"--cluster-scoped-namespace: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"},
		},
		{
			name: "empty cluster-scoped namespace", complete: true,
			args: []string{"--cluster-scoped-namespace="},
			want: []string{"--cluster-scoped-namespace: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"},
		},
		{
			name: "cluster ID of 254 characters", complete: true,
			args: []string{"--cluster-id=" + string(make254())},
			want: []string{"--cluster-id: must be no more than 253 characters"},
		},
		{name: "cluster ID of 253 characters", complete: true, args: []string{"--cluster-id=" + string(make254()[1:])}},
		{
			name: "zero owner cache TTL", complete: true,
			args: []string{"--owner-cache-ttl=0"},
			want: []string{"--owner-cache-ttl must be positive"},
		},
		{
			name: "zero QPS", complete: true,
			args: []string{"--kube-api-qps=0"},
			want: []string{"--kube-api-qps and --kube-api-burst must be positive"},
		},
		{
			name: "negative burst", complete: true,
			args: []string{"--kube-api-burst=-1"},
			want: []string{"--kube-api-qps and --kube-api-burst must be positive"},
		},
		{
			name: "negative max requests in flight", complete: true,
			args: []string{"--max-requests-inflight=-1"},
			want: []string{"--max-requests-inflight and --max-mutating-requests-inflight must not be negative"},
		},
		{
			name: "negative max mutating requests in flight", complete: true,
			args: []string{"--max-mutating-requests-inflight=-1"},
			want: []string{"--max-requests-inflight and --max-mutating-requests-inflight must not be negative"},
		},
		{name: "no in-flight limits", complete: true, args: []string{"--max-requests-inflight=0", "--max-mutating-requests-inflight=0"}},
		{
			name: "negative shutdown delay", complete: true,
			args: []string{"--shutdown-delay-duration=-1s"},
			want: []string{"--shutdown-delay-duration must not be negative"},
		},
		{
			name: "serving CA secret without a namespace", complete: true,
			args: []string{"--serving-ca-secret=ca"},
			want: []string{`--serving-ca-secret: want namespace/name, got "ca"`},
		},
		{
			name: "unknown logging format", complete: true,
			args: []string{"--logging-format=xml"},
			want: []string{`logging flags: format: Invalid value: "xml": Unsupported log format`},
		},
		{
			name: "every problem at once", complete: true,
			args: []string{"--cluster-scoped-namespace=A", "--owner-cache-ttl=-1s", "--kube-api-qps=-1", "--max-mutating-requests-inflight=-5", "--shutdown-delay-duration=-1s"},
			want: []string{
				"--cluster-scoped-namespace: a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')",
				"--owner-cache-ttl must be positive",
				"--kube-api-qps and --kube-api-burst must be positive",
				"--max-requests-inflight and --max-mutating-requests-inflight must not be negative",
				"--shutdown-delay-duration must not be negative",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := parse(t, tt.args...)
			if tt.complete {
				if err := o.Complete(); err != nil {
					t.Fatalf("Complete: %v", err)
				}
			}
			if got := messages(o.Validate()); !slices.Equal(got, tt.want) {
				t.Errorf("Validate:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// selectorError is labels.Parse's own wording of what is wrong with s.
func selectorError(s string) string {
	_, err := labels.Parse(s)
	if err == nil {
		panic(s + " is a valid selector")
	}
	return err.Error()
}

func make254() []byte {
	b := make([]byte, 254)
	for i := range b {
		b[i] = 'a'
	}
	return b
}

// TestConfigUsesCompletedValues proves that Config reads what Complete
// derived, not the flags again: flags changed after Complete change
// nothing.
func TestConfigUsesCompletedValues(t *testing.T) {
	o := parse(t,
		"--alertmanager-target-labels=node=v1/Node:Cluster",
		"--namespace-selector=team in (a,b)",
		"--cluster-id=east",
		"--cluster-scoped-namespace=signals",
		"--kube-api-qps=7", "--kube-api-burst=9",
		"--max-requests-inflight=11", "--max-mutating-requests-inflight=13",
		"--shutdown-delay-duration=3s",
		"--resolve-owners=false",
	)
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	o.AlertmanagerTargetLabels = []string{"not a rule"}
	o.NamespaceSelector = "!!!"

	// Config reads no cluster: a kubeconfig naming an address where
	// nothing listens, and no delegated authentication or authorization,
	// which would read kube-system's ConfigMaps.
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
users: [{name: u, user: {token: t}}]
contexts: [{name: c, context: {cluster: c, user: u}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	o.RecommendedOptions.CoreAPI.CoreAPIKubeconfigPath = kubeconfig
	o.RecommendedOptions.Authentication = nil
	o.RecommendedOptions.Authorization = nil
	o.RecommendedOptions.SecureServing.BindPort = 0
	o.RecommendedOptions.Admission = nil

	config, err := o.Config()
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	extra := config.ExtraConfig
	wantRules := []alertmanagerregistry.TargetRule{{Label: "node", APIVersion: "v1", Kind: "Node", ClusterScoped: true}}
	if !reflect.DeepEqual(extra.AlertmanagerTargetRules, wantRules) {
		t.Errorf("AlertmanagerTargetRules = %+v, want %+v", extra.AlertmanagerTargetRules, wantRules)
	}
	if extra.ManagedNamespaces == nil {
		t.Fatal("ManagedNamespaces is nil, want the gate of the selector")
	}
	if got, want := extra.ManagedNamespaces.String(), "team in (a,b)"; got != want {
		t.Errorf("ManagedNamespaces selector = %q, want %q", got, want)
	}
	if extra.Keys.ClusterID != "east" || extra.Keys.ClusterScopedNamespace != "signals" {
		t.Errorf("Keys = %+v, want cluster ID east and namespace signals", extra.Keys)
	}
	if extra.Keys.Owners != nil {
		t.Errorf("Keys.Owners = %v with --resolve-owners=false, want nil", extra.Keys.Owners)
	}
	g := config.GenericConfig
	if g.MaxRequestsInFlight != 11 || g.MaxMutatingRequestsInFlight != 13 || g.ShutdownDelayDuration != 3*time.Second {
		t.Errorf("in flight %d/%d, shutdown delay %v; want 11/13, 3s", g.MaxRequestsInFlight, g.MaxMutatingRequestsInFlight, g.ShutdownDelayDuration)
	}
	if g.MaxRequestBodyBytes != 3<<20 {
		t.Errorf("MaxRequestBodyBytes = %d, want %d", g.MaxRequestBodyBytes, 3<<20)
	}
	if g.FlowControl != nil {
		t.Error("API Priority and Fairness is configured, want the max-in-flight filter")
	}
	// The server's own client is limited by --kube-api-qps and -burst; the
	// generic client config is left as it was.
	if g.ClientConfig.QPS == 7 || g.ClientConfig.Burst == 9 {
		t.Errorf("the generic client config was changed to QPS %v burst %d", g.ClientConfig.QPS, g.ClientConfig.Burst)
	}
}

func TestConfigWithoutSelectorOrOwnersOff(t *testing.T) {
	o := parse(t)
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	kubeconfig := filepath.Join(t.TempDir(), "kubeconfig")
	if err := os.WriteFile(kubeconfig, []byte(`apiVersion: v1
kind: Config
clusters: [{name: c, cluster: {server: "https://127.0.0.1:1"}}]
contexts: [{name: c, context: {cluster: c}}]
current-context: c
`), 0o600); err != nil {
		t.Fatal(err)
	}
	o.RecommendedOptions.CoreAPI.CoreAPIKubeconfigPath = kubeconfig
	o.RecommendedOptions.Authentication = nil
	o.RecommendedOptions.Authorization = nil
	o.RecommendedOptions.SecureServing.BindPort = 0
	o.RecommendedOptions.Admission = nil
	config, err := o.Config()
	if err != nil {
		t.Fatalf("Config: %v", err)
	}
	if config.ExtraConfig.ManagedNamespaces != nil {
		t.Errorf("ManagedNamespaces = %q with no --namespace-selector, want nil (every namespace)", config.ExtraConfig.ManagedNamespaces)
	}
	if config.ExtraConfig.Keys.Owners == nil {
		t.Error("Keys.Owners is nil with --resolve-owners on by default, want a resolver")
	}
}
