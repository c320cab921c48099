package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionv1 "k8s.io/api/admission/v1"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// maxMutatingInFlight is the bound of the replica the overload specs start.
const maxMutatingInFlight = 3

// holdLabel marks the signals the holding webhook keeps in flight.
const holdLabel = "overload-test/hold"

// holdingWebhook is a validating admission webhook that keeps every signal
// labelled holdLabel waiting until release is closed, so that the replica
// has exactly that many requests in flight for as long as a spec needs.
type holdingWebhook struct {
	server  *httptest.Server
	held    atomic.Int32
	release chan struct{}
	once    sync.Once
}

func newHoldingWebhook() *holdingWebhook {
	h := &holdingWebhook{release: make(chan struct{})}
	h.server = httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var review admissionv1.AdmissionReview
		if err := json.NewDecoder(r.Body).Decode(&review); err != nil || review.Request == nil {
			http.Error(w, "not an AdmissionReview", http.StatusBadRequest)
			return
		}
		h.held.Add(1)
		<-h.release
		review.Response = &admissionv1.AdmissionResponse{UID: review.Request.UID, Allowed: true}
		review.Request = nil
		_ = json.NewEncoder(w).Encode(&review)
	}))
	return h
}

// Release lets every held and future request through.
func (h *holdingWebhook) Release() { h.once.Do(func() { close(h.release) }) }

// config matches only signals labelled holdLabel, by a match condition, so
// no other spec's signal ever reaches the webhook.
func (h *holdingWebhook) config(name string) *admissionregistrationv1.ValidatingWebhookConfiguration {
	url := h.server.URL + "/hold"
	none := admissionregistrationv1.SideEffectClassNone
	fail := admissionregistrationv1.Fail
	timeout := int32(30)
	return &admissionregistrationv1.ValidatingWebhookConfiguration{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Webhooks: []admissionregistrationv1.ValidatingWebhook{{
			Name: "hold.overload-test.remediation.io",
			ClientConfig: admissionregistrationv1.WebhookClientConfig{
				URL:      &url,
				CABundle: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: h.server.Certificate().Raw}),
			},
			Rules: []admissionregistrationv1.RuleWithOperations{{
				Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
				Rule: admissionregistrationv1.Rule{
					APIGroups: []string{"signals.remediation.io"}, APIVersions: []string{"v1"}, Resources: []string{"signals"},
				},
			}},
			MatchConditions: []admissionregistrationv1.MatchCondition{{
				Name:       "held",
				Expression: fmt.Sprintf(`has(object.spec.labels) && %q in object.spec.labels`, holdLabel),
			}},
			SideEffects:             &none,
			FailurePolicy:           &fail,
			TimeoutSeconds:          &timeout,
			AdmissionReviewVersions: []string{"v1"},
		}},
	}
}

// pollUntil returns a channel closed once cond holds, checked every 10ms.
func pollUntil(ctx context.Context, cond func() bool) <-chan struct{} {
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) { return cond(), nil })
	}()
	return done
}

// rawAnswer is a status code and its Retry-After header.
type rawAnswer struct {
	code       int
	retryAfter string
	body       string
}

