package dedup

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	goruntime "runtime"
	"strconv"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/tools/cache"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// largeCacheSize is the number of active RemediationRequests of the large
// cache benchmarks.
const largeCacheSize = 100_000

// realisticRR is RemediationRequest i as kube-apiserver serves it to the
// informer: spec from a typical alert, a deduplication status with a few
// idempotency-key digests, and the managedFields of a create and a status
// update.
func realisticRR(i int) *remediationv1alpha1.RemediationRequest {
	sum := sha256.Sum256([]byte(strconv.Itoa(i)))
	fp := hex.EncodeToString(sum[:])
	ns := fmt.Sprintf("team-%d", i%200)
	now := metav1.NewTime(time.Date(2026, 11, 27, 12, 0, 0, 0, time.UTC))
	var keys []byte
	for k := range 4 {
		d := digest(fmt.Sprintf("%d-%d", i, k))
		keys = append(keys, d[:]...)
	}
	fields := metav1.NewFieldsV1
	return &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{
			Namespace:         ns,
			Name:              remediationv1alpha1.NameFor(fp),
			UID:               types.UID(fmt.Sprintf("3f1c8a52-6a3e-4c71-9d0e-%012d", i)),
			ResourceVersion:   strconv.Itoa(1_000_000 + i),
			Generation:        1,
			CreationTimestamp: now,
			ManagedFields: []metav1.ManagedFieldsEntry{
				{Manager: "signal-apiserver", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "remediation.io/v1alpha1", Time: &now, FieldsType: "FieldsV1",
					FieldsV1: fields(`{"f:spec":{".":{},"f:firingTime":{},"f:receivedTime":{},"f:severity":{},"f:signalFingerprint":{},"f:signalLabels":{".":{},"f:alertname":{},"f:severity":{},"f:team":{}},"f:signalName":{},"f:signalSource":{},"f:targetResource":{".":{},"f:apiVersion":{},"f:kind":{},"f:name":{},"f:namespace":{}}}}`)},
				{Manager: "signal-apiserver", Operation: metav1.ManagedFieldsOperationUpdate, APIVersion: "remediation.io/v1alpha1", Time: &now, FieldsType: "FieldsV1", Subresource: "status",
					FieldsV1: fields(`{"f:status":{".":{},"f:deduplication":{".":{},"f:firstSeenAt":{},"f:lastSeenAt":{},"f:occurrenceCount":{},"f:idempotencyKeys":{}}}}`)},
			},
		},
		Spec: remediationv1alpha1.RemediationRequestSpec{
			SignalFingerprint: fp,
			SignalName:        "KubePodCrashLooping",
			SignalSource:      "alertmanager",
			Severity:          "critical",
			TargetResource: remediationv1alpha1.ResourceReference{
				APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: fmt.Sprintf("app-%d", i),
			},
			SignalLabels: map[string]string{"alertname": "KubePodCrashLooping", "severity": "critical", "team": "platform"},
			FiringTime:   now,
			ReceivedTime: now,
		},
		Status: remediationv1alpha1.RemediationRequestStatus{
			Deduplication: &remediationv1alpha1.DeduplicationStatus{
				FirstSeenAt: now, LastSeenAt: now, OccurrenceCount: int64(1 + i%50), IdempotencyKeys: keys,
			},
		},
	}
}

// filledCache returns the cache the server uses, over an informer of
// RemediationRequests whose store holds n of them, and the heap the store
// holds. The objects go into the informer's indexer as its reflector would
// put them there, through the server's transform; no reflector runs.
func filledCache(b *testing.B, n int) (Cache, uint64) {
	var before goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&before)

	informer := cache.NewSharedIndexInformer(&cache.ListWatch{}, &remediationv1alpha1.RemediationRequest{}, 0,
		cache.Indexers{cache.NamespaceIndex: cache.MetaNamespaceIndexFunc})
	c, err := NewInformerCache(informer)
	if err != nil {
		b.Fatal(err)
	}
	for i := range n {
		// Transformed as the server's informer transforms what it lists.
		obj, err := StripForCache(realisticRR(i))
		if err != nil {
			b.Fatal(err)
		}
		if err := informer.GetIndexer().Add(obj); err != nil {
			b.Fatal(err)
		}
	}
	if got := len(informer.GetStore().ListKeys()); got != n {
		b.Fatalf("cache holds %d RemediationRequests, want %d", got, n)
	}

	var after goruntime.MemStats
	goruntime.GC()
	goruntime.ReadMemStats(&after)
	return c, after.HeapAlloc - before.HeapAlloc
}

