package integration

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	authenticationv1 "k8s.io/api/authentication/v1"
	authorizationv1 "k8s.io/api/authorization/v1"
	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
	"github.com/signal-apiserver/signal-apiserver/pkg/registry"
)

// The namespaces and ServiceAccount of artifacts/examples/tenant-sender.yaml.
const (
	tenantNamespace      = "payments"
	tenantBatchNamespace = "payments-batch"
	tenantUser           = "system:serviceaccount:payments:alert-router"
)

// tokenConfig returns a config for kube-apiserver that authenticates with a
// TokenRequest token of ServiceAccount namespace/name, as a sender in the
// cluster would.
func tokenConfig(ctx context.Context, namespace, name string) *rest.Config {
	kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	token, err := kube.CoreV1().ServiceAccounts(namespace).CreateToken(ctx, name, &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	cfg := highQPS(rest.AnonymousClientConfig(cp.RESTConfig()))
	cfg.BearerToken = token.Status.Token
	return cfg
}

func createNamespace(ctx context.Context, name string, labels map[string]string) {
	kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name, Labels: labels}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
}

// total sums every series of a counter family.
func total(families map[string]*dto.MetricFamily, family string) float64 {
	f, ok := families[family]
	if !ok {
		return 0
	}
	var sum float64
	for _, m := range f.Metric {
		sum += m.GetCounter().GetValue()
	}
	return sum
}

// canI runs `kubectl auth can-i signal remediationrequests -n namespace
// --as=user` as cluster admin and returns its answer.
func canI(ctx context.Context, user, namespace string) bool {
	out, err := kubectl(ctx, "auth", "can-i", registry.SignalVerb, "remediationrequests.remediation.io", "-n", namespace, "--as="+user)
	var exit *exec.ExitError
	switch {
	case err == nil:
		Expect(out).To(Equal("yes\n"))
		return true
	case errors.As(err, &exit) && exit.ExitCode() == 1:
		Expect(out).To(Equal("no\n"), string(exit.Stderr))
		return false
	}
	Expect(err).NotTo(HaveOccurred())
	return false
}

// podSignal is a signal about a Pod that does not exist: were it resolved,
// the server would read its metadata.
func podSignal(namespace string) *signalsv1.Signal {
	s := newSignal(namespace)
	s.Spec.Source = "authz-test"
	s.Spec.Target = signalsv1.TargetReference{APIVersion: "v1", Kind: "Pod", Namespace: namespace, Name: "pod-" + rand.String(8)}
	return s
}

// nodeSignal is a signal about a cluster-scoped object: its
// RemediationRequest lives in --cluster-scoped-namespace.
func nodeSignal() *signalsv1.Signal {
	s := newSignal("")
	s.Spec.Target = signalsv1.TargetReference{APIVersion: "v1", Kind: "Node", Name: "node-" + rand.String(8)}
	return s
}

// rrNamespace is where the RemediationRequests of s live.
func rrNamespace(s *signalsv1.Signal) string {
	if s.Spec.Target.Namespace == "" {
		return controlplane.ServerNamespace
	}
	return s.Spec.Target.Namespace
}

