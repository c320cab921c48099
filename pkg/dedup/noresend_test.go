package dedup

import (
	"context"
	"encoding/json"
	"maps"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/rest"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	remediationclient "github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/typed/remediation/v1alpha1"
)

// TestWithoutResend: kube-apiserver answers every request 504 with
// Retry-After, as its timeout filter does after a write may have landed.
// client-go sends a write again by itself (11 times in all); through
// WithoutResend every write is sent once, and reads are still retried.
func TestWithoutResend(t *testing.T) {
	var mu sync.Mutex
	requests := map[string]int{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests[r.Method]++
		mu.Unlock()
		st := apierrors.NewTimeoutError("request did not complete within the allowed duration", 0).ErrStatus
		w.Header().Set("Content-Type", "application/json")
		w.Header().Set("Retry-After", "0")
		w.WriteHeader(http.StatusGatewayTimeout)
		_ = json.NewEncoder(w).Encode(&st)
	}))
	defer srv.Close()

	plain, err := remediationclient.NewForConfig(&rest.Config{Host: srv.URL, QPS: 1000, Burst: 1000})
	if err != nil {
		t.Fatal(err)
	}
	send := func(c remediationclient.RemediationRequestsGetter) map[string]int {
		mu.Lock()
		clear(requests)
		mu.Unlock()
		ctx := context.Background()
		rrs := c.RemediationRequests("default")
		rr := &remediationv1alpha1.RemediationRequest{ObjectMeta: metav1.ObjectMeta{Namespace: "default", Name: testName, ResourceVersion: "7"}}
		for what, err := range map[string]error{
			"update status": func() error { _, err := rrs.UpdateStatus(ctx, rr, metav1.UpdateOptions{}); return err }(),
			"create":        func() error { _, err := rrs.Create(ctx, rr, metav1.CreateOptions{}); return err }(),
			"delete":        rrs.Delete(ctx, testName, metav1.DeleteOptions{}),
			"get":           func() error { _, err := rrs.Get(ctx, testName, metav1.GetOptions{}); return err }(),
		} {
			if !apierrors.IsTimeout(err) {
				t.Errorf("%s: %v, want the 504", what, err)
			}
		}
		mu.Lock()
		defer mu.Unlock()
		return map[string]int{"PUT": requests["PUT"], "POST": requests["POST"], "DELETE": requests["DELETE"], "GET": requests["GET"]}
	}

	if got, want := send(plain), map[string]int{"PUT": 11, "POST": 11, "DELETE": 11, "GET": 11}; !maps.Equal(got, want) {
		t.Errorf("plain client-go sent %v, want %v (it resends on Retry-After)", got, want)
	}
	if got, want := send(remediationclient.New(WithoutResend(plain.RESTClient()))), map[string]int{"PUT": 1, "POST": 1, "DELETE": 1, "GET": 11}; !maps.Equal(got, want) {
		t.Errorf("WithoutResend sent %v, want %v", got, want)
	}
}
