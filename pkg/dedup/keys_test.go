package dedup

import (
	"bytes"
	"encoding/hex"
	"strconv"
	"testing"

	"k8s.io/apimachinery/pkg/api/meta"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

func keyedOps(keys ...string) []*op {
	ops := make([]*op, len(keys))
	for i, k := range keys {
		s := testSignal()
		s.IdempotencyKey = k
		ops[i] = newOp(s)
	}
	return ops
}

func numbered(from, to int) []string {
	var keys []string
	for i := from; i < to; i++ {
		keys = append(keys, strconv.Itoa(i))
	}
	return keys
}

// TestKeyWindowHoldsTheBound: 1024 distinct keys, sent again, count once.
func TestKeyWindowHoldsTheBound(t *testing.T) {
	rr := &remediationv1alpha1.RemediationRequest{}
	keys := numbered(0, remediationv1alpha1.MaxIdempotencyKeys)
	if evicted := apply(rr, keyedOps(keys...)); evicted != 0 {
		t.Fatalf("evicted %d, want 0", evicted)
	}
	again := keyedOps(keys...)
	apply(rr, again)
	for i, o := range again {
		if !o.alreadyCounted {
			t.Fatalf("key %d counted twice", i)
		}
	}
	d := rr.Status.Deduplication
	if d.OccurrenceCount != int64(len(keys)) || d.EvictedIdempotencyKeys != 0 || meta.FindStatusCondition(rr.Status.Conditions, remediationv1alpha1.ConditionIdempotencyKeysEvicted) != nil {
		t.Errorf("count %d evicted %d conditions %v, want %d, 0, no IdempotencyKeysEvicted", d.OccurrenceCount, d.EvictedIdempotencyKeys, rr.Status.Conditions, len(keys))
	}
	if len(d.IdempotencyKeys) != remediationv1alpha1.MaxIdempotencyKeys*8 {
		t.Errorf("window of %d bytes, want %d", len(d.IdempotencyKeys), remediationv1alpha1.MaxIdempotencyKeys*8)
	}
}

// TestKeyWindowEvictsTheLeastRecentlySeen: beyond the bound the least
// recently seen key goes, a key seen again is kept, and the overflow is
// visible in the status and a condition.
func TestKeyWindowEvictsTheLeastRecentlySeen(t *testing.T) {
	rr := &remediationv1alpha1.RemediationRequest{}
	apply(rr, keyedOps(numbered(0, remediationv1alpha1.MaxIdempotencyKeys)...))
	apply(rr, keyedOps("0"))                                            // seen again: now the most recent
	if evicted := apply(rr, keyedOps("new-1", "new-2")); evicted != 2 { // evicts 1 and 2
		t.Fatalf("evicted %d, want 2", evicted)
	}
	probe := keyedOps("0", "3", "1")
	apply(rr, probe)
	if !probe[0].alreadyCounted || !probe[1].alreadyCounted || probe[2].alreadyCounted {
		t.Errorf("alreadyCounted = %v %v %v, want true true false (1 was evicted)", probe[0].alreadyCounted, probe[1].alreadyCounted, probe[2].alreadyCounted)
	}
	d := rr.Status.Deduplication
	if d.EvictedIdempotencyKeys != 3 {
		t.Errorf("evictedIdempotencyKeys = %d, want 3", d.EvictedIdempotencyKeys)
	}
	c := meta.FindStatusCondition(rr.Status.Conditions, remediationv1alpha1.ConditionIdempotencyKeysEvicted)
	if c == nil || c.Status != "True" || c.Reason != "WindowFull" {
		t.Errorf("condition %+v, want IdempotencyKeysEvicted True", c)
	}
}

// TestKeyWindowReadsEarlierVersions: keys an earlier version recorded are
// honoured and moved into the window.
func TestKeyWindowReadsEarlierVersions(t *testing.T) {
	rr := &remediationv1alpha1.RemediationRequest{Status: remediationv1alpha1.RemediationRequestStatus{
		Deduplication: &remediationv1alpha1.DeduplicationStatus{OccurrenceCount: 1},
	}}
	d := digest("am/old")
	full := hex.EncodeToString(d[:]) + "00112233445566ff" // 32 hex digits, as earlier versions wrote
	rr.Status.Deduplication.RecentIdempotencyKeys = []string{full}
	ops := keyedOps("am/old", "am/new")
	apply(rr, ops)
	if !ops[0].alreadyCounted || ops[1].alreadyCounted {
		t.Errorf("alreadyCounted = %v %v, want true false", ops[0].alreadyCounted, ops[1].alreadyCounted)
	}
	got := rr.Status.Deduplication
	n := digest("am/new")
	if want := append(d[:], n[:]...); !bytes.Equal(got.IdempotencyKeys, want) || got.RecentIdempotencyKeys != nil || got.OccurrenceCount != 2 {
		t.Errorf("window %x legacy %v count %d, want %x, none, 2", got.IdempotencyKeys, got.RecentIdempotencyKeys, got.OccurrenceCount, want)
	}
}

func BenchmarkApplyFullWindow(b *testing.B) {
	rr := &remediationv1alpha1.RemediationRequest{}
	apply(rr, keyedOps(numbered(0, remediationv1alpha1.MaxIdempotencyKeys)...))
	ops := keyedOps("x")
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		ops[0].key = digest(strconv.Itoa(i))
		next := rr.DeepCopy()
		apply(next, ops)
	}
}
