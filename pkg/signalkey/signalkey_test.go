package signalkey

import (
	"context"
	"errors"
	"testing"

	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	"github.com/signal-apiserver/signal-apiserver/pkg/targets"
)

// kinds is a discovery of Deployments (namespaced) and Nodes (cluster-scoped).
type kinds struct{}

func (kinds) Resolve(_ context.Context, apiVersion, kind string) (targets.Kind, error) {
	switch {
	case apiVersion == "apps/v1" && (kind == "Deployment" || kind == "deploy"):
		return targets.Kind{GroupVersionKind: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, Namespaced: true}, nil
	case apiVersion == "v1" && (kind == "Node" || kind == "nodes"):
		return targets.Kind{GroupVersionKind: schema.GroupVersionKind{Version: "v1", Kind: "Node"}}, nil
	case kind == "Unavailable":
		return targets.Kind{}, targets.ErrDiscoveryUnavailable
	}
	return targets.Kind{}, &targets.UnknownKindError{APIVersion: apiVersion, Kind: kind}
}

func TestTarget(t *testing.T) {
	p := &Policy{Kinds: kinds{}, ClusterScopedNamespace: "signal-apiserver"}
	path := field.NewPath("spec", "target")
	for _, tc := range []struct {
		name      string
		in        signals.TargetReference
		want      signals.TargetReference
		wantField string
		wantErr   error
	}{
		{name: "canonical", in: signals.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "payments", Name: "web"},
			want: signals.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "payments", Name: "web"}},
		{name: "short name", in: signals.TargetReference{APIVersion: "apps/v1", Kind: "deploy", Namespace: "payments", Name: "web"},
			want: signals.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "payments", Name: "web"}},
		{name: "cluster-scoped", in: signals.TargetReference{APIVersion: "v1", Kind: "nodes", Name: "node-1"},
			want: signals.TargetReference{APIVersion: "v1", Kind: "Node", Name: "node-1"}},
		{name: "unknown kind", in: signals.TargetReference{APIVersion: "apps/v1", Kind: "Deploymnet", Namespace: "payments", Name: "web"}, wantField: "spec.target.kind"},
		{name: "namespaced kind without a namespace", in: signals.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Name: "web"}, wantField: "spec.target.namespace"},
		// The side door: a cluster-scoped target must not derive its RR's
		// namespace (and so the gate's) from a namespace its sender chose.
		{name: "cluster-scoped kind with a namespace", in: signals.TargetReference{APIVersion: "v1", Kind: "Node", Namespace: "payments", Name: "node-1"}, wantField: "spec.target.namespace"},
		{name: "discovery unavailable", in: signals.TargetReference{APIVersion: "v1", Kind: "Unavailable", Name: "x"}, wantErr: targets.ErrDiscoveryUnavailable},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, errs, err := p.Target(context.Background(), tc.in, path)
			if !errors.Is(err, tc.wantErr) {
				t.Fatalf("error %v, want %v", err, tc.wantErr)
			}
			switch {
			case tc.wantField != "":
				if len(errs) != 1 || errs[0].Field != tc.wantField {
					t.Fatalf("field errors %v, want one on %s", errs, tc.wantField)
				}
			case len(errs) > 0:
				t.Fatalf("field errors %v", errs)
			case tc.wantErr == nil && got != tc.want:
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}
