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
	"strings"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

const (
	objectDomain = "signals.remediation.io/v1/object"
	keyDomain    = "signals.remediation.io/v1/key"
	// legacyTargetDomain is the default fingerprint's domain before the
	// API group was part of it.
	legacyTargetDomain = "signals.remediation.io/v1/target"
)

// ForObject returns the default fingerprint of signals about the object ref
// names. clusterID tells clusters apart when several feed one remediation
// system; empty for a single cluster. The object's identity is its
// namespace, API group (empty for the core group: a core Service and a
// Knative Service of one name are different problems), kind and name; the
// alert name is left out on purpose, so that every signal about one
// workload lands on one remediation.
func ForObject(clusterID string, ref remediationv1alpha1.ResourceReference) string {
	return sum(objectDomain, clusterID, ref.Namespace, group(ref.APIVersion), ref.Kind, ref.Name)
}

// LegacyForObject returns the default fingerprint that versions before the
// API group was part of it gave signals about ref. It only serves to find
// the RemediationRequests those versions opened, so that an upgrade
// continues them instead of opening a second one.
func LegacyForObject(clusterID string, ref remediationv1alpha1.ResourceReference) string {
	return sum(legacyTargetDomain, clusterID, ref.Namespace, ref.Kind, ref.Name)
}

// group returns the API group of apiVersion: "apps/v1" → "apps", "v1" → "".
func group(apiVersion string) string {
	g, _, found := strings.Cut(apiVersion, "/")
	if !found {
		return ""
	}
	return g
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
