package integration

import (
	"fmt"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
)

// These specs create workload objects with ownerReferences by hand: the
// control plane has no controllers and no kubelet, so nothing adopts,
// deletes or runs them, and Pods stay Pending.
var _ = Describe("Owner resolution", func() {
	const ns = "default"
	var kube *kubernetes.Clientset

	BeforeEach(func() {
		kube = kubernetes.NewForConfigOrDie(adminConf)
	})

	podSpec := corev1.PodSpec{
		Containers:    []corev1.Container{{Name: "app", Image: "registry.invalid/app:1"}},
		RestartPolicy: corev1.RestartPolicyNever,
	}
	template := func(labels map[string]string) corev1.PodTemplateSpec {
		spec := podSpec
		spec.RestartPolicy = corev1.RestartPolicyAlways
		return corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: labels}, Spec: spec}
	}
	createPod := func(ctx SpecContext, name string, owners ...metav1.OwnerReference) *corev1.Pod {
		pod, err := kube.CoreV1().Pods(ns).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: name, OwnerReferences: owners},
			Spec:       podSpec,
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		return pod
	}
	createDeploymentRS := func(ctx SpecContext, app string) (*appsv1.Deployment, *appsv1.ReplicaSet) {
		labels := map[string]string{"app": app}
		deploy, err := kube.AppsV1().Deployments(ns).Create(ctx, &appsv1.Deployment{
			ObjectMeta: metav1.ObjectMeta{Name: app},
			Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template(labels)},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		rs, err := kube.AppsV1().ReplicaSets(ns).Create(ctx, &appsv1.ReplicaSet{
			ObjectMeta: metav1.ObjectMeta{
				Name:            app + "-5d8f7c",
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(deploy, appsv1.SchemeGroupVersion.WithKind("Deployment"))},
			},
			Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template(labels)},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		return deploy, rs
	}
	signalAbout := func(apiVersion, kind, name string) *signalsv1.Signal {
		s := newSignal(ns)
		s.Spec.Target = signalsv1.TargetReference{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name}
		return s
	}
	send := func(ctx SpecContext, s *signalsv1.Signal, opts metav1.CreateOptions) *remediationv1alpha1.RemediationRequest {
		rr, err := admin.SignalsV1().Signals().Create(ctx, s, opts)
		Expect(err).NotTo(HaveOccurred())
		return rr
	}
	ref := func(apiVersion, kind, name string) remediationv1alpha1.ResourceReference {
		return remediationv1alpha1.ResourceReference{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name}
	}
	fingerprintOfRef := func(r remediationv1alpha1.ResourceReference) string {
		return fingerprint.ForObject("", r)
	}
	podRS := func(rs *appsv1.ReplicaSet) metav1.OwnerReference {
		return *metav1.NewControllerRef(rs, appsv1.SchemeGroupVersion.WithKind("ReplicaSet"))
	}

	It("counts signals about two Pods of one Deployment on exactly 1 RemediationRequest about the Deployment", func(ctx SpecContext) {
		app := "web-" + rand.String(8)
		_, rs := createDeploymentRS(ctx, app)
		pod1 := createPod(ctx, rs.Name+"-a1b2c", podRS(rs))
		pod2 := createPod(ctx, rs.Name+"-d3e4f", podRS(rs))
		deployment := ref("apps/v1", "Deployment", app)
		fp := fingerprintOfRef(deployment)

		before := scrape(ctx)

		By("a dry run resolves too, and creates nothing")
		dry := send(ctx, signalAbout("v1", "Pod", pod1.Name), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		Expect(dry.Spec.TargetResource).To(Equal(deployment))
		Expect(dry.Spec.SignalFingerprint).To(Equal(fp))
		Expect(rrsOf(ctx, ns, fp)).To(BeEmpty())

		first := send(ctx, signalAbout("v1", "Pod", pod1.Name), metav1.CreateOptions{})
		second := send(ctx, signalAbout("v1", "Pod", pod2.Name), metav1.CreateOptions{})
		Expect(first.Annotations[signalsv1.AnnotationOutcome]).To(Equal("Created"))
		Expect(second.Annotations[signalsv1.AnnotationOutcome]).To(Equal("Deduplicated"))
		Expect(second.Name).To(Equal(first.Name))

		rrs := rrsOf(ctx, ns, fp)
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(Equal(int64(2)))
		Expect(rrs[0].Spec.TargetResource).To(Equal(deployment))
		Expect(rrs[0].Spec.SignalTarget).To(Equal(new(ref("v1", "Pod", pod1.Name))))
		Expect(rrs[0].Annotations).NotTo(HaveKey(signalsv1.AnnotationOwnerResolution))
		Expect(rrsOf(ctx, ns, fingerprintOfRef(ref("v1", "Pod", pod1.Name)))).To(BeEmpty())
		Expect(rrsOf(ctx, ns, fingerprintOfRef(ref("v1", "Pod", pod2.Name)))).To(BeEmpty())

		By("three resolutions read each Pod once and the ReplicaSet once: the rest came from the cache")
		after := scrape(ctx)
		delta := func(family string, labels map[string]string) float64 {
			return value(after, family, labels) - value(before, family, labels)
		}
		Expect(delta("signal_apiserver_owner_resolutions_total", map[string]string{"result": "owner"})).To(Equal(3.0))
		Expect(delta("signal_apiserver_owner_metadata_requests_total", map[string]string{"resource": "pods", "result": "ok"})).To(Equal(2.0))
		Expect(delta("signal_apiserver_owner_metadata_requests_total", map[string]string{"resource": "replicasets", "result": "ok"})).To(Equal(1.0))
	})

	It("resolves a Pod spelled pod to its Deployment, keeping the spelling in spec.signalTarget", func(ctx SpecContext) {
		app := "web-" + rand.String(8)
		_, rs := createDeploymentRS(ctx, app)
		pod := createPod(ctx, rs.Name+"-a1b2c", podRS(rs))
		rr := send(ctx, signalAbout("v1", "pod", pod.Name), metav1.CreateOptions{})
		Expect(rr.Spec.TargetResource).To(Equal(ref("apps/v1", "Deployment", app)))
		Expect(rr.Spec.SignalTarget).To(Equal(new(ref("v1", "pod", pod.Name))))
		Expect(rrsOf(ctx, ns, fingerprintOfRef(ref("apps/v1", "Deployment", app)))).To(HaveLen(1))
	})

	It("resolves a Pod of a StatefulSet to the StatefulSet", func(ctx SpecContext) {
		app := "db-" + rand.String(8)
		labels := map[string]string{"app": app}
		sts, err := kube.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: app},
			Spec:       appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template(labels)},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		pod := createPod(ctx, app+"-0", *metav1.NewControllerRef(sts, appsv1.SchemeGroupVersion.WithKind("StatefulSet")))

		rr := send(ctx, signalAbout("v1", "Pod", pod.Name), metav1.CreateOptions{})
		Expect(rr.Spec.TargetResource).To(Equal(ref("apps/v1", "StatefulSet", app)))
		Expect(rr.Spec.SignalTarget).To(Equal(new(ref("v1", "Pod", pod.Name))))
		Expect(rrsOf(ctx, ns, fingerprintOfRef(ref("apps/v1", "StatefulSet", app)))).To(HaveLen(1))
	})

	It("resolves a Pod of a Job, and the Job, to the CronJob: 1 RemediationRequest, count 2", func(ctx SpecContext) {
		name := "backup-" + rand.String(8)
		jobSpec := batchv1.JobSpec{Template: corev1.PodTemplateSpec{Spec: podSpec}}
		cron, err := kube.BatchV1().CronJobs(ns).Create(ctx, &batchv1.CronJob{
			ObjectMeta: metav1.ObjectMeta{Name: name},
			Spec:       batchv1.CronJobSpec{Schedule: "0 3 * * *", JobTemplate: batchv1.JobTemplateSpec{Spec: jobSpec}},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		job, err := kube.BatchV1().Jobs(ns).Create(ctx, &batchv1.Job{
			ObjectMeta: metav1.ObjectMeta{
				Name:            name + "-29000000",
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(cron, batchv1.SchemeGroupVersion.WithKind("CronJob"))},
			},
			Spec: jobSpec,
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		pod := createPod(ctx, job.Name+"-x7k2p", *metav1.NewControllerRef(job, batchv1.SchemeGroupVersion.WithKind("Job")))

		fromPod := send(ctx, signalAbout("v1", "Pod", pod.Name), metav1.CreateOptions{})
		fromJob := send(ctx, signalAbout("batch/v1", "Job", job.Name), metav1.CreateOptions{})
		cronJob := ref("batch/v1", "CronJob", name)
		Expect(fromPod.Spec.TargetResource).To(Equal(cronJob))
		Expect(fromJob.Name).To(Equal(fromPod.Name))
		rrs := rrsOf(ctx, ns, fingerprintOfRef(cronJob))
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(Equal(int64(2)))
		Expect(rrs[0].Spec.SignalTarget).To(Equal(new(ref("v1", "Pod", pod.Name))))
	})

	It("leaves a Pod without an owner as it is, with nothing recorded", func(ctx SpecContext) {
		pod := createPod(ctx, "bare-"+rand.String(8))
		rr := send(ctx, signalAbout("v1", "Pod", pod.Name), metav1.CreateOptions{})
		Expect(rr.Spec.TargetResource).To(Equal(ref("v1", "Pod", pod.Name)))
		Expect(rr.Spec.SignalTarget).To(BeNil())
		Expect(rr.Annotations).NotTo(HaveKey(signalsv1.AnnotationOwnerResolution))
		Expect(rrsOf(ctx, ns, fingerprintOfRef(ref("v1", "Pod", pod.Name)))).To(HaveLen(1))
	})

	It("falls back to the Pod, and records why, when its owner is missing", func(ctx SpecContext) {
		ghost := &appsv1.ReplicaSet{ObjectMeta: metav1.ObjectMeta{Name: "gone-" + rand.String(8), UID: "6f1c1a52-0000-4000-8000-000000000001"}}
		pod := createPod(ctx, ghost.Name+"-q8w9e", podRS(ghost))

		rr := send(ctx, signalAbout("v1", "Pod", pod.Name), metav1.CreateOptions{})
		Expect(rr.Spec.TargetResource).To(Equal(ref("v1", "Pod", pod.Name)))
		Expect(rr.Spec.SignalTarget).To(BeNil())
		rrs := rrsOf(ctx, ns, fingerprintOfRef(ref("v1", "Pod", pod.Name)))
		Expect(rrs).To(HaveLen(1))
		Expect(rrs[0].Annotations).To(HaveKeyWithValue(signalsv1.AnnotationOwnerResolution,
			"NotFound: ReplicaSet "+ns+"/"+ghost.Name+" not found"))
	})

	It("falls back to the Pod, and records why, when its owner's name belongs to another object", func(ctx SpecContext) {
		_, rs := createDeploymentRS(ctx, "api-"+rand.String(8))
		impostor := rs.DeepCopy()
		impostor.UID = "6f1c1a52-0000-4000-8000-000000000002" // the ReplicaSet that was deleted and recreated
		pod := createPod(ctx, rs.Name+"-z1x2c", podRS(impostor))

		rr := send(ctx, signalAbout("v1", "Pod", pod.Name), metav1.CreateOptions{})
		Expect(rr.Spec.TargetResource).To(Equal(ref("v1", "Pod", pod.Name)))
		rrs := rrsOf(ctx, ns, fingerprintOfRef(ref("v1", "Pod", pod.Name)))
		Expect(rrs).To(HaveLen(1))
		Expect(rrs[0].Annotations).To(HaveKeyWithValue(signalsv1.AnnotationOwnerResolution,
			"UIDMismatch: ReplicaSet "+ns+"/"+rs.Name+" has UID "+string(rs.UID)+", its dependent's ownerReference names "+string(impostor.UID)))
	})

	It("leaves every target as it is with --resolve-owners=false", func(ctx SpecContext) {
		off, err := cp.StartServer(ctx, "signal-apiserver-owners-off", "--resolve-owners=false")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(off.Stop)
		direct := versioned.NewForConfigOrDie(cp.FrontProxyClientConfig(off, "system:admin", []string{"system:masters"}))
		_, rs := createDeploymentRS(ctx, "cart-"+rand.String(8))
		pod := createPod(ctx, rs.Name+"-v4b5n", podRS(rs))

		rr, err := direct.SignalsV1().Signals().Create(ctx, signalAbout("v1", "Pod", pod.Name), metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(rr.Spec.TargetResource).To(Equal(ref("v1", "Pod", pod.Name)))
		Expect(rr.Spec.SignalTarget).To(BeNil())
		Expect(rr.Annotations).NotTo(HaveKey(signalsv1.AnnotationOwnerResolution))
		Expect(rrsOf(ctx, ns, fingerprintOfRef(ref("v1", "Pod", pod.Name)))).To(HaveLen(1))
	})

	It("leaves a signal with its sender's own fingerprint untouched", func(ctx SpecContext) {
		app := "shop-" + rand.String(8)
		_, rs := createDeploymentRS(ctx, app)
		pod := createPod(ctx, rs.Name+"-m5n6b", podRS(rs))
		s := signalAbout("v1", "Pod", pod.Name)
		s.Spec.Fingerprint = "alertmanager/" + rand.String(16)

		rr := send(ctx, s, metav1.CreateOptions{})
		Expect(rr.Spec.SignalFingerprint).To(Equal(fingerprint.ForKey(s.Spec.Fingerprint)))
		Expect(rr.Spec.TargetResource).To(Equal(ref("v1", "Pod", pod.Name)))
		Expect(rr.Spec.SignalTarget).To(BeNil())
		Expect(rrsOf(ctx, ns, fingerprintOfRef(ref("apps/v1", "Deployment", app)))).To(BeEmpty())
	})

	It("refuses a signal about a StatefulSet's Pod deleted and recreated under its name with 422 on spec.target.uid, and counts the new Pod's on the StatefulSet's one RemediationRequest", func(ctx SpecContext) {
		app := "db-" + rand.String(8)
		labels := map[string]string{"app": app}
		sts, err := kube.AppsV1().StatefulSets(ns).Create(ctx, &appsv1.StatefulSet{
			ObjectMeta: metav1.ObjectMeta{Name: app},
			Spec:       appsv1.StatefulSetSpec{Selector: &metav1.LabelSelector{MatchLabels: labels}, Template: template(labels)},
		}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		stsRef := *metav1.NewControllerRef(sts, appsv1.SchemeGroupVersion.WithKind("StatefulSet"))
		old := createPod(ctx, app+"-0", stsRef)
		statefulSet := ref("apps/v1", "StatefulSet", app)
		fp := fingerprintOfRef(statefulSet)
		about := func(uid types.UID) *signalsv1.Signal {
			s := signalAbout("v1", "Pod", old.Name)
			s.Spec.Target.UID = uid
			return s
		}

		By("the old Pod's UID counts while it lives")
		Expect(send(ctx, about(old.UID), metav1.CreateOptions{}).Annotations[signalsv1.AnnotationOutcome]).To(Equal("Created"))

		By("deleting the Pod and creating it again under its name")
		Expect(kube.CoreV1().Pods(ns).Delete(ctx, old.Name, metav1.DeleteOptions{GracePeriodSeconds: new(int64(0))})).To(Succeed())
		Eventually(func() bool {
			_, err := kube.CoreV1().Pods(ns).Get(ctx, old.Name, metav1.GetOptions{})
			return apierrors.IsNotFound(err)
		}).WithContext(ctx).WithTimeout(30 * time.Second).Should(BeTrue())
		recreated := createPod(ctx, old.Name, stsRef)
		Expect(recreated.UID).NotTo(Equal(old.UID))

		By("the new Pod's UID counts on the same RemediationRequest, and so does a signal without a UID: the UID is not in the fingerprint")
		send(ctx, about(recreated.UID), metav1.CreateOptions{})
		send(ctx, about(""), metav1.CreateOptions{})

		By("the old UID is refused, on a dry run too, and counts nothing")
		before := scrape(ctx)
		for _, opts := range []metav1.CreateOptions{{DryRun: []string{metav1.DryRunAll}}, {}} {
			_, err := admin.SignalsV1().Signals().Create(ctx, about(old.UID), opts)
			Expect(invalidField(err)).To(Equal([]string{"spec.target.uid"}))
			Expect(err.Error()).To(ContainSubstring(fmt.Sprintf("Pod %s/%s has UID %s, not %s: the object the signal is about was deleted and its name reused", ns, old.Name, recreated.UID, old.UID)))
		}
		after := scrape(ctx)
		Expect(value(after, "signal_apiserver_owner_resolutions_total", map[string]string{"result": "uid_mismatch"}) -
			value(before, "signal_apiserver_owner_resolutions_total", map[string]string{"result": "uid_mismatch"})).To(Equal(2.0))

		rrs := rrsOf(ctx, ns, fp)
		Expect(rrs).To(HaveLen(1))
		Expect(countOf(&rrs[0])).To(Equal(int64(3)))
		Expect(rrs[0].Spec.TargetResource).To(Equal(statefulSet))
		Expect(rrsOf(ctx, ns, fingerprintOfRef(ref("v1", "Pod", old.Name)))).To(BeEmpty())
	})
})
