// Package fingerprint derives the key under which signals are deduplicated.
//
// A fingerprint is the lowercase hex SHA-256 of a domain tag and the
// identity fields, joined with NUL bytes. Two domains exist: one for the
// target identity (the default), one for a key the sender chose. The tags
// differ, so a caller-chosen key can never produce a default fingerprint.
package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

const (
	targetDomain = "signals.remediation.io/v1/target"
	keyDomain    = "signals.remediation.io/v1/key"
)

// Target identifies the object a signal is about. The alert name is left
// out on purpose: every signal about one workload lands on one remediation.
type Target struct {
	// ClusterID tells clusters apart when several feed one remediation
	// system; empty for a single cluster.
	ClusterID string
	Namespace string
	Kind      string
	Name      string
}

// ForTarget returns the default fingerprint of signals about t.
func ForTarget(t Target) string {
	return sum(targetDomain, t.ClusterID, t.Namespace, t.Kind, t.Name)
}

// ForKey returns the fingerprint of signals that carry the sender's own
// deduplication key.
func ForKey(key string) string {
	return sum(keyDomain, key)
}

// sum hashes the fields with a NUL after each one. The target fields are
// validated names that cannot hold a NUL, so the encoding is unambiguous;
// a key is the last field of its domain, so it may hold anything.
func sum(fields ...string) string {
	h := sha256.New()
	for _, f := range fields {
		write(h, f)
	}
	return hex.EncodeToString(h.Sum(nil))
}

func write(h hash.Hash, s string) {
	h.Write([]byte(s)) //nolint:errcheck // hash.Hash.Write never fails
	h.Write([]byte{0}) //nolint:errcheck // hash.Hash.Write never fails
}
