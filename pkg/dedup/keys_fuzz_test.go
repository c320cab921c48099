package dedup

import (
	"slices"
	"strconv"
	"testing"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// FuzzKeyWindow drives the window with batches of keys drawn from the input
// and checks it against a plain model: a key is alreadyCounted exactly when
// it is among the 1024 most recently seen, the count grows by the keys that
// were not, evictions are counted, and a conflict that applies the same
// batch again to the stored object (as the counter does) changes nothing.
func FuzzKeyWindow(f *testing.F) {
	f.Add([]byte{0, 1, 2, 1, 0, 255, 3}, uint16(1100))
	f.Add([]byte{7, 7, 7, 7}, uint16(5))
	f.Add([]byte{}, uint16(2000))
	f.Fuzz(func(t *testing.T, script []byte, spread uint16) {
		// Keys come from a space a little larger than the window, so that
		// evictions and hits both happen.
		space := int(spread)%(2*remediationv1alpha1.MaxIdempotencyKeys) + 1
		rr := &remediationv1alpha1.RemediationRequest{}
		var model []string // least recently seen first
		var count, evicted int64
		for i := 0; i < len(script); {
			n := int(script[i])%8 + 1
			i++
			var keys []string
			for j := 0; j < n && i < len(script); j, i = j+1, i+1 {
				keys = append(keys, strconv.Itoa((int(script[i])*7919+i*31)%space))
			}
			ops := keyedOps(keys...)
			apply(rr, ops)
			for j, k := range keys {
				pos := slices.Index(model, k)
				want := pos >= 0
				if ops[j].alreadyCounted != want {
					t.Fatalf("key %s: alreadyCounted %v, model says %v", k, ops[j].alreadyCounted, want)
				}
				if want {
					model = append(slices.Delete(model, pos, pos+1), k)
					continue
				}
				count++
				model = append(model, k)
				if len(model) > remediationv1alpha1.MaxIdempotencyKeys {
					model = model[1:]
					evicted++
				}
			}
			d := rr.Status.Deduplication
			if d.OccurrenceCount != count || d.EvictedIdempotencyKeys != evicted || len(d.IdempotencyKeys) != len(model)*len(keyDigest{}) {
				t.Fatalf("count %d evicted %d window %d; model %d, %d, %d", d.OccurrenceCount, d.EvictedIdempotencyKeys, len(d.IdempotencyKeys)/8, count, evicted, len(model))
			}
			for j, k := range model {
				if got, want := keyDigest(d.IdempotencyKeys[j*8:j*8+8]), digest(k); got != want {
					t.Fatalf("window position %d holds %x, model has key %s (%x)", j, got, k, want)
				}
			}
			// Applying the batch again counts nothing more.
			again := rr.DeepCopy()
			apply(again, keyedOps(keys...))
			if again.Status.Deduplication.OccurrenceCount != count {
				t.Fatalf("a batch applied twice counted again: %d, want %d", again.Status.Deduplication.OccurrenceCount, count)
			}
		}
	})
}
