package validation

import (
	"testing"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
)

// FuzzValidateSignal: validation never panics, and every error names a
// field under spec.
func FuzzValidateSignal(f *testing.F) {
	f.Add("alertmanager", "KubePodCrashLooping", "Firing", "apps/v1", "Deployment", "default", "web", "team", "platform", "")
	f.Add("", "", "Pending", "a/b/c", "1x", "Default", "a/b", "", "", "key")
	f.Add("s", "n", "Resolved", "v1", "Node", "", "worker-1", "__name__", "ALERTS", "incident-42")
	f.Fuzz(func(t *testing.T, source, name, status, apiVersion, kind, namespace, target, labelKey, labelValue, fp string) {
		s := &signals.Signal{Spec: signals.SignalSpec{
			Source: source, Name: name, Status: signals.SignalStatus(status), Fingerprint: fp,
			Target: signals.TargetReference{APIVersion: apiVersion, Kind: kind, Namespace: namespace, Name: target},
			Labels: map[string]string{labelKey: labelValue},
		}}
		for _, err := range ValidateSignal(s) {
			if len(err.Field) < 4 || err.Field[:4] != "spec" {
				t.Fatalf("error without a spec field path: %v", err)
			}
		}
	})
}
