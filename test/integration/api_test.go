package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"
	"sigs.k8s.io/yaml"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
)

// kubectl runs the control plane's kubectl as cluster admin.
func kubectl(ctx context.Context, args ...string) (string, error) {
	cmd := exec.CommandContext(ctx, cp.KubectlPath(), append([]string{"--kubeconfig", cp.KubeconfigPath()}, args...)...)
	cmd.Dir = repoRoot
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return string(out), &exec.ExitError{ProcessState: cmd.ProcessState, Stderr: stderr.Bytes()}
	}
	return string(out), nil
}

// postRaw sends body to the signals collection through kube-apiserver and
// returns the status code and the decoded Status on failure.
func postRaw(ctx context.Context, body []byte, contentType string) (int, *metav1.Status) {
	rc, err := rest.RESTClientFor(restConfigFor(adminConf))
	Expect(err).NotTo(HaveOccurred())
	res := rc.Post().AbsPath("/apis/signals.remediation.io/v1/signals").
		SetHeader("Content-Type", contentType).Body(body).Do(ctx)
	var code int
	res.StatusCode(&code)
	if err := res.Error(); err != nil {
		var statusErr *apierrors.StatusError
		Expect(errors.As(err, &statusErr)).To(BeTrue(), "%v is not a Status", err)
		status := statusErr.ErrStatus
		return code, &status
	}
	return code, nil
}

func restConfigFor(c *rest.Config) *rest.Config {
	c = rest.CopyConfig(c)
	c.GroupVersion = &signalsv1.SchemeGroupVersion
	c.NegotiatedSerializer = remediationCodecs
	return c
}