var _ = Describe("Sender authorization per namespace", Ordered, func() {
	var (
		tenant         *versioned.Clientset
		tenantConf     *rest.Config
		platform       *versioned.Clientset
		platformUser   string
		otherNamespace string
	)

	BeforeAll(func(ctx SpecContext) {
		// The tenant: the example as it ships, applied as an operator would,
		// on top of the ClusterRoles of artifacts/deploy.
		createNamespace(ctx, tenantNamespace, nil)
		createNamespace(ctx, tenantBatchNamespace, nil)
		otherNamespace = "shipping-" + rand.String(6)
		createNamespace(ctx, otherNamespace, nil)
		example := filepath.Join("artifacts", "examples", "tenant-sender.yaml")
		for _, dryRun := range []string{"--dry-run=server", "--dry-run=none"} {
			out, err := kubectl(ctx, "apply", dryRun, "-f", example)
			Expect(err).NotTo(HaveOccurred(), out)
		}
		tenantConf = tokenConfig(ctx, tenantNamespace, "alert-router")
		tenant = versioned.NewForConfigOrDie(tenantConf)

		// A cluster-wide sender: one ClusterRoleBinding to signal-sender.
		platformUser = "platform-sender-" + rand.String(6)
		kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
		_, err := kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: platformUser},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "signal-sender"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: platformUser}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		conf, err := cp.AddUser(platformUser, nil)
		Expect(err).NotTo(HaveOccurred())
		platform = versioned.NewForConfigOrDie(conf)

		// RBAC changes reach kube-apiserver's authorizer asynchronously,
		// in the order they were made (payments-batch's RoleBinding comes
		// last), and the server caches a denial for 10 seconds.
		for _, sender := range []*versioned.Clientset{tenant, platform} {
			Eventually(func() error {
				_, err := sender.SignalsV1().Signals().Create(ctx, newSignal(tenantBatchNamespace), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
				return err
			}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(time.Second).Should(Succeed())
		}
	})

	It("counts a tenant's signals about its own namespaces", func(ctx SpecContext) {
		for _, ns := range []string{tenantNamespace, tenantBatchNamespace} {
			s := newSignal(ns)
			rr, err := tenant.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(rr.Annotations).To(HaveKeyWithValue(signalsv1.AnnotationOutcome, "Created"))
			rr, err = tenant.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			Expect(rr.Annotations).To(HaveKeyWithValue(signalsv1.AnnotationOutcome, "Deduplicated"))
			rrs := rrsOf(ctx, ns, fingerprintOf(s))
			Expect(rrs).To(HaveLen(1))
			Expect(countOf(&rrs[0])).To(Equal(int64(2)))
		}
	})

	It("refuses a tenant's signals about kube-system, another tenant's namespace and cluster-scoped objects with 403, reading and writing nothing, dry run or not", func(ctx SpecContext) {
		type attempt struct {
			signal *signalsv1.Signal
			dryRun bool
		}
		var attempts []attempt
		for _, dryRun := range []bool{false, true} {
			for _, s := range []*signalsv1.Signal{podSignal("kube-system"), podSignal(otherNamespace), newSignal(otherNamespace), nodeSignal()} {
				attempts = append(attempts, attempt{s, dryRun})
			}
		}
		// A resolved signal must not resolve another tenant's remediation.
		theirs := newSignal(otherNamespace)
		_, err := admin.SignalsV1().Signals().Create(ctx, theirs, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		resolved := theirs.DeepCopy()
		resolved.Spec.Status = signalsv1.SignalStatusResolved
		attempts = append(attempts, attempt{resolved, false})

		before := scrape(ctx)
		for i, a := range attempts {
			opts := metav1.CreateOptions{}
			if a.dryRun {
				opts.DryRun = []string{metav1.DryRunAll}
			}
			_, err := tenant.SignalsV1().Signals().Create(ctx, a.signal, opts)
			Expect(apierrors.IsForbidden(err)).To(BeTrue(), "attempt %d: got %v", i, err)
			ns := rrNamespace(a.signal)
			Expect(err.Error()).To(Equal(fmt.Sprintf(`remediationrequests.remediation.io is forbidden: User %q cannot signal resource "remediationrequests" in API group "remediation.io" in the namespace %q: %s`,
				tenantUser, ns, forbiddenHint(a.signal, ns))), "attempt %d", i)
		}
		after := scrape(ctx)

		for _, a := range attempts[:len(attempts)-1] {
			Expect(rrsOf(ctx, rrNamespace(a.signal), fingerprintOf(a.signal))).To(BeEmpty())
		}
		rrs := rrsOf(ctx, otherNamespace, fingerprintOf(theirs))
		Expect(rrs).To(HaveLen(1))
		Expect(rrs[0].Status.Deduplication.LastResolvedAt).To(BeNil())
		Expect(countOf(&rrs[0])).To(Equal(int64(1)))
		for _, family := range []string{
			"signal_apiserver_remediationrequest_creates_total",
			"signal_apiserver_status_writes_total",
			"signal_apiserver_remediationrequest_reads_total",
			"signal_apiserver_owner_metadata_requests_total",
		} {
			Expect(total(after, family)-total(before, family)).To(BeZero(), family)
		}
		Expect(value(after, "signal_apiserver_signal_denials_total", map[string]string{"reason": "forbidden"}) -
			value(before, "signal_apiserver_signal_denials_total", map[string]string{"reason": "forbidden"})).To(BeEquivalentTo(len(attempts)))
		// A refused signal takes no source label slot of its own: it is
		// counted under its source only if an accepted one claimed it before
		// (in an earlier spec, whose order is random), else under "other".
		rejected := func(m map[string]*dto.MetricFamily) float64 {
			return value(m, "signal_apiserver_signals_total", map[string]string{"source": "authz-test", "outcome": "rejected"}) +
				value(m, "signal_apiserver_signals_total", map[string]string{"source": "other", "outcome": "rejected"})
		}
		Expect(rejected(after) - rejected(before)).To(BeEquivalentTo(4))
	})

	It("refuses a tenant's signals about cluster-scoped objects given its own namespace with 422 on spec.target.namespace, opening nothing", func(ctx SpecContext) {
		before := scrape(ctx)
		for _, target := range []signalsv1.TargetReference{
			{APIVersion: "v1", Kind: "Node", Name: "node-1"},
			{APIVersion: "v1", Kind: "Namespace", Name: "kube-system"},
			{APIVersion: "rbac.authorization.k8s.io/v1", Kind: "ClusterRoleBinding", Name: "cluster-admin"},
		} {
			for _, dryRun := range [][]string{nil, {metav1.DryRunAll}} {
				s := newSignal(tenantNamespace)
				target.Namespace = tenantNamespace
				s.Spec.Target = target
				_, err := tenant.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{DryRun: dryRun})
				Expect(invalidField(err)).To(Equal([]string{"spec.target.namespace"}), "%s %s", target.Kind, target.Name)
				Expect(err.Error()).To(ContainSubstring("is cluster-scoped"))
				Expect(rrsOf(ctx, tenantNamespace, fingerprintOf(s))).To(BeEmpty())
			}
		}
		after := scrape(ctx)
		for _, family := range []string{"signal_apiserver_remediationrequest_creates_total", "signal_apiserver_status_writes_total"} {
			Expect(total(after, family)-total(before, family)).To(BeZero(), family)
		}
	})

	It("lets a tenant dry-run signals about its own namespace", func(ctx SpecContext) {
		s := newSignal(tenantNamespace)
		rr, err := tenant.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		Expect(err).NotTo(HaveOccurred())
		Expect(rr.Annotations).To(HaveKeyWithValue(signalsv1.AnnotationOutcome, "Created"))
		Expect(rrsOf(ctx, tenantNamespace, fingerprintOf(s))).To(BeEmpty())
	})

	It("agrees with kubectl auth can-i, for a tenant and for a cluster-wide sender", func(ctx SpecContext) {
		namespaces := []string{tenantNamespace, tenantBatchNamespace, otherNamespace, "kube-system", controlplane.ServerNamespace}
		senders := []struct {
			user   string
			client *versioned.Clientset
			want   []bool
		}{
			{tenantUser, tenant, []bool{true, true, false, false, false}},
			{platformUser, platform, []bool{true, true, true, true, true}},
		}
		for _, sender := range senders {
			var answers, served []bool
			for _, ns := range namespaces {
				answers = append(answers, canI(ctx, sender.user, ns))
				s := newSignal(ns)
				if ns == controlplane.ServerNamespace {
					s = nodeSignal()
				}
				rr, err := sender.client.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
				switch {
				case err == nil:
					Expect(rr.Namespace).To(Equal(ns))
					Expect(countOf(rr)).To(Equal(int64(1)))
					served = append(served, true)
				case apierrors.IsForbidden(err):
					Expect(rrsOf(ctx, ns, fingerprintOf(s))).To(BeEmpty())
					served = append(served, false)
				default:
					Fail(fmt.Sprintf("%s, namespace %s: %v", sender.user, ns, err))
				}
			}
			Expect(answers).To(Equal(sender.want), "kubectl auth can-i for %s in %v", sender.user, namespaces)
			Expect(served).To(Equal(answers), "the server for %s in %v", sender.user, namespaces)
		}
	})

	It("records a notification's alerts about allowed namespaces and rejects the others, answering 201", func(ctx SpecContext) {
		before := scrape(ctx)
		body := webhookBody(tenantNamespace,
			webhookAlert("firing", tenantNamespace, "api-0", "a100000000000001"),
			webhookAlert("firing", "kube-system", "coredns-0", "a100000000000002"),
			webhookAlert("firing", otherNamespace, "api-0", "a100000000000003"),
		)
		code, raw := postNotification(ctx, tenantConf, body, false)
		Expect(code).To(Equal(http.StatusCreated), string(raw))
		after := scrape(ctx)

		var got signalsv1.AlertmanagerNotification
		Expect(json.Unmarshal(raw, &got)).To(Succeed())
		rr, err := podRR(ctx, tenantNamespace, "api-0")()
		Expect(err).NotTo(HaveOccurred())
		Expect(countOf(rr)).To(Equal(int64(1)))
		forbidden := func(ns string) string {
			return fmt.Sprintf(`remediationrequests.remediation.io is forbidden: User %q cannot signal resource "remediationrequests" in API group "remediation.io" in the namespace %q: %s`,
				tenantUser, ns, forbiddenHint(newSignal(ns), ns))
		}
		Expect(got.Results).To(Equal([]signalsv1.AlertResult{
			{Index: 0, Fingerprint: "a100000000000001", Outcome: "Created", Namespace: tenantNamespace, Name: rr.Name},
			{Index: 1, Fingerprint: "a100000000000002", Outcome: "Rejected", Reason: metav1.StatusReasonForbidden, Message: forbidden("kube-system")},
			{Index: 2, Fingerprint: "a100000000000003", Outcome: "Rejected", Reason: metav1.StatusReasonForbidden, Message: forbidden(otherNamespace)},
		}))
		for ns, pod := range map[string]string{"kube-system": "coredns-0", otherNamespace: "api-0"} {
			_, err := podRR(ctx, ns, pod)()
			Expect(err).To(MatchError(ContainSubstring("0 RemediationRequests")))
		}
		delta := func(family string, labels map[string]string) float64 {
			return value(after, family, labels) - value(before, family, labels)
		}
		Expect(delta("signal_apiserver_alertmanager_notifications_total", map[string]string{"code": "201"})).To(Equal(1.0))
		Expect(delta("signal_apiserver_alertmanager_alerts_total", map[string]string{"outcome": "created"})).To(Equal(1.0))
		Expect(delta("signal_apiserver_alertmanager_alerts_total", map[string]string{"outcome": "rejected"})).To(Equal(2.0))
		Expect(delta("signal_apiserver_signal_denials_total", map[string]string{"reason": "forbidden"})).To(Equal(2.0))
		Expect(total(after, "signal_apiserver_remediationrequest_creates_total") - total(before, "signal_apiserver_remediationrequest_creates_total")).To(Equal(1.0))
	})

	It("lets a tenant's real Alertmanager deliver a group with an alert about a foreign namespace without failing it", func(ctx SpecContext) {
		tokenFile := filepath.Join(GinkgoT().TempDir(), "token")
		Expect(os.WriteFile(tokenFile, []byte(tokenConfig(ctx, tenantNamespace, "alert-router").BearerToken), 0o600)).To(Succeed())
		am := startAlertmanager(ctx, tokenFile)
		before := scrape(ctx)
		group := "g-" + rand.String(6)
		start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		am.post(ctx,
			podAlert(group, tenantNamespace, "web-"+group, "KubePodCrashLooping", start),
			podAlert(group, otherNamespace, "web-"+group, "KubePodCrashLooping", start),
		)
		Eventually(podRR(ctx, tenantNamespace, "web-"+group)).WithContext(ctx).WithTimeout(30 * time.Second).Should(haveCount(1))
		answered := func(code string) func() float64 {
			return func() float64 {
				family, labels := "signal_apiserver_alertmanager_notifications_total", map[string]string{"code": code}
				return value(scrape(ctx), family, labels) - value(before, family, labels)
			}
		}
		// Every webhook request Alertmanager made (one, or two when it
		// flushed the group in two) was answered 201: it has nothing to
		// retry.
		Eventually(func(g Gomega) {
			sent, err := am.notificationRequests(ctx)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(sent).To(BeNumerically(">", 0))
			g.Expect(answered("201")()).To(Equal(sent))
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(podRR(ctx, tenantNamespace, "web-"+group)()).To(haveCount(1))
		Expect(answered("500")()).To(BeZero())
		Expect(answered("503")()).To(BeZero())
		Expect(am.failedNotifications(ctx)).To(BeZero())
		_, err := podRR(ctx, otherNamespace, "web-"+group)()
		Expect(err).To(MatchError(ContainSubstring("0 RemediationRequests")))
	})
})

var _ = Describe("Sender authorization caching", func() {
	It("asks kube-apiserver once per sender and namespace, not once per signal", func(ctx SpecContext) {
		// Cache entries that outlive the spec, so that the count is exact.
		s, err := cp.StartServer(ctx, "signal-apiserver-authz-cache",
			"--authorization-webhook-cache-authorized-ttl=1h", "--authorization-webhook-cache-unauthorized-ttl=1h")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(s.Stop)

		sender := "cache-sender-" + rand.String(6)
		kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
		_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: sender},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "signal-sender"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: sender}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(kube.RbacV1().ClusterRoleBindings().Delete(ctx, sender, metav1.DeleteOptions{})).To(Succeed())
		})
		// Wait for kube-apiserver's RBAC to know the binding before the
		// server asks, so that no denial is cached.
		Eventually(func() (bool, error) {
			review, err := kube.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
				User:               sender,
				ResourceAttributes: &authorizationv1.ResourceAttributes{Namespace: "kube-system", Verb: "signal", Group: "remediation.io", Resource: "remediationrequests"},
			}}, metav1.CreateOptions{})
			return review.Status.Allowed, err
		}).WithContext(ctx).Should(BeTrue())

		client := versioned.NewForConfigOrDie(cp.FrontProxyClientConfig(s, sender, []string{"system:authenticated"}))
		before := scrapeServer(ctx, s)
		for _, ns := range []string{"default", "kube-system"} {
			target := newSignal(ns)
			for range 25 {
				_, err := client.SignalsV1().Signals().Create(ctx, target, metav1.CreateOptions{})
				Expect(err).NotTo(HaveOccurred())
			}
			Expect(countOf(&rrsOf(ctx, ns, fingerprintOf(target))[0])).To(Equal(int64(25)))
		}
		after := scrapeServer(ctx, s)
		// create on signals once, signal on remediationrequests once per
		// namespace.
		Expect(total(after, "apiserver_delegated_authz_request_total") - total(before, "apiserver_delegated_authz_request_total")).To(Equal(3.0))
	})
})

