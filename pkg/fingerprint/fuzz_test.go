package fingerprint

import (
	"encoding/hex"
	"testing"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// FuzzFingerprint: every input gives 64 lowercase hex digits, and a key
// never gives the fingerprint of a target.
func FuzzFingerprint(f *testing.F) {
	f.Add("", "default", "Deployment", "web", "apps")
	f.Add("prod", "", "Node", "worker-1", "")
	f.Add("\x00", "\x00", "\x00", "\x00", "\x00")
	f.Fuzz(func(t *testing.T, cluster, namespace, kind, name, group string) {
		ref := remediationv1alpha1.ResourceReference{APIVersion: group + "/v1", Kind: kind, Namespace: namespace, Name: name}
		target, legacy := ForObject(cluster, ref), LegacyForObject(cluster, ref)
		key := ForKey(cluster + namespace + group + kind + name)
		for _, fp := range []string{target, legacy, key} {
			if b, err := hex.DecodeString(fp); err != nil || len(b) != 32 || hex.EncodeToString(b) != fp {
				t.Fatalf("%q is not 64 lowercase hex digits", fp)
			}
		}
		if target == key || legacy == key || target == legacy {
			t.Fatalf("two domains share a fingerprint: target %s legacy %s key %s", target, legacy, key)
		}
	})
}
