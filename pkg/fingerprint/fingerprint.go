// Package fingerprint derives the key under which signals are deduplicated.
//
// A fingerprint is the lowercase hex SHA-256 of a domain tag and the
// identity fields, joined with NUL bytes. Two domains exist: one for the
// target object (the default), one for a key the sender chose. The tags
// differ, so a caller-chosen key can never produce a default fingerprint.
package fingerprint

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
)

const (
	objectDomain = "signals.remediation.io/v1/object"
	keyDomain    = "signals.remediation.io/v1/key"
	// legacyTargetDomain is the default fingerprint's domain before the
	// API group was part of it.
	legacyTargetDomain = "signals.remediation.io/v1/target"
)

// Target identifies the object a signal is about. The alert name is left
// out on purpose: every signal about one workload lands on one remediation.
type Target struct {
	// ClusterID tells clusters apart when several feed one remediation
	// system; empty for a single cluster.
	ClusterID string
	Namespace string
	// Group is the object's API group, empty for the core group: a core
	// Service and a Knative Service of one name are different problems.
	Group string
	Kind  string
	Name  string
}

// ForTarget returns the default fingerprint of signals about t.
func ForTarget(t Target) string {
	return sum(objectDomain, t.ClusterID, t.Namespace, t.Group, t.Kind, t.Name)
}

// LegacyForTarget returns the default fingerprint that versions before the
// API group was part of it gave signals about t. It only serves to find the
// RemediationRequests those versions opened, so that an upgrade continues
// them instead of opening a second one.
func LegacyForTarget(t Target) string {
	return sum(legacyTargetDomain, t.ClusterID, t.Namespace, t.Kind, t.Name)
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
	_, _ = h.Write([]byte(s)) // hash.Hash.Write never fails
	_, _ = h.Write([]byte{0})
}
