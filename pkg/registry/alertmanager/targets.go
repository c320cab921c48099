package alertmanager

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/runtime/schema"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
)

// TargetRule maps an alert label to the kind of object the label names.
type TargetRule struct {
	// Label is the alert label whose value is the object's name.
	Label      string
	APIVersion string
	Kind       string
	// ClusterScoped kinds ignore the alert's namespace label; namespaced
	// kinds need it, else the rule does not apply.
	ClusterScoped bool
}

// DefaultTargetRules are the labels of kube-state-metrics and
// kube-prometheus alerts, most specific first. Prometheus' own job label
// names the scrape job, so Jobs come from job_name, as kube-state-metrics
// puts it.
var DefaultTargetRules = []string{
	"pod=v1/Pod",
	"deployment=apps/v1/Deployment",
	"statefulset=apps/v1/StatefulSet",
	"daemonset=apps/v1/DaemonSet",
	"replicaset=apps/v1/ReplicaSet",
	"job_name=batch/v1/Job",
	"cronjob=batch/v1/CronJob",
	"horizontalpodautoscaler=autoscaling/v2/HorizontalPodAutoscaler",
	"persistentvolumeclaim=v1/PersistentVolumeClaim",
	"persistentvolume=v1/PersistentVolume:Cluster",
	"node=v1/Node:Cluster",
	"namespace=v1/Namespace:Cluster",
}

// ParseTargetRules parses rules of the form label=apiVersion/Kind, with
// :Cluster appended for cluster-scoped kinds.
func ParseTargetRules(specs []string) ([]TargetRule, error) {
	rules := make([]TargetRule, 0, len(specs))
	for _, spec := range specs {
		label, ref, ok := strings.Cut(spec, "=")
		if !ok || label == "" {
			return nil, fmt.Errorf("target rule %q: want label=apiVersion/Kind[:Cluster]", spec)
		}
		ref, scope, scoped := strings.Cut(ref, ":")
		if scoped && scope != "Cluster" {
			return nil, fmt.Errorf("target rule %q: the only scope suffix is :Cluster", spec)
		}
		i := strings.LastIndex(ref, "/")
		if i < 0 {
			return nil, fmt.Errorf("target rule %q: want label=apiVersion/Kind[:Cluster]", spec)
		}
		apiVersion, kind := ref[:i], ref[i+1:]
		if gv, err := schema.ParseGroupVersion(apiVersion); err != nil || gv.Version == "" || kind == "" {
			return nil, fmt.Errorf("target rule %q: want label=apiVersion/Kind[:Cluster]", spec)
		}
		rules = append(rules, TargetRule{Label: label, APIVersion: apiVersion, Kind: kind, ClusterScoped: scoped})
	}
	return rules, nil
}

// target returns the object the first matching rule names, and the label
// it came from; ok is false if no rule matches.
func target(rules []TargetRule, labels map[string]string) (t signals.TargetReference, label string, ok bool) {
	namespace := labels["namespace"]
	for _, r := range rules {
		name := labels[r.Label]
		if name == "" || (!r.ClusterScoped && namespace == "") {
			continue
		}
		t = signals.TargetReference{APIVersion: r.APIVersion, Kind: r.Kind, Name: name}
		if !r.ClusterScoped {
			t.Namespace = namespace
		}
		return t, r.Label, true
	}
	return signals.TargetReference{}, "", false
}

// isFallback reports whether t is the target the storage gives an alert no
// rule matches: the alert series itself, which no discovery serves.
func isFallback(t signals.TargetReference) bool {
	return t.APIVersion == FallbackAPIVersion && t.Kind == FallbackKind
}