var _ = Describe("The signals API", func() {
	It("serves kubectl create -f of the example twice as one RemediationRequest counted twice", func(ctx SpecContext) {
		example := filepath.Join("artifacts", "examples", "signal.yaml")
		first, err := kubectl(ctx, "create", "-f", example)
		Expect(err).NotTo(HaveOccurred())
		Expect(first).To(MatchRegexp(`^remediationrequest\.remediation\.io/rr-[0-9a-f]{60} created\n$`))
		name := strings.TrimSuffix(strings.TrimPrefix(first, "remediationrequest.remediation.io/"), " created\n")

		second, err := kubectl(ctx, "create", "-f", example, "-o", "yaml")
		Expect(err).NotTo(HaveOccurred())
		var rr remediationv1alpha1.RemediationRequest
		Expect(yaml.UnmarshalStrict([]byte(second), &rr)).To(Succeed())
		Expect(rr.APIVersion).To(Equal("remediation.io/v1alpha1"))
		Expect(rr.Kind).To(Equal("RemediationRequest"))
		Expect(rr.Name).To(Equal(name))
		Expect(rr.Annotations).To(HaveKeyWithValue(signalsv1.AnnotationOutcome, "Deduplicated"))
		Expect(countOf(&rr)).To(Equal(int64(2)))

		fp := fingerprint.ForObject("", remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "web"})
		rrs := rrsOf(ctx, "default", fp)
		Expect(rrs).To(HaveLen(1))
		Expect(rrs[0].Name).To(Equal(name))
		Expect(countOf(&rrs[0])).To(Equal(int64(2)))
		// The outcome is said in the answer only, never stored.
		Expect(rrs[0].Annotations).NotTo(HaveKey(signalsv1.AnnotationOutcome))

		third, err := kubectl(ctx, "create", "-f", example, "-o", "name")
		Expect(err).NotTo(HaveOccurred())
		Expect(third).To(Equal("remediationrequest.remediation.io/" + name + "\n"))

		table, err := kubectl(ctx, "get", "rr", "-n", "default", name)
		Expect(err).NotTo(HaveOccurred())
		Expect(table).To(MatchRegexp(`NAME\s+#\s+PHASE\s+TARGET KIND\s+TARGET\s+SEVERITY\s+OCCURRENCES\s+LAST SEEN\s+HOLD\s+AGE`))
		Expect(table).To(MatchRegexp(name + `\s+1\s+Deployment\s+web\s+warning\s+3\s`))
	})

	It("answers with a *RemediationRequest through the generated typed client", func(ctx SpecContext) {
		var rr *remediationv1alpha1.RemediationRequest
		rr, err := admin.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rr.Annotations).To(HaveKeyWithValue(signalsv1.AnnotationOutcome, "Created"))
		Expect(rr.Spec.SignalSource).To(Equal("integration-test"))
		Expect(rr.UID).NotTo(BeEmpty())
	})

	It("writes nothing on --dry-run=server and answers with the would-be RemediationRequest", func(ctx SpecContext) {
		s := newSignal("default")
		rr, err := admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		Expect(err).NotTo(HaveOccurred())
		Expect(rr.Name).To(MatchRegexp(`^rr-[0-9a-f]{60}$`))
		Expect(rr.Annotations).To(HaveKeyWithValue(signalsv1.AnnotationOutcome, "Created"))
		Expect(countOf(rr)).To(Equal(int64(1)))
		Expect(rrsOf(ctx, "default", fingerprintOf(s))).To(BeEmpty())

		_, err = admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		rr, err = admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		Expect(err).NotTo(HaveOccurred())
		Expect(rr.Annotations).To(HaveKeyWithValue(signalsv1.AnnotationOutcome, "Deduplicated"))
		Expect(countOf(rr)).To(Equal(int64(2)))
		stored := rrsOf(ctx, "default", fingerprintOf(s))
		Expect(stored).To(HaveLen(1))
		Expect(countOf(&stored[0])).To(Equal(int64(1)))

		out, err := kubectl(ctx, "create", "--dry-run=server", "-f", filepath.Join("artifacts", "examples", "signal.yaml"), "-o", "name")
		Expect(err).NotTo(HaveOccurred())
		Expect(out).To(MatchRegexp(`^remediationrequest\.remediation\.io/rr-[0-9a-f]{60}\n$`))
	})

	It("rejects invalid signals with 422 naming every bad field, creating nothing", func(ctx SpecContext) {
		s := newSignal("default")
		s.Spec.Source = ""
		s.Spec.Status = "Pending"
		s.Spec.Target.Kind = "not a kind"
		_, err := admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		status := err.(apierrors.APIStatus).Status()
		Expect(status.Code).To(Equal(int32(http.StatusUnprocessableEntity)))
		var fields []string
		for _, c := range status.Details.Causes {
			fields = append(fields, c.Field)
		}
		Expect(fields).To(Equal([]string{"spec.source", "spec.status", "spec.target.kind"}))
		Expect(rrsOf(ctx, "default", fingerprintOf(s))).To(BeEmpty())

		s = newSignal("default")
		s.Spec.Annotations = map[string]string{"runbook": strings.Repeat("x", 70<<10)}
		_, err = admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("spec.annotations"))
		Expect(rrsOf(ctx, "default", fingerprintOf(s))).To(BeEmpty())
	})

	It("rejects a body of another kind or API version with 400", func(ctx SpecContext) {
		rr := map[string]any{"apiVersion": "remediation.io/v1alpha1", "kind": "RemediationRequest", "metadata": map[string]any{"name": "x"}}
		body, _ := json.Marshal(rr)
		code, status := postRaw(ctx, body, "application/json")
		Expect(code).To(Equal(http.StatusBadRequest))
		Expect(status.Reason).To(Equal(metav1.StatusReasonBadRequest))

		body, _ = json.Marshal(map[string]any{"apiVersion": "signals.remediation.io/v1", "kind": "Alert"})
		code, _ = postRaw(ctx, body, "application/json")
		Expect(code).To(Equal(http.StatusBadRequest))

		code, _ = postRaw(ctx, []byte("{not json"), "application/json")
		Expect(code).To(Equal(http.StatusBadRequest))
	})

	It("answers an oversized body with 413", func(ctx SpecContext) {
		s := newSignal("default")
		s.Spec.Description = strings.Repeat("x", 4<<20)
		body, _ := json.Marshal(s)
		code, _ := postRaw(ctx, body, "application/json")
		Expect(code).To(Equal(http.StatusRequestEntityTooLarge))
		Expect(rrsOf(ctx, "default", fingerprintOf(s))).To(BeEmpty())
	})

	It("serves only create: discovery lists create alone, other verbs get 405", func(ctx SpecContext) {
		resources, err := admin.Discovery().ServerResourcesForGroupVersion("signals.remediation.io/v1")
		Expect(err).NotTo(HaveOccurred())
		verbs := map[string][]string{}
		for _, r := range resources.APIResources {
			Expect(r.Namespaced).To(BeFalse(), r.Name)
			verbs[r.Name] = r.Verbs
		}
		Expect(verbs).To(Equal(map[string][]string{"signals": {"create"}, "alertmanagernotifications": {"create"}}))

		rc, err := rest.RESTClientFor(restConfigFor(adminConf))
		Expect(err).NotTo(HaveOccurred())
		var code int
		rc.Get().AbsPath("/apis/signals.remediation.io/v1/signals").Do(ctx).StatusCode(&code)
		Expect(code).To(Equal(http.StatusMethodNotAllowed))
	})

	It("explains signal.spec through kubectl explain", func(ctx SpecContext) {
		out, err := kubectl(ctx, "explain", "signal.spec")
		Expect(err).NotTo(HaveOccurred())
		for _, f := range []string{"source", "name", "severity", "description", "status", "target", "labels", "annotations", "startsAt", "fingerprint"} {
			Expect(out).To(MatchRegexp(`(?m)^\s+` + f + `\s`))
		}
		Expect(out).To(ContainSubstring("deduplication key chosen by the sender"))
	})
})

