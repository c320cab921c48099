package integration

import (
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclient "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/targets"
)

// invalidField returns the fields a 422 names, and fails on any other error.
func invalidField(err error) []string {
	GinkgoHelper()
	Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v, want 422 Invalid", err)
	var fields []string
	for _, c := range err.(apierrors.APIStatus).Status().Details.Causes {
		fields = append(fields, c.Field)
	}
	return fields
}

var _ = Describe("Target kinds resolved through discovery", func() {
	const ns = "default"

	It("counts one Deployment spelled Deployment, deployment, deployments and deploy on exactly 1 RemediationRequest, count 4", func(ctx SpecContext) {
		s := newSignal(ns)
		canonical := referenceOf(s.Spec.Target)
		var names []string
		for _, kind := range []string{"deployment", "Deployment", "deployments", "deploy"} {
			sig := s.DeepCopy()
			sig.Spec.Target.Kind = kind
			rr, err := admin.SignalsV1().Signals().Create(ctx, sig, metaCreate)
			Expect(err).NotTo(HaveOccurred(), kind)
			names = append(names, rr.Name)
		}
		Expect(names).To(HaveEach(names[0]))
		rrs := rrsOf(ctx, ns, fingerprintOf(s))
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(Equal(int64(4)))
		Expect(rrs[0].Spec.TargetResource).To(Equal(canonical))
		// The first signal opened it, as its sender wrote the target.
		sent := canonical
		sent.Kind = "deployment"
		Expect(rrs[0].Spec.SignalTarget).To(Equal(&sent))
	})

	It("refuses an unknown kind with 422 on spec.target.kind, naming it and what was probably meant", func(ctx SpecContext) {
		before := scrape(ctx)
		s := newSignal(ns)
		s.Spec.Target.Kind = "Deploymnet"
		_, err := admin.SignalsV1().Signals().Create(ctx, s, metaCreate)
		Expect(invalidField(err)).To(Equal([]string{"spec.target.kind"}))
		Expect(err.Error()).To(ContainSubstring(`"Deploymnet"`))
		Expect(err.Error()).To(ContainSubstring(`did you mean apiVersion "apps/v1", kind "Deployment"?`))
		Expect(rrsOf(ctx, ns, fingerprintOf(s))).To(BeEmpty())
		after := scrape(ctx)
		Expect(total(after, "signal_apiserver_target_kind_misses_total") - total(before, "signal_apiserver_target_kind_misses_total")).To(Equal(1.0))
	})

	It("refuses a namespaced kind without a namespace, and a name no object can have, with 422 on the field", func(ctx SpecContext) {
		noNamespace := newSignal("")
		_, err := admin.SignalsV1().Signals().Create(ctx, noNamespace, metaCreate)
		Expect(invalidField(err)).To(Equal([]string{"spec.target.namespace"}))
		Expect(err.Error()).To(ContainSubstring("Deployment.apps is namespaced"))
		Expect(rrsOf(ctx, rrNamespace(noNamespace), fingerprintOf(noNamespace))).To(BeEmpty())

		badName := newSignal(ns)
		badName.Spec.Target.Name = "Web!"
		_, err = admin.SignalsV1().Signals().Create(ctx, badName, metaCreate)
		Expect(invalidField(err)).To(Equal([]string{"spec.target.name"}))
		Expect(rrsOf(ctx, ns, fingerprintOf(badName))).To(BeEmpty())
	})

	It("accepts the kind of a CRD installed during the spec within the documented refresh interval", func(ctx SpecContext) {
		group := "t" + rand.String(6) + ".example.com"
		client := apiextensionsclient.NewForConfigOrDie(adminConf)
		crd := &apiextensionsv1.CustomResourceDefinition{
			ObjectMeta: metav1.ObjectMeta{Name: "widgets." + group},
			Spec: apiextensionsv1.CustomResourceDefinitionSpec{
				Group: group,
				Names: apiextensionsv1.CustomResourceDefinitionNames{Plural: "widgets", Singular: "widget", Kind: "Widget", ShortNames: []string{"wdg"}},
				Scope: apiextensionsv1.NamespaceScoped,
				Versions: []apiextensionsv1.CustomResourceDefinitionVersion{{
					Name: "v1", Served: true, Storage: true,
					Schema: &apiextensionsv1.CustomResourceValidation{OpenAPIV3Schema: &apiextensionsv1.JSONSchemaProps{Type: "object", XPreserveUnknownFields: new(true)}},
				}},
			},
		}
		s := newSignal(ns)
		s.Spec.Target = signalsv1.TargetReference{APIVersion: group + "/v1", Kind: "wdg", Namespace: ns, Name: "w-" + rand.String(6)}

		By("before the CRD: unknown")
		_, err := admin.SignalsV1().Signals().Create(ctx, s, metaCreate)
		Expect(invalidField(err)).To(Equal([]string{"spec.target.kind"}))

		_, err = client.ApiextensionsV1().CustomResourceDefinitions().Create(ctx, crd, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(func(ctx SpecContext) {
			Expect(client.ApiextensionsV1().CustomResourceDefinitions().Delete(ctx, crd.Name, metav1.DeleteOptions{})).To(Succeed())
		})
		Eventually(func(g Gomega) {
			got, err := client.ApiextensionsV1().CustomResourceDefinitions().Get(ctx, crd.Name, metav1.GetOptions{})
			g.Expect(err).NotTo(HaveOccurred())
			established := false
			for _, c := range got.Status.Conditions {
				established = established || (c.Type == apiextensionsv1.Established && c.Status == apiextensionsv1.ConditionTrue)
			}
			g.Expect(established).To(BeTrue())
		}).WithContext(ctx).WithTimeout(30 * time.Second).WithPolling(200 * time.Millisecond).Should(Succeed())

		By("once established: found within targets.MinRefreshInterval, plus kube-apiserver's discovery catching up")
		var rr *remediationv1alpha1.RemediationRequest
		Eventually(func() error {
			rr, err = admin.SignalsV1().Signals().Create(ctx, s, metaCreate)
			return err
		}).WithContext(ctx).WithTimeout(targets.MinRefreshInterval + 5*time.Second).WithPolling(500 * time.Millisecond).Should(Succeed())
		Expect(rr.Spec.TargetResource).To(Equal(remediationv1alpha1.ResourceReference{APIVersion: group + "/v1", Kind: "Widget", Namespace: ns, Name: s.Spec.Target.Name}))
	})
})
