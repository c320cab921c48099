package integration

import (
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/utils/ptr"
)

// signalPolicy makes signal-apiserver's admission deny every Signal for
// which one of validations is false: a ValidatingAdmissionPolicy named name
// on creates of signals and its binding, removed when the spec ends.
func signalPolicy(ctx context.Context, name string, validations ...admissionregistrationv1.Validation) {
	kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	policies, bindings := kube.AdmissionregistrationV1().ValidatingAdmissionPolicies(), kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings()
	_, err := policies.Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule:       admissionregistrationv1.Rule{APIGroups: []string{"signals.remediation.io"}, APIVersions: []string{"v1"}, Resources: []string{"signals"}},
					},
				}},
			},
			Validations: validations,
		},
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		Expect(policies.Delete(ctx, name, metav1.DeleteOptions{})).To(Succeed())
	})
	_, err = bindings.Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: name},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        name,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx SpecContext) {
		Expect(bindings.Delete(ctx, name, metav1.DeleteOptions{})).To(Succeed())
	})
}

var _ = Describe("Signal metadata", func() {
	It("reaches admission as the sender set it, without managed fields", func(ctx SpecContext) {
		name := "signal-metadata-" + rand.String(5)
		signalPolicy(ctx, name,
			admissionregistrationv1.Validation{Expression: "!has(object.metadata.managedFields)", Message: "a Signal has managed fields"},
			admissionregistrationv1.Validation{Expression: "!has(object.metadata.labels) || !('" + name + "' in object.metadata.labels)", Message: "labelled " + name},
		)

		labelled := newSignal("default")
		labelled.Labels = map[string]string{name: "yes"}
		// The server's policy informer picks the policy up asynchronously.
		Eventually(func() error {
			_, err := admin.SignalsV1().Signals().Create(ctx, labelled, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
			return err
		}).WithContext(ctx).Should(MatchError(ContainSubstring("labelled " + name)))

		_, err := admin.SignalsV1().Signals().Create(ctx, labelled, metav1.CreateOptions{})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(rrsOf(ctx, "default", fingerprintOf(labelled))).To(BeEmpty())
		// Admitted, so without managed fields.
		plain := newSignal("default")
		_, err = admin.SignalsV1().Signals().Create(ctx, plain, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rrsOf(ctx, "default", fingerprintOf(plain))).To(HaveLen(1))
	})
})