var _ = Describe("RBAC", func() {
	It("allows signals only to users granted create on signals", func(ctx SpecContext) {
		user := "sender-" + rand.String(6)
		conf, err := cp.AddUser(user, nil)
		Expect(err).NotTo(HaveOccurred())
		client := versioned.NewForConfigOrDie(conf)

		_, err = client.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{})
		Expect(apierrors.IsForbidden(err)).To(BeTrue(), "got %v", err)

		kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
		_, err = kube.RbacV1().ClusterRoleBindings().Create(ctx, &rbacv1.ClusterRoleBinding{
			ObjectMeta: metav1.ObjectMeta{Name: user},
			RoleRef:    rbacv1.RoleRef{APIGroup: rbacv1.GroupName, Kind: "ClusterRole", Name: "signal-sender"},
			Subjects:   []rbacv1.Subject{{APIGroup: rbacv1.GroupName, Kind: rbacv1.UserKind, Name: user}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Eventually(func() error {
			_, err := client.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{})
			return err
		}).WithContext(ctx).Should(Succeed())
	})

	It("answers anonymous requests with 401", func(ctx SpecContext) {
		anonymous := rest.AnonymousClientConfig(cp.RESTConfig())
		_, err := versioned.NewForConfigOrDie(anonymous).SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{})
		Expect(apierrors.IsUnauthorized(err)).To(BeTrue(), "got %v", err)
	})
})

var _ = Describe("Admission", func() {
	It("runs validating admission policies on signals before anything is counted", func(ctx SpecContext) {
		kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
		name := "deny-test-severity-" + rand.String(5)
		policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
				FailurePolicy: ptr.To(admissionregistrationv1.Fail),
				MatchConstraints: &admissionregistrationv1.MatchResources{
					ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
						RuleWithOperations: admissionregistrationv1.RuleWithOperations{
							Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
							Rule: admissionregistrationv1.Rule{
								APIGroups: []string{"signals.remediation.io"}, APIVersions: []string{"v1"}, Resources: []string{"signals"},
							},
						},
					}},
				},
				Validations: []admissionregistrationv1.Validation{{
					Expression: "object.spec.severity != 'test-denied'",
					Message:    "severity test-denied is not accepted here",
				}},
			},
		}
		_, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, name, metav1.DeleteOptions{})).To(Succeed())
		})
		_, err = kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
				PolicyName:        name,
				ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
			},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, name, metav1.DeleteOptions{})).To(Succeed())
		})

		denied := newSignal("default")
		denied.Spec.Severity = "test-denied"
		// The server's policy informer picks the policy up asynchronously.
		Eventually(func() error {
			probe := newSignal("default")
			probe.Spec.Severity = "test-denied"
			_, err := admin.SignalsV1().Signals().Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}).WithContext(ctx).Should(MatchError(ContainSubstring("severity test-denied is not accepted here")))

		_, err = admin.SignalsV1().Signals().Create(ctx, denied, metav1.CreateOptions{})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(rrsOf(ctx, "default", fingerprintOf(denied))).To(BeEmpty())

		allowed := newSignal("default")
		_, err = admin.SignalsV1().Signals().Create(ctx, allowed, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
	})
})