// postSignal sends s with a plain HTTP client: client-go would retry a 429
// by itself, and the spec wants to see it.
func postSignal(client *http.Client, host string, s *signalsv1.Signal) rawAnswer {
	s = s.DeepCopy()
	s.APIVersion, s.Kind = signalsv1.SchemeGroupVersion.String(), "Signal"
	body, err := json.Marshal(s)
	Expect(err).NotTo(HaveOccurred())
	resp, err := client.Post(strings.TrimSuffix(host, "/")+"/apis/signals.remediation.io/v1/signals", "application/json", bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	defer resp.Body.Close()
	out, _ := io.ReadAll(resp.Body)
	return rawAnswer{code: resp.StatusCode, retryAfter: resp.Header.Get("Retry-After"), body: string(out)}
}

var _ = Describe("Overload", Ordered, func() {
	var (
		bounded *controlplane.Server
		kube    *kubernetes.Clientset
		sender  string
	)

	BeforeAll(func(ctx SpecContext) {
		var err error
		bounded, err = cp.StartServer(ctx, "signal-apiserver-bounded", fmt.Sprintf("--max-mutating-requests-inflight=%d", maxMutatingInFlight))
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(bounded.Stop)

		// Members of system:masters are never turned away by the bound: the
		// sender is an ordinary user granted signal-sender.
		sender = "overload-sender-" + rand.String(6)
		kube = kubernetes.NewForConfigOrDie(cp.RESTConfig())
		_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sender},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "signal-sender"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: sender}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(kube.RbacV1().ClusterRoleBindings().Delete(ctx, sender, metav1.DeleteOptions{})).To(Succeed())
		})
	})

	// burst holds maxMutatingInFlight signals of one target in the webhook,
	// sends burst more of the same target while they are held, then
	// releases them.
	burst := func(ctx SpecContext, conf *rest.Config) {
		webhook := newHoldingWebhook()
		DeferCleanup(webhook.server.Close)
		DeferCleanup(webhook.Release)
		name := "overload-" + rand.String(6)
		_, err := kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Create(ctx, webhook.config(name), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(kube.AdmissionregistrationV1().ValidatingWebhookConfigurations().Delete(ctx, name, metav1.DeleteOptions{})).To(Succeed())
		})

		httpClient, err := rest.HTTPClientFor(conf)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(httpClient.CloseIdleConnections)
		s := newSignal("default")
		held := s.DeepCopy()
		held.Spec.Labels = map[string]string{holdLabel: "true"}

		// The replica learns of the webhook through its informer: send held
		// signals one at a time until one stays held. One that comes back
		// was answered before the webhook was known, and counts like any.
		answers := make(chan rawAnswer, maxMutatingInFlight)
		send := func() { answers <- postSignal(httpClient, conf.Host, held) }
		created := 0
		for webhook.held.Load() == 0 {
			go send()
			select {
			case a := <-answers:
				Expect(a.code).To(Equal(http.StatusCreated), a.body)
				created++
			case <-pollUntil(ctx, func() bool { return webhook.held.Load() > 0 }):
			}
		}
		for range maxMutatingInFlight - 1 {
			go send()
		}
		Eventually(webhook.held.Load).WithContext(ctx).Should(BeEquivalentTo(maxMutatingInFlight))

		// The replica's mutating slots are all taken: every signal of the
		// burst is turned away, though none of them would be held.
		const burstSize = 10 * maxMutatingInFlight
		rejected := make([]rawAnswer, burstSize)
		var wg sync.WaitGroup
		for i := range burstSize {
			wg.Go(func() { rejected[i] = postSignal(httpClient, conf.Host, s) })
		}
		wg.Wait()
		for i, a := range rejected {
			Expect(a.code).To(Equal(http.StatusTooManyRequests), "signal %d: %s", i, a.body)
			Expect(a.retryAfter).To(Equal("1"), "signal %d", i)
		}

		webhook.Release()
		for range maxMutatingInFlight {
			a := <-answers
			Expect(a.code).To(Equal(http.StatusCreated), a.body)
			created++
		}
		rrs := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(BeEquivalentTo(created))
	}

	It("answers a burst past --max-mutating-requests-inflight with 429 and Retry-After, sent directly", func(ctx SpecContext) {
		burst(ctx, cp.FrontProxyClientConfig(bounded, sender, []string{"system:authenticated"}))
	})

	It("answers a burst past --max-mutating-requests-inflight with 429 and Retry-After, through the aggregator", func(ctx SpecContext) {
		Expect(cp.RegisterAPIService(ctx, bounded)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			Expect(cp.RegisterAPIService(ctx, primary)).To(Succeed())
		})
		conf, err := cp.AddUser(sender, nil)
		Expect(err).NotTo(HaveOccurred())
		burst(ctx, conf)
	})
})
