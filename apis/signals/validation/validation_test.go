package validation

import (
	"strings"
	"testing"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
)

func validSignal() *signals.Signal {
	return &signals.Signal{Spec: signals.SignalSpec{
		Source: "alertmanager",
		Name:   "KubePodCrashLooping",
		Status: signals.SignalStatusFiring,
		Target: signals.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"},
		Labels: map[string]string{"__name__": "ALERTS", "severity": "critical"},
	}}
}

func TestValidateSignal(t *testing.T) {
	big := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[strings.Repeat("k", 10)+string(rune('a'+i%26))+strings.Repeat("x", i/26)] = "v"
		}
		return m
	}
	tests := []struct {
		name   string
		mutate func(*signals.Signal)
		// want is the field path and type of every expected error, in order.
		want []string
	}{
		{name: "valid", mutate: func(*signals.Signal) {}},
		{name: "cluster-scoped target", mutate: func(s *signals.Signal) {
			s.Spec.Target = signals.TargetReference{APIVersion: "v1", Kind: "Node", Name: "worker-1"}
		}},
		{name: "resolved", mutate: func(s *signals.Signal) { s.Spec.Status = signals.SignalStatusResolved }},
		{name: "own fingerprint", mutate: func(s *signals.Signal) { s.Spec.Fingerprint = "incident-42" }},
		{
			name:   "missing source and name",
			mutate: func(s *signals.Signal) { s.Spec.Source, s.Spec.Name = "", "" },
			want:   []string{"spec.source: Required value", "spec.name: Required value"},
		},
		{
			name:   "unknown status",
			mutate: func(s *signals.Signal) { s.Spec.Status = "Pending" },
			want:   []string{"spec.status: Unsupported value"},
		},
		{
			name:   "empty target",
			mutate: func(s *signals.Signal) { s.Spec.Target = signals.TargetReference{} },
			want:   []string{"spec.target.apiVersion: Required value", "spec.target.kind: Required value", "spec.target.name: Required value"},
		},
		{
			name: "malformed target",
			mutate: func(s *signals.Signal) {
				s.Spec.Target = signals.TargetReference{APIVersion: "apps/v1/x", Kind: "dep_loyment", Namespace: "Default", Name: "a/b"}
			},
			want: []string{"spec.target.apiVersion: Invalid value", "spec.target.kind: Invalid value", "spec.target.namespace: Invalid value", "spec.target.name: Invalid value"},
		},
		{
			// No object can be named so: kube-apiserver's name rule.
			name:   "target name breaking the object-name rules",
			mutate: func(s *signals.Signal) { s.Spec.Target.Name = "Web!" },
			want:   []string{"spec.target.name: Invalid value"},
		},
		{name: "RBAC object named as a path segment", mutate: func(s *signals.Signal) {
			s.Spec.Target = signals.TargetReference{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRole", Name: "system:node"}
		}},
		{name: "plural resource name with a dash", mutate: func(s *signals.Signal) { s.Spec.Target.Kind = "foo-bars" }},
		{name: "target uid", mutate: func(s *signals.Signal) { s.Spec.Target.UID = "5f1c9b3e-2d4a-4c7e-9a1b-0e8f7d6c5b4a" }},
		{
			name:   "target uid too long",
			mutate: func(s *signals.Signal) { s.Spec.Target.UID = types.UID(strings.Repeat("u", MaxUIDLength+1)) },
			want:   []string{"spec.target.uid: Too long"},
		},
		{
			name:   "fingerprint too long",
			mutate: func(s *signals.Signal) { s.Spec.Fingerprint = strings.Repeat("f", MaxFingerprintLength+1) },
			want:   []string{"spec.fingerprint: Too long"},
		},
		{
			name:   "description too long",
			mutate: func(s *signals.Signal) { s.Spec.Description = strings.Repeat("d", MaxDescriptionLength+1) },
			want:   []string{"spec.description: Too long"},
		},
		{
			name:   "control characters in name",
			mutate: func(s *signals.Signal) { s.Spec.Name = "a\x00b" },
			want:   []string{"spec.name: Invalid value"},
		},
		{
			name:   "too many labels",
			mutate: func(s *signals.Signal) { s.Spec.Labels = big(MaxMapEntries + 1) },
			want:   []string{"spec.labels: Too many"},
		},
		{
			name: "annotations too large",
			mutate: func(s *signals.Signal) {
				s.Spec.Annotations = map[string]string{"runbook": strings.Repeat("r", MaxAnnotationsSize)}
			},
			want: []string{"spec.annotations: Too long"},
		},
		{
			name:   "empty label key",
			mutate: func(s *signals.Signal) { s.Spec.Labels = map[string]string{"": "x"} },
			want:   []string{"spec.labels: Invalid value"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := validSignal()
			tt.mutate(s)
			errs := ValidateSignal(s)
			if got := describe(errs); strings.Join(got, "\n") != strings.Join(tt.want, "\n") {
				t.Errorf("errors:\n%s\nwant:\n%s\nfull: %v", strings.Join(got, "\n"), strings.Join(tt.want, "\n"), errs)
			}
		})
	}
}

func describe(errs field.ErrorList) []string {
	var out []string
	for _, e := range errs {
		out = append(out, e.Field+": "+e.Type.String())
	}
	return out
}

func BenchmarkValidateSignal(b *testing.B) {
	s := validSignal()
	b.ReportAllocs()
	for b.Loop() {
		ValidateSignal(s)
	}
}

func TestTruncate(t *testing.T) {
	for _, tc := range []struct {
		in   string
		n    int
		want string
	}{
		{"héllo", 2, "h"},
		{"héllo", 3, "hé"},
		{"héllo", 10, "héllo"},
		{"é", 1, ""},
	} {
		if got := Truncate(tc.in, tc.n); got != tc.want {
			t.Errorf("Truncate(%q, %d) = %q, want %q", tc.in, tc.n, got, tc.want)
		}
	}
}
