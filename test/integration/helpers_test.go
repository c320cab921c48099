package integration

import (
	"context"
	"fmt"
	"sync"

	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/util/rand"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
)

// newSignal returns a firing signal about a Deployment of its own, so that
// every spec has a fingerprint no other spec touches.
func newSignal(namespace string) *signalsv1.Signal {
	return &signalsv1.Signal{Spec: signalsv1.SignalSpec{
		Source:   "integration-test",
		Name:     "KubePodCrashLooping",
		Severity: "critical",
		Target: signalsv1.TargetReference{
			APIVersion: "apps/v1",
			Kind:       "Deployment",
			Namespace:  namespace,
			Name:       "app-" + rand.String(8),
		},
		Labels: map[string]string{"team": "platform"},
	}}
}

// fingerprintOf is the default fingerprint of s, as documented.
func fingerprintOf(s *signalsv1.Signal) string {
	return fingerprint.ForObject("", referenceOf(s.Spec.Target))
}

// referenceOf is t without its UID, as a RemediationRequest names it.
func referenceOf(t signalsv1.TargetReference) remediationv1alpha1.ResourceReference {
	return remediationv1alpha1.ResourceReference{APIVersion: t.APIVersion, Kind: t.Kind, Namespace: t.Namespace, Name: t.Name}
}

// rrsOf lists, straight from kube-apiserver, the RemediationRequests of
// fingerprint fp in namespace, by the CRD's selectable field.
func rrsOf(ctx context.Context, namespace, fp string) []remediationv1alpha1.RemediationRequest {
	list, err := admin.RemediationV1alpha1().RemediationRequests(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.signalFingerprint", fp).String(),
	})
	Expect(err).NotTo(HaveOccurred())
	return list.Items
}

func countOf(rr *remediationv1alpha1.RemediationRequest) int64 {
	if rr.Status.Deduplication == nil {
		return 0
	}
	return rr.Status.Deduplication.OccurrenceCount
}

// keysIn is the number of idempotency keys in rr's window.
func keysIn(rr *remediationv1alpha1.RemediationRequest) int {
	if rr.Status.Deduplication == nil {
		return 0
	}
	return len(rr.Status.Deduplication.IdempotencyKeys) / remediationv1alpha1.IdempotencyKeyDigestSize
}

// sendResult is the answer to one signal.
type sendResult struct {
	rr  *remediationv1alpha1.RemediationRequest
	err error
}

// sendConcurrently sends n copies of s at once, each through one of
// clients in turn, and returns every answer.
func sendConcurrently(ctx context.Context, s *signalsv1.Signal, n int, clients ...versioned.Interface) []sendResult {
	results := make([]sendResult, n)
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			rr, err := clients[i%len(clients)].SignalsV1().Signals().Create(ctx, s.DeepCopy(), metav1.CreateOptions{})
			results[i] = sendResult{rr: rr, err: err}
		}()
	}
	close(start)
	wg.Wait()
	return results
}

// outcomes counts the outcome annotations of successful answers and fails
// on any error.
func outcomes(results []sendResult) map[string]int {
	got := map[string]int{}
	for i, r := range results {
		ExpectWithOffset(1, r.err).NotTo(HaveOccurred(), fmt.Sprintf("signal %d", i))
		got[r.rr.Annotations[signalsv1.AnnotationOutcome]]++
	}
	return got
}

// metaCreate are the options of a plain create.
var metaCreate = metav1.CreateOptions{}