// BenchmarkLargeCache measures the informer cache with 100,000 active
// RemediationRequests: heap per RemediationRequest, and the cost of the
// lookups a signal makes (by name, and by fingerprint for an earlier
// version's RemediationRequests). Run it with
//
//	go test ./pkg/dedup -run '^$' -bench LargeCache -benchmem
func BenchmarkLargeCache(b *testing.B) {
	c, heap := filledCache(b, largeCacheSize)
	signals := make([]Signal, 1024)
	for i := range signals {
		rr := realisticRR(i * (largeCacheSize / len(signals)))
		signals[i] = Signal{Namespace: rr.Namespace, Fingerprint: rr.Spec.SignalFingerprint}
	}

	b.Run("ByFingerprint", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s := signals[i%len(signals)]
			// No RemediationRequest of an earlier version: the lookup a
			// signal makes when its own is not active finds none.
			rrs, err := c.ByFingerprint(s.Namespace, s.Fingerprint)
			if err != nil || len(rrs) != 0 {
				b.Fatalf("ByFingerprint(%s, %s) = %d, %v; want 0", s.Namespace, s.Fingerprint, len(rrs), err)
			}
			i++
		}
		b.ReportMetric(float64(heap)/largeCacheSize, "heap-B/rr")
	})
	b.Run("Get", func(b *testing.B) {
		i := 0
		for b.Loop() {
			s := signals[i%len(signals)]
			rr, ok := c.Get(s.Namespace, remediationv1alpha1.NameFor(s.Fingerprint))
			if !ok || rr.Spec.SignalFingerprint != s.Fingerprint {
				b.Fatalf("Get(%s, %s) = %v, %v; want its RemediationRequest", s.Namespace, s.Fingerprint, rr, ok)
			}
			i++
		}
	})
}

// TestFingerprintIndexHoldsEarlierVersionsOnly: an RR at its fingerprint's
// name is found by name, not indexed; one under an earlier version's name
// is indexed under its fingerprint.
func TestFingerprintIndexHoldsEarlierVersionsOnly(t *testing.T) {
	informer := cache.NewSharedIndexInformer(&cache.ListWatch{}, &remediationv1alpha1.RemediationRequest{}, 0, cache.Indexers{})
	c, err := NewInformerCache(informer)
	if err != nil {
		t.Fatal(err)
	}
	current, legacy := realisticRR(1), realisticRR(2)
	legacy.Name = "rr-" + legacy.Spec.SignalFingerprint[:16] + "-0"
	for _, rr := range []*remediationv1alpha1.RemediationRequest{current, legacy} {
		if err := informer.GetIndexer().Add(rr); err != nil {
			t.Fatal(err)
		}
	}
	if got, _ := c.ByFingerprint(current.Namespace, current.Spec.SignalFingerprint); len(got) != 0 {
		t.Errorf("the current RR is indexed: %d", len(got))
	}
	if got, ok := c.Get(current.Namespace, current.Name); !ok || got.UID != current.UID {
		t.Errorf("Get(current) = %v, %v", got, ok)
	}
	if got, _ := c.ByFingerprint(legacy.Namespace, legacy.Spec.SignalFingerprint); len(got) != 1 || got[0].Name != legacy.Name {
		t.Errorf("ByFingerprint(legacy) = %v, want the earlier version's RR", got)
	}
}
