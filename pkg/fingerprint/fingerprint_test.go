package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"testing"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// The vectors pin the fingerprint: changing them splits every live
// remediation in two, so a change here needs a migration plan (the last one
// added the API group; LegacyForObject finds what came before).
func TestForObjectVectors(t *testing.T) {
	tests := []struct {
		name   string
		target object
		want   string
	}{
		{
			name:   "namespaced deployment",
			target: obj("", "apps/v1", "default", "Deployment", "web"),
			want:   "a90244ea4ea6db3d52325735622fa704d707969cce8169714bdcf1b692e0adb3",
		},
		{
			name:   "cluster-scoped node",
			target: obj("", "v1", "", "Node", "worker-1"),
			want:   "4f88136043e1ae8b4b20f4ead2477f7ef55fcda591153e3368c7e2aedff922f4",
		},
		{
			name:   "cluster id set",
			target: obj("prod-eu", "apps/v1", "default", "Deployment", "web"),
			want:   "7bb458a1f8be883d4663eca9c74a38c7acc48d8c1253b886e024c6e1cad4e204",
		},
		{
			name:   "core service",
			target: obj("", "v1", "default", "Service", "web"),
			want:   "0559ed2a385d541bf860949be4d5293a1564ccc3e77859e83f33483d9af8a26f",
		},
		{
			name:   "knative service of the same name",
			target: obj("", "serving.knative.dev/v1", "default", "Service", "web"),
			want:   "6938da1dc42618462753103f71bb009cfb11a1e5511fe9c3c483914e6b39b869",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ForObject(tt.target.clusterID, tt.target.ref); got != tt.want {
				t.Errorf("ForObject(%+v) = %s, want %s", tt.target, got, tt.want)
			}
		})
	}
}

// The legacy vectors are the fingerprints earlier versions gave these
// targets; RemediationRequests carrying them are found after an upgrade.
func TestLegacyForObjectVectors(t *testing.T) {
	tests := []struct {
		name   string
		target object
		want   string
	}{
		{
			name:   "namespaced deployment, group ignored",
			target: obj("", "apps/v1", "default", "Deployment", "web"),
			want:   "bc83e35971f7e49bd45c2cb07855bb2b3cae0173414b2e4afe01675ba98242bb",
		},
		{
			name:   "cluster-scoped node",
			target: obj("", "v1", "", "Node", "worker-1"),
			want:   "bad554a1725fe9fc87a82835864ae81b17ca872941aa81575463228e64f1ff33",
		},
		{
			name:   "cluster id set",
			target: obj("prod-eu", "v1", "default", "Deployment", "web"),
			want:   "dfafa9fd6e9a1b30e7c6b5057da03401d9e38e31cef1fcd0f09762503a63a882",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := LegacyForObject(tt.target.clusterID, tt.target.ref); got != tt.want {
				t.Errorf("LegacyForObject(%+v) = %s, want %s", tt.target, got, tt.want)
			}
		})
	}
}

func TestForKeyVectors(t *testing.T) {
	tests := []struct {
		key  string
		want string
	}{
		{key: "incident-42", want: "cc51eda806b0b55e51bdee7f32f34c3286ba1f7f6730051e3682d82cd2eea054"},
		{key: "a", want: "4fdf1fa9049614f56b68290e142e732da73de5472c0babeb0832bdbcdd519616"},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			if got := ForKey(tt.key); got != tt.want {
				t.Errorf("ForKey(%q) = %s, want %s", tt.key, got, tt.want)
			}
		})
	}
}

// TestEncoding checks the documented construction against an independent
// computation, so docs/dedup.md can be followed by hand.
func TestEncoding(t *testing.T) {
	raw := sha256.Sum256([]byte("signals.remediation.io/v1/object\x00\x00default\x00apps\x00Deployment\x00web\x00"))
	if got, want := forObj(obj("", "apps/v1", "default", "Deployment", "web")), hex.EncodeToString(raw[:]); got != want {
		t.Errorf("ForObject = %s, want %s", got, want)
	}
	raw = sha256.Sum256([]byte("signals.remediation.io/v1/key\x00incident-42\x00"))
	if got, want := ForKey("incident-42"), hex.EncodeToString(raw[:]); got != want {
		t.Errorf("ForKey = %s, want %s", got, want)
	}
}

func TestDomainsAndFieldsAreSeparated(t *testing.T) {
	seen := map[string]string{}
	add := func(what, fp string) {
		t.Helper()
		if len(fp) != 64 {
			t.Fatalf("%s: fingerprint %q is not 64 hex characters", what, fp)
		}
		if prev, ok := seen[fp]; ok {
			t.Fatalf("%s and %s share fingerprint %s", what, prev, fp)
		}
		seen[fp] = what
	}
	add("target a/b", forObj(obj("", "v1", "a", "b", "c")))
	add("target ab/", forObj(obj("", "v1", "ab", "", "c")))
	add("target cluster", forObj(obj("a", "v1", "", "b", "c")))
	add("target group", forObj(obj("", "b/v1", "a", "c", "d")))
	add("legacy target", legacyObj(obj("", "v1", "a", "b", "c")))
	add("key of same bytes", ForKey("\x00a\x00b\x00c"))
	add("alert name does not matter", ForKey("a"))
}

func BenchmarkForObject(b *testing.B) {
	t := obj("", "apps/v1", "payments", "Deployment", "checkout-api")
	b.ReportAllocs()
	for b.Loop() {
		forObj(t)
	}
}

// object is a target with its cluster.
type object struct {
	clusterID string
	ref       remediationv1alpha1.ResourceReference
}

func obj(clusterID, apiVersion, namespace, kind, name string) object {
	return object{clusterID, remediationv1alpha1.ResourceReference{APIVersion: apiVersion, Kind: kind, Namespace: namespace, Name: name}}
}

func forObj(o object) string    { return ForObject(o.clusterID, o.ref) }
func legacyObj(o object) string { return LegacyForObject(o.clusterID, o.ref) }
