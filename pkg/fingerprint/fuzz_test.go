package fingerprint

import (
	"encoding/hex"
	"testing"
)

// FuzzFingerprint: every input gives 64 lowercase hex digits, and a key
// never gives the fingerprint of a target.
func FuzzFingerprint(f *testing.F) {
	f.Add("", "default", "Deployment", "web")
	f.Add("prod", "", "Node", "worker-1")
	f.Add("\x00", "\x00", "\x00", "\x00")
	f.Fuzz(func(t *testing.T, cluster, namespace, kind, name string) {
		target := ForTarget(Target{ClusterID: cluster, Namespace: namespace, Kind: kind, Name: name})
		key := ForKey(cluster + namespace + kind + name)
		for _, fp := range []string{target, key} {
			if b, err := hex.DecodeString(fp); err != nil || len(b) != 32 || hex.EncodeToString(b) != fp {
				t.Fatalf("%q is not 64 lowercase hex digits", fp)
			}
		}
		if target == key {
			t.Fatalf("target and key share fingerprint %s", target)
		}
	})
}
