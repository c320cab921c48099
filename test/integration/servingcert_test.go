package integration

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	certutil "k8s.io/client-go/util/cert"
	aggregatorclientset "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// ownCertArgs run a server that keeps its serving certificate in the
// artifacts' Secret, with everything sped up: a serving certificate renewed
// every 40 seconds, and a CA rotation always in progress (every CA expires
// within the rotate-before window), each new CA signing 5 seconds after it
// was added to the caBundle.
var ownCertArgs = []string{
	"--serving-ca-secret=signal-apiserver/signal-apiserver-serving-ca",
	"--serving-cert-validity=1m",
	"--serving-ca-rotate-before=87660h",
	"--serving-ca-activation-delay=5s",
	"--serving-ca-sync-period=1s",
}

// servedCertificates records the serving certificates a server presents
// and the CAs that issued them.
type servedCertificates struct {
	mu      sync.Mutex
	leaves  map[[32]byte]bool
	issuers map[string]bool
}

func (s *servedCertificates) watch(ctx context.Context, port int) {
	for ctx.Err() == nil {
		conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{
			InsecureSkipVerify: true, // the certificate is recorded, not trusted
		})
		if err == nil {
			leaf := conn.ConnectionState().PeerCertificates[0]
			s.mu.Lock()
			s.leaves[sha256.Sum256(leaf.Raw)] = true
			s.issuers[leaf.Issuer.CommonName] = true
			s.mu.Unlock()
			conn.Close()
		}
		time.Sleep(200 * time.Millisecond)
	}
}

var _ = Describe("A serving certificate the server keeps itself (--serving-ca-secret)", func() {
	It("rotates serving certificates and CAs under load through kube-apiserver without a failed request", func(ctx SpecContext) {
		// Two replicas share the Secret and race to rotate it; the
		// APIService points at the first.
		DeferCleanup(func(ctx context.Context) {
			Expect(cp.RegisterAPIService(ctx, primary)).To(Succeed())
		})
		var servers []*controlplane.Server
		for _, name := range []string{"signal-apiserver-own-cert-0", "signal-apiserver-own-cert-1"} {
			s, err := cp.StartServerNoWait(name, ownCertArgs...)
			Expect(err).NotTo(HaveOccurred())
			DeferCleanup(s.Stop)
			servers = append(servers, s)
		}
		Expect(cp.RegisterAPIService(ctx, servers[0])).To(Succeed())

		served := &servedCertificates{leaves: map[[32]byte]bool{}, issuers: map[string]bool{}}
		watchCtx, stopWatching := context.WithCancel(ctx)
		defer stopWatching()
		go served.watch(watchCtx, servers[0].Port)

		By("sending signals through kube-apiserver for 45 seconds of rotations")
		s := newSignal("default")
		var sent, failed atomic.Int64
		var firstErr atomic.Value
		loadCtx, stopLoad := context.WithTimeout(ctx, 45*time.Second)
		defer stopLoad()
		var wg sync.WaitGroup
		for range 4 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for loadCtx.Err() == nil {
					_, err := admin.SignalsV1().Signals().Create(ctx, s.DeepCopy(), metaCreate)
					if err != nil {
						failed.Add(1)
						firstErr.CompareAndSwap(nil, err.Error())
						continue
					}
					sent.Add(1)
					time.Sleep(20 * time.Millisecond)
				}
			}()
		}
		wg.Wait()
		stopWatching()

		served.mu.Lock()
		leaves, issuers := len(served.leaves), len(served.issuers)
		served.mu.Unlock()
		GinkgoWriter.Printf("%d signals, %d failed; %d serving certificates from %d CAs\n", sent.Load(), failed.Load(), leaves, issuers)
		Expect(failed.Load()).To(BeZero(), "first error: %v", firstErr.Load())
		Expect(leaves).To(BeNumerically(">=", 4), "the serving certificate was not rotated")
		Expect(issuers).To(BeNumerically(">=", 3), "the CA was not rotated")
		rrs := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(Equal(sent.Load()))

		By("the APIService trusting the Secret's CAs, with TLS verification on")
		svc, err := aggregatorclientset.NewForConfigOrDie(cp.RESTConfig()).ApiregistrationV1().APIServices().Get(ctx, controlplane.APIServiceName, metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(svc.Spec.InsecureSkipTLSVerify).To(BeFalse())
		secret, err := kubernetes.NewForConfigOrDie(cp.RESTConfig()).CoreV1().Secrets(controlplane.ServerNamespace).Get(ctx, "signal-apiserver-serving-ca", metav1.GetOptions{})
		Expect(err).NotTo(HaveOccurred())
		bundle, err := certutil.ParseCertsPEM(svc.Spec.CABundle)
		Expect(err).NotTo(HaveOccurred())
		current, err := certutil.ParseCertsPEM(secret.Data["ca.crt"])
		Expect(err).NotTo(HaveOccurred())
		Expect(bundle).To(ContainElement(current[0]))
	})
})
