package eventsource

import (
	"errors"
	"os"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/spf13/pflag"
	utilerrors "k8s.io/apimachinery/pkg/util/errors"
	"k8s.io/component-base/logs"
	logsapi "k8s.io/component-base/logs/api/v1"
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
	fs := pflag.NewFlagSet("signal-event-source", pflag.ContinueOnError)
	for _, f := range o.Flags().FlagSets {
		fs.AddFlagSet(f)
	}
	if err := fs.Parse(args); err != nil {
		t.Fatalf("parsing %q: %v", args, err)
	}
	return o
}

func TestDefaults(t *testing.T) {
	o := parse(t)
	o.Logs = nil
	want := &Options{
		KubeAPIQPS:     50,
		KubeAPIBurst:   100,
		MaxEventAge:    10 * time.Minute,
		PerObjectQPS:   0.1,
		PerObjectBurst: 5,
		Workers:        4,
		BindAddress:    ":8080",
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("defaults:\n got %+v\nwant %+v", o, want)
	}
}

func TestFlags(t *testing.T) {
	o := parse(t,
		"--kubeconfig=/etc/kubeconfig", "--kube-api-qps=5", "--kube-api-burst=6",
		"--namespaces=a,b", "--exclude-namespaces=kube-system", "--reasons=BackOff,Failed", "--exclude-reasons=Pulling",
		"--max-event-age=0", "--per-object-qps=2.5", "--per-object-burst=3", "--workers=8", "--bind-address=127.0.0.1:9090",
	)
	o.Logs = nil
	want := &Options{
		Kubeconfig:        "/etc/kubeconfig",
		KubeAPIQPS:        5,
		KubeAPIBurst:      6,
		Namespaces:        []string{"a", "b"},
		ExcludeNamespaces: []string{"kube-system"},
		Reasons:           []string{"BackOff", "Failed"},
		ExcludeReasons:    []string{"Pulling"},
		PerObjectQPS:      2.5,
		PerObjectBurst:    3,
		Workers:           8,
		BindAddress:       "127.0.0.1:9090",
	}
	if !reflect.DeepEqual(o, want) {
		t.Errorf("parsed:\n got %+v\nwant %+v", o, want)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{name: "defaults"},
		{name: "no maximum event age", args: []string{"--max-event-age=0"}},
		{name: "bind to a port on every address", args: []string{"--bind-address=:0"}},
		{name: "zero QPS", args: []string{"--kube-api-qps=0"}, want: []string{"--kube-api-qps and --kube-api-burst must be positive"}},
		{name: "negative burst", args: []string{"--kube-api-burst=-1"}, want: []string{"--kube-api-qps and --kube-api-burst must be positive"}},
		{name: "zero per-object QPS", args: []string{"--per-object-qps=0"}, want: []string{"--per-object-qps and --per-object-burst must be positive"}},
		{name: "zero per-object burst", args: []string{"--per-object-burst=0"}, want: []string{"--per-object-qps and --per-object-burst must be positive"}},
		{name: "negative event age", args: []string{"--max-event-age=-1s"}, want: []string{"--max-event-age must not be negative"}},
		{name: "no workers", args: []string{"--workers=0"}, want: []string{"--workers must be positive"}},
		{name: "bind address without a port", args: []string{"--bind-address=127.0.0.1"}, want: []string{"--bind-address: address 127.0.0.1: missing port in address"}},
		{name: "unknown logging format", args: []string{"--logging-format=xml"}, want: []string{`logging flags: format: Invalid value: "xml": Unsupported log format`}},
		{
			name: "every problem at once",
			args: []string{"--kube-api-qps=-1", "--per-object-qps=-1", "--max-event-age=-1m", "--workers=-1", "--bind-address=nowhere"},
			want: []string{
				"--kube-api-qps and --kube-api-burst must be positive",
				"--per-object-qps and --per-object-burst must be positive",
				"--max-event-age must not be negative",
				"--workers must be positive",
				"--bind-address: address nowhere: missing port in address",
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			if err := parse(t, tt.args...).Validate(); err != nil {
				var agg utilerrors.Aggregate
				if !errors.As(err, &agg) {
					t.Fatalf("Validate: %v, want an aggregate", err)
				}
				for _, e := range agg.Errors() {
					got = append(got, e.Error())
				}
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}