// forbiddenHint is the end of the 403 message for a signal s whose
// RemediationRequest would live in namespace.
func forbiddenHint(s *signalsv1.Signal, namespace string) string {
	if s.Spec.Target.Namespace == "" {
		return fmt.Sprintf(`signals about cluster-scoped objects open their RemediationRequests in namespace %q (--cluster-scoped-namespace), which needs verb "signal" on remediationrequests.remediation.io there`, namespace)
	}
	return fmt.Sprintf(`a signal opens and counts RemediationRequests in namespace %q, which needs verb "signal" on remediationrequests.remediation.io there (for example a RoleBinding to ClusterRole signal-namespace-sender)`, namespace)
}

var _ = Describe("Managed namespaces (--namespace-selector)", Ordered, func() {
	const selector = "kubernaut.ai/managed=true"
	var managed *controlplane.Server

	BeforeAll(func(ctx SpecContext) {
		var err error
		managed, err = cp.StartServer(ctx, "signal-apiserver-managed", "--namespace-selector="+selector)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(managed.Stop)
		Expect(cp.RegisterAPIService(ctx, managed)).To(Succeed())
		DeferCleanup(func(ctx SpecContext) {
			Expect(cp.RegisterAPIService(ctx, primary)).To(Succeed())
		})
	})

	It("opens nothing in an unlabelled namespace with 422, and opens its RemediationRequest once the namespace is labelled, without a restart", func(ctx SpecContext) {
		ns := "unmanaged-" + rand.String(6)
		createNamespace(ctx, ns, nil)
		s := newSignal(ns)
		_, err := admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		causes := err.(apierrors.APIStatus).Status().Details.Causes
		Expect(causes).To(HaveLen(1))
		Expect(causes[0].Field).To(Equal("spec.target.namespace"))
		Expect(causes[0].Message).To(ContainSubstring(fmt.Sprintf(`Invalid value: %q: namespace %q is not managed by signal-apiserver (its labels do not match --namespace-selector=%s)`, ns, ns, selector)))
		_, err = admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "dry run: got %v", err)
		Expect(rrsOf(ctx, ns, fingerprintOf(s))).To(BeEmpty())

		// Cluster-scoped objects' RemediationRequests live in
		// --cluster-scoped-namespace, which is not labelled either.
		_, err = admin.SignalsV1().Signals().Create(ctx, nodeSignal(), metav1.CreateOptions{})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.(apierrors.APIStatus).Status().Details.Causes[0].Field).To(Equal("spec.target.kind"))

		kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
		label := func(value string) {
			patch := fmt.Sprintf(`{"metadata":{"labels":{"kubernaut.ai/managed":%s}}}`, value)
			_, err := kube.CoreV1().Namespaces().Patch(ctx, ns, "application/merge-patch+json", []byte(patch), metav1.PatchOptions{})
			Expect(err).NotTo(HaveOccurred())
		}
		label(`"true"`)
		// The server learns of the label from its watch: the first signal
		// it accepts is the first one counted.
		var rr *remediationv1alpha1.RemediationRequest
		Eventually(func() error {
			rr, err = admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
			if err != nil && !apierrors.IsInvalid(err) {
				StopTrying("not a 422").Wrap(err).Now()
			}
			return err
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(Succeed())
		Expect(rr.Annotations).To(HaveKeyWithValue(signalsv1.AnnotationOutcome, "Created"))
		rrs := rrsOf(ctx, ns, fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(Equal(int64(1)))

		// And out again when the label goes: nothing more is counted.
		label(`null`)
		Eventually(func() error {
			_, err := admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
			if err != nil && !apierrors.IsInvalid(err) {
				StopTrying("not a 422").Wrap(err).Now()
			}
			return err
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(MatchError(ContainSubstring("is not managed by signal-apiserver")))
		rrs = rrsOf(ctx, ns, fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		last := countOf(&rrs[0])
		_, err = admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(countOf(&rrsOf(ctx, ns, fingerprintOf(s))[0])).To(Equal(last))
	})

	It("counts the refusals by reason", func(ctx SpecContext) {
		scrapeManaged := func() map[string]*dto.MetricFamily { return scrapeServer(ctx, managed) }
		before := scrapeManaged()
		ns := "unmanaged-" + rand.String(6)
		createNamespace(ctx, ns, nil)
		_, err := admin.SignalsV1().Signals().Create(ctx, newSignal(ns), metav1.CreateOptions{})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		after := scrapeManaged()
		reason := map[string]string{"reason": "namespace_not_managed"}
		Expect(value(after, "signal_apiserver_signal_denials_total", reason) - value(before, "signal_apiserver_signal_denials_total", reason)).To(Equal(1.0))
	})
})
