package dedup

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// keyDigest is the first 8 bytes of the SHA-256 of an idempotency key. A
// window holds at most 1024 of them, so a new key is mistaken for a counted
// one with probability below 1024/2^64 (6e-17), and each costs 8 bytes of
// every status write.
type keyDigest [remediationv1alpha1.IdempotencyKeyDigestSize]byte

func digest(key string) keyDigest {
	sum := sha256.Sum256([]byte(key))
	return keyDigest(sum[:remediationv1alpha1.IdempotencyKeyDigestSize])
}

// window is the idempotency-key window of one RemediationRequest: digests,
// least recently seen first.
type window struct {
	digests []byte
}

// loadWindow reads the window of d, including the keys an earlier version
// recorded in recentIdempotencyKeys (their first 16 hex digits are the same
// digest).
func loadWindow(d *remediationv1alpha1.DeduplicationStatus) *window {
	w := &window{digests: make([]byte, 0, len(d.IdempotencyKeys)+len(d.RecentIdempotencyKeys)*len(keyDigest{}))}
	for _, legacy := range d.RecentIdempotencyKeys {
		var k keyDigest
		if n, err := hex.Decode(k[:], []byte(legacy[:min(len(legacy), 2*len(k))])); err == nil && n == len(k) {
			w.digests = append(w.digests, k[:]...)
		}
	}
	w.digests = append(w.digests, d.IdempotencyKeys[:len(d.IdempotencyKeys)/len(keyDigest{})*len(keyDigest{})]...)
	for w.len() > remediationv1alpha1.MaxIdempotencyKeys {
		w.digests = w.digests[len(keyDigest{}):]
	}
	return w
}

func (w *window) len() int { return len(w.digests) / len(keyDigest{}) }

// touch reports whether the window holds k, and if so moves it to the end.
func (w *window) touch(k keyDigest) bool {
	for i := 0; i < len(w.digests); i += len(k) {
		if bytes.Equal(w.digests[i:i+len(k)], k[:]) {
			copy(w.digests[i:], w.digests[i+len(k):])
			copy(w.digests[len(w.digests)-len(k):], k[:])
			return true
		}
	}
	return false
}

// add appends k, evicting the least recently seen digests beyond the bound,
// and returns how many it evicted.
func (w *window) add(k keyDigest) int {
	w.digests = append(w.digests, k[:]...)
	evicted := 0
	for w.len() > remediationv1alpha1.MaxIdempotencyKeys {
		w.digests = w.digests[len(k):]
		evicted++
	}
	return evicted
}

// store writes the window into d, in the current format only.
func (w *window) store(d *remediationv1alpha1.DeduplicationStatus) {
	d.RecentIdempotencyKeys = nil
	if len(w.digests) == 0 {
		d.IdempotencyKeys = nil
		return
	}
	d.IdempotencyKeys = bytes.Clone(w.digests)
}

// setEvictedCondition records on rr that its window overflowed.
func setEvictedCondition(rr *remediationv1alpha1.RemediationRequest, total int64) {
	meta.SetStatusCondition(&rr.Status.Conditions, metav1.Condition{
		Type:               remediationv1alpha1.ConditionIdempotencyKeysEvicted,
		Status:             metav1.ConditionTrue,
		Reason:             "WindowFull",
		Message:            fmt.Sprintf("%d idempotency keys were evicted from the window of the %d most recently seen; a redelivery of an evicted key is counted again", total, remediationv1alpha1.MaxIdempotencyKeys),
		ObservedGeneration: rr.Generation,
	})
}
