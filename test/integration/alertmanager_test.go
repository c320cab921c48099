package integration

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"github.com/onsi/gomega/gexec"
	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	authenticationv1 "k8s.io/api/authentication/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/ptr"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
)

const notificationsPath = "/apis/signals.remediation.io/v1/alertmanagernotifications"

// amAlert is an alert as Alertmanager's /api/v2/alerts takes it.
type amAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	StartsAt    time.Time         `json:"startsAt"`
	EndsAt      *time.Time        `json:"endsAt,omitempty"`
}

// alertmanager is a real Alertmanager whose one receiver posts to
// signal-apiserver through kube-apiserver.
type alertmanager struct {
	url string
}

func (am *alertmanager) post(ctx context.Context, alerts ...amAlert) {
	body, err := json.Marshal(alerts)
	Expect(err).NotTo(HaveOccurred())
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, am.url+"/api/v2/alerts", bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = res.Body.Close() }()
	Expect(res.StatusCode).To(Equal(http.StatusOK))
}

// failedNotifications reads Alertmanager's count of failed webhook
// requests, retries included, from its /metrics.
func (am *alertmanager) failedNotifications(ctx context.Context) (float64, error) {
	return am.webhookCounter(ctx, "alertmanager_notification_requests_failed_total")
}

// notificationRequests reads Alertmanager's count of webhook requests,
// retries included, from its /metrics.
func (am *alertmanager) notificationRequests(ctx context.Context) (float64, error) {
	return am.webhookCounter(ctx, "alertmanager_notification_requests_total")
}

// webhookCounter reads the webhook integration's series of family from
// Alertmanager's /metrics.
func (am *alertmanager) webhookCounter(ctx context.Context, family string) (float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, am.url+"/metrics", nil)
	if err != nil {
		return 0, err
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		return 0, err
	}
	defer func() { _ = res.Body.Close() }()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(res.Body); err != nil {
		return 0, err
	}
	for line := range strings.SplitSeq(buf.String(), "\n") {
		if strings.HasPrefix(line, family+`{integration="webhook"}`) {
			var v float64
			_, err := fmt.Sscan(line[strings.LastIndex(line, " ")+1:], &v)
			return v, err
		}
	}
	return 0, nil
}

// alertmanagerBinary is the binary `make test` built, or one this run builds
// with the same cached script.
func alertmanagerBinary() string {
	if bin := os.Getenv("ALERTMANAGER_BINARY"); bin != "" {
		return bin
	}
	out, err := exec.Command(filepath.Join(repoRoot, "hack", "build-alertmanager.sh")).Output()
	Expect(err).NotTo(HaveOccurred())
	return strings.TrimSpace(string(out))
}

func freeAddress() string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	Expect(err).NotTo(HaveOccurred())
	defer func() { _ = l.Close() }()
	return l.Addr().String()
}

// startAlertmanager runs Alertmanager with a webhook receiver that sends
// every alert of label group=<group> in one notification to kube-apiserver,
// authenticated with the token in tokenFile.
func startAlertmanager(ctx context.Context, tokenFile string) *alertmanager {
	dir := GinkgoT().TempDir()
	caFile := filepath.Join(dir, "kube-apiserver-ca.crt")
	Expect(os.WriteFile(caFile, cp.RESTConfig().CAData, 0o600)).To(Succeed())
	config := fmt.Sprintf(`route:
  receiver: signal-apiserver
  group_by: [group]
  group_wait: 1s
  group_interval: 1s
  repeat_interval: 1h
receivers:
- name: signal-apiserver
  webhook_configs:
  - url: %s%s
    send_resolved: true
    http_config:
      authorization:
        credentials_file: %s
      tls_config:
        ca_file: %s
`, strings.TrimSuffix(cp.RESTConfig().Host, "/"), notificationsPath, tokenFile, caFile)
	configFile := filepath.Join(dir, "alertmanager.yml")
	Expect(os.WriteFile(configFile, []byte(config), 0o600)).To(Succeed())

	address := freeAddress()
	cmd := exec.Command(alertmanagerBinary(),
		"--config.file="+configFile,
		"--storage.path="+filepath.Join(dir, "data"),
		"--web.listen-address="+address,
		"--cluster.listen-address=", // a single Alertmanager, no gossip
		"--log.level=debug",
	)
	session, err := gexec.Start(cmd, GinkgoWriter, GinkgoWriter)
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(func() { session.Terminate().Wait(10 * time.Second) })

	am := &alertmanager{url: "http://" + address}
	Eventually(func() (int, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, am.url+"/-/ready", nil)
		if err != nil {
			return 0, err
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		_ = res.Body.Close()
		return res.StatusCode, nil
	}).WithContext(ctx).Should(Equal(http.StatusOK))
	return am
}

// alertmanagerToken applies artifacts/alertmanager and writes a token of
// its ServiceAccount, from the TokenRequest API, to a file.
func alertmanagerToken(ctx context.Context) string {
	kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: "monitoring"}}, metav1.CreateOptions{})
	if !apierrors.IsAlreadyExists(err) {
		Expect(err).NotTo(HaveOccurred())
	}
	out, err := kubectl(ctx, "apply", "--dry-run=server", "-k", filepath.Join("artifacts", "alertmanager"))
	Expect(err).NotTo(HaveOccurred(), out)
	out, err = kubectl(ctx, "apply", "-k", filepath.Join("artifacts", "alertmanager"))
	Expect(err).NotTo(HaveOccurred(), out)
	token, err := kube.CoreV1().ServiceAccounts("monitoring").CreateToken(ctx, "alertmanager-signals", &authenticationv1.TokenRequest{
		Spec: authenticationv1.TokenRequestSpec{ExpirationSeconds: ptr.To[int64](3600)},
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	file := filepath.Join(GinkgoT().TempDir(), "token")
	Expect(os.WriteFile(file, []byte(token.Status.Token), 0o600)).To(Succeed())
	return file
}

// newTestNamespace creates a namespace of its own for a spec's
// RemediationRequests.
func newTestNamespace(ctx context.Context) string {
	kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	ns, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "am-"}}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	return ns.Name
}

// podRR is the one RemediationRequest of the pod's default fingerprint.
func podRR(ctx context.Context, namespace, pod string) func() (*remediationv1alpha1.RemediationRequest, error) {
	fp := fingerprint.ForObject("", remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Pod", Namespace: namespace, Name: pod})
	return func() (*remediationv1alpha1.RemediationRequest, error) {
		rrs := rrsOf(ctx, namespace, fp)
		if len(rrs) != 1 {
			return nil, fmt.Errorf("%d RemediationRequests of pod %s/%s", len(rrs), namespace, pod)
		}
		return &rrs[0], nil
	}
}

func podAlert(group, namespace, pod, alertname string, startsAt time.Time) amAlert {
	return amAlert{
		Labels: map[string]string{
			"alertname": alertname, "group": group, "namespace": namespace, "pod": pod, "severity": "critical",
		},
		Annotations: map[string]string{"description": alertname + " on " + pod},
		StartsAt:    startsAt,
	}
}

var haveCount = func(n int64) OmegaMatcher {
	return WithTransform(countOf, Equal(n))
}

var _ = Describe("Alertmanager", Ordered, func() {
	var am *alertmanager

	BeforeAll(func(ctx SpecContext) {
		am = startAlertmanager(ctx, alertmanagerToken(ctx))
	})

	It("delivers every alert of a group as a signal, counted once however often Alertmanager resends it", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		group := "g-" + rand.String(6)
		start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		am.post(ctx,
			podAlert(group, ns, "web-0", "KubePodCrashLooping", start),
			podAlert(group, ns, "web-1", "KubePodCrashLooping", start),
			podAlert(group, ns, "web-2", "KubePodCrashLooping", start),
			// A second alert on web-0: the same RemediationRequest.
			podAlert(group, ns, "web-0", "KubePodNotReady", start),
		)
		for _, pod := range []string{"web-1", "web-2"} {
			Eventually(podRR(ctx, ns, pod)).WithContext(ctx).Should(haveCount(1))
		}
		Eventually(podRR(ctx, ns, "web-0")).WithContext(ctx).Should(haveCount(2))

		// A new alert in the group: Alertmanager sends the whole group again,
		// and the alerts already counted are not counted again.
		am.post(ctx, podAlert(group, ns, "web-3", "KubePodCrashLooping", start))
		Eventually(podRR(ctx, ns, "web-3")).WithContext(ctx).Should(haveCount(1))
		// Resolving web-1 sends the group once more.
		ended := time.Now().Add(-time.Second)
		resolved := podAlert(group, ns, "web-1", "KubePodCrashLooping", start)
		resolved.EndsAt = &ended
		am.post(ctx, resolved)
		Eventually(func() (*metav1.Time, error) {
			rr, err := podRR(ctx, ns, "web-1")()
			if err != nil {
				return nil, err
			}
			return rr.Status.Deduplication.LastResolvedAt, nil
		}).WithContext(ctx).ShouldNot(BeNil())

		for pod, want := range map[string]int64{"web-0": 2, "web-1": 1, "web-2": 1, "web-3": 1} {
			rr, err := podRR(ctx, ns, pod)()
			Expect(err).NotTo(HaveOccurred())
			Expect(countOf(rr)).To(Equal(want), pod)
			Expect(keysIn(rr)).To(Equal(int(want)), pod)
			Expect(rr.Spec.SignalSource).To(Equal("alertmanager"))
			Expect(rr.Spec.TargetResource).To(Equal(remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: pod}))
		}
	})

	It("retries a batch that failed part way and counts each alert once", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		group := "g-" + rand.String(6)
		victim := "victim-" + rand.String(6)
		denyRemediationRequestsFor(ctx, ns, victim)

		failedBefore, err := am.failedNotifications(ctx)
		Expect(err).NotTo(HaveOccurred())
		start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		am.post(ctx,
			podAlert(group, ns, "api-0", "KubePodCrashLooping", start),
			podAlert(group, ns, victim, "KubePodCrashLooping", start),
			podAlert(group, ns, "api-1", "KubePodCrashLooping", start),
		)
		// The other alerts are recorded, the batch is answered 5xx, and
		// Alertmanager fails and retries.
		for _, pod := range []string{"api-0", "api-1"} {
			Eventually(podRR(ctx, ns, pod)).WithContext(ctx).Should(haveCount(1))
		}
		Eventually(am.failedNotifications).WithContext(ctx).Should(BeNumerically(">", failedBefore))
		Expect(podRR(ctx, ns, victim)()).Error().To(HaveOccurred())

		allowRemediationRequests(ctx)
		Eventually(podRR(ctx, ns, victim)).WithContext(ctx).Should(haveCount(1))
		for _, pod := range []string{"api-0", victim, "api-1"} {
			rr, err := podRR(ctx, ns, pod)()
			Expect(err).NotTo(HaveOccurred())
			Expect(countOf(rr)).To(Equal(int64(1)), pod)
			Expect(keysIn(rr)).To(Equal(1), pod)
		}
	})
})

var denyPolicyName string

// denyRemediationRequestsFor makes kube-apiserver refuse to create
// RemediationRequests about pod, until allowRemediationRequests.
func denyRemediationRequestsFor(ctx context.Context, namespace, pod string) {
	kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	denyPolicyName = "deny-rr-" + rand.String(5)
	policy := &admissionregistrationv1.ValidatingAdmissionPolicy{
		ObjectMeta: metav1.ObjectMeta{Name: denyPolicyName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicySpec{
			FailurePolicy: ptr.To(admissionregistrationv1.Fail),
			MatchConstraints: &admissionregistrationv1.MatchResources{
				ResourceRules: []admissionregistrationv1.NamedRuleWithOperations{{
					RuleWithOperations: admissionregistrationv1.RuleWithOperations{
						Operations: []admissionregistrationv1.OperationType{admissionregistrationv1.Create},
						Rule: admissionregistrationv1.Rule{
							APIGroups: []string{"remediation.io"}, APIVersions: []string{"v1alpha1"}, Resources: []string{"remediationrequests"},
						},
					},
				}},
			},
			Validations: []admissionregistrationv1.Validation{{
				Expression: fmt.Sprintf("object.spec.targetResource.name != '%s'", pod),
				Message:    "test: no RemediationRequest for " + pod,
			}},
		},
	}
	_, err := kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Create(ctx, policy, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	_, err = kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Create(ctx, &admissionregistrationv1.ValidatingAdmissionPolicyBinding{
		ObjectMeta: metav1.ObjectMeta{Name: denyPolicyName},
		Spec: admissionregistrationv1.ValidatingAdmissionPolicyBindingSpec{
			PolicyName:        denyPolicyName,
			ValidationActions: []admissionregistrationv1.ValidationAction{admissionregistrationv1.Deny},
		},
	}, metav1.CreateOptions{})
	Expect(err).NotTo(HaveOccurred())
	DeferCleanup(allowRemediationRequests)

	// The policy takes effect asynchronously: wait until a dry-run create
	// is denied.
	probe := &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: remediationv1alpha1.NameFor(strings.Repeat("0", 64)), Namespace: namespace},
		Spec: remediationv1alpha1.RemediationRequestSpec{
			SignalFingerprint: strings.Repeat("0", 64),
			SignalName:        "Probe",
			SignalSource:      "integration-test",
			TargetResource:    remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Pod", Namespace: namespace, Name: pod},
			FiringTime:        metav1.Now(),
			ReceivedTime:      metav1.Now(),
		},
	}
	Eventually(func() error {
		_, err := admin.RemediationV1alpha1().RemediationRequests(namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err
	}).WithContext(ctx).Should(MatchError(ContainSubstring("test: no RemediationRequest for " + pod)))
}

func allowRemediationRequests(ctx context.Context) {
	if denyPolicyName == "" {
		return
	}
	kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
	for _, err := range []error{
		kube.AdmissionregistrationV1().ValidatingAdmissionPolicyBindings().Delete(ctx, denyPolicyName, metav1.DeleteOptions{}),
		kube.AdmissionregistrationV1().ValidatingAdmissionPolicies().Delete(ctx, denyPolicyName, metav1.DeleteOptions{}),
	} {
		if !apierrors.IsNotFound(err) {
			Expect(err).NotTo(HaveOccurred())
		}
	}
	denyPolicyName = ""
}

// webhookBody is a notification as Alertmanager v0.35 sends it: no
// apiVersion, no kind.
func webhookBody(namespace string, alerts ...string) []byte {
	return []byte(fmt.Sprintf(`{"receiver":"signal-apiserver","status":"firing","alerts":[%s],`+
		`"groupLabels":{"namespace":%q},"commonLabels":{"namespace":%q},"commonAnnotations":{},`+
		`"externalURL":"http://alertmanager:9093","version":"4","groupKey":"{}:{namespace=\"%s\"}","truncatedAlerts":0}`,
		strings.Join(alerts, ","), namespace, namespace, namespace))
}

func webhookAlert(status, namespace, pod, fp string) string {
	return fmt.Sprintf(`{"status":%q,"labels":{"alertname":"KubePodCrashLooping","namespace":%q,"pod":%q,"severity":"warning"},`+
		`"annotations":{"description":"crash looping"},"startsAt":"2026-11-28T01:02:03.456789Z","endsAt":"0001-01-01T00:00:00Z",`+
		`"generatorURL":"http://prometheus:9090/graph","fingerprint":%q}`, status, namespace, pod, fp)
}

// postNotification posts body as cfg's user and returns the status code
// and the body of the answer.
func postNotification(ctx context.Context, cfg *rest.Config, body []byte, dryRun bool, params ...string) (int, []byte) {
	rc, err := rest.RESTClientFor(restConfigFor(cfg))
	Expect(err).NotTo(HaveOccurred())
	req := rc.Post().AbsPath(notificationsPath).SetHeader("Content-Type", "application/json").Body(body)
	if dryRun {
		req = req.Param("dryRun", metav1.DryRunAll)
	}
	for i := 0; i+1 < len(params); i += 2 {
		req = req.Param(params[i], params[i+1])
	}
	var code int
	raw, _ := req.Do(ctx).StatusCode(&code).Raw()
	return code, raw
}

var _ = Describe("The alertmanagernotifications API", func() {
	It("takes a webhook body without apiVersion and kind and answers with one result per alert", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		body := webhookBody(ns,
			webhookAlert("firing", ns, "db-0", "1111111111111111"),
			webhookAlert("firing", ns, "db-1", "2222222222222222"),
			webhookAlert("resolved", ns, "db-2", "3333333333333333"),
		)
		code, raw := postNotification(ctx, adminConf, body, false)
		Expect(code).To(Equal(http.StatusCreated), string(raw))
		var got signalsv1.AlertmanagerNotification
		Expect(json.Unmarshal(raw, &got)).To(Succeed())
		Expect(got.Kind).To(Equal("AlertmanagerNotification"))
		Expect(got.Alerts).To(BeEmpty())
		rr0, err := podRR(ctx, ns, "db-0")()
		Expect(err).NotTo(HaveOccurred())
		rr1, err := podRR(ctx, ns, "db-1")()
		Expect(err).NotTo(HaveOccurred())
		Expect(got.Results).To(Equal([]signalsv1.AlertResult{
			{Index: 0, Fingerprint: "1111111111111111", Outcome: "Created", Namespace: ns, Name: rr0.Name},
			{Index: 1, Fingerprint: "2222222222222222", Outcome: "Created", Namespace: ns, Name: rr1.Name},
			{Index: 2, Fingerprint: "3333333333333333", Outcome: "NoActive"},
		}))

		// The same notification again: nothing is counted twice.
		code, raw = postNotification(ctx, adminConf, body, false)
		Expect(code).To(Equal(http.StatusCreated), string(raw))
		Expect(json.Unmarshal(raw, &got)).To(Succeed())
		Expect(got.Results[0].Outcome).To(Equal("AlreadyCounted"))
		Expect(got.Results[1].Outcome).To(Equal("AlreadyCounted"))
		Expect(podRR(ctx, ns, "db-0")()).To(haveCount(1))
		Expect(podRR(ctx, ns, "db-1")()).To(haveCount(1))
		Expect(podRR(ctx, ns, "db-0")()).To(WithTransform(keysIn, Equal(1)))
	})

	It("treats unknown fields as any Kubernetes create does: accepted by default, 400 with fieldValidation=Strict", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		alert := strings.Replace(webhookAlert("firing", ns, "u-0", "9999999999999999"), `"status"`, `"futureField":1,"status"`, 1)
		code, raw := postNotification(ctx, adminConf, webhookBody(ns, alert), true, "fieldValidation", "Strict")
		Expect(code).To(Equal(http.StatusBadRequest), string(raw))
		Expect(string(raw)).To(ContainSubstring(`unknown field \"alerts[0].futureField\"`))
		code, raw = postNotification(ctx, adminConf, webhookBody(ns, alert), true)
		Expect(code).To(Equal(http.StatusCreated), string(raw))
	})

	It("writes nothing on dry run", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		code, raw := postNotification(ctx, adminConf, webhookBody(ns, webhookAlert("firing", ns, "dry-0", "4444444444444444")), true)
		Expect(code).To(Equal(http.StatusCreated), string(raw))
		var got signalsv1.AlertmanagerNotification
		Expect(json.Unmarshal(raw, &got)).To(Succeed())
		Expect(got.Results).To(HaveLen(1))
		Expect(got.Results[0].Outcome).To(Equal("Created"))
		list, err := admin.RemediationV1alpha1().RemediationRequests(ns).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(list.Items).To(BeEmpty())
	})

	It("rejects each malformed alert alone with its field path, and refuses only an unusable body whole", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		body := webhookBody(ns,
			webhookAlert("firing", ns, "bad-0", "5555555555555555"),
			webhookAlert("pending", ns, "bad-1", "6666666666666666"),
			webhookAlert("firing", ns, "Not/A/Name", "7777777777777777"),
		)
		code, raw := postNotification(ctx, adminConf, body, false)
		Expect(code).To(Equal(http.StatusCreated), string(raw))
		var got signalsv1.AlertmanagerNotification
		Expect(json.Unmarshal(raw, &got)).To(Succeed())
		rr, err := podRR(ctx, ns, "bad-0")()
		Expect(err).NotTo(HaveOccurred())
		Expect(got.Results).To(HaveLen(3))
		Expect(got.Results[:2]).To(Equal([]signalsv1.AlertResult{
			{Index: 0, Fingerprint: "5555555555555555", Outcome: "Created", Namespace: ns, Name: rr.Name},
			{Index: 1, Fingerprint: "6666666666666666", Outcome: "Rejected", Reason: metav1.StatusReasonInvalid,
				Message: `alerts[1].status: Unsupported value: "pending": supported values: "firing", "resolved"`},
		}))
		Expect(got.Results[2].Outcome).To(Equal("Rejected"))
		Expect(got.Results[2].Message).To(HavePrefix(`alerts[2].labels[pod]: Invalid value: "Not/A/Name": `))

		// A body of another version is unusable whole: 422, nothing recorded.
		other := newTestNamespace(ctx)
		code, raw = postNotification(ctx, adminConf, bytes.Replace(webhookBody(other, webhookAlert("firing", other, "v-0", "8888888888888881")), []byte(`"version":"4"`), []byte(`"version":"3"`), 1), false)
		Expect(code).To(Equal(http.StatusUnprocessableEntity), string(raw))
		Expect(string(raw)).To(ContainSubstring(`version: Unsupported value: \"3\"`))
		list, err := admin.RemediationV1alpha1().RemediationRequests(other).List(ctx, metav1.ListOptions{})
		Expect(err).NotTo(HaveOccurred())
		Expect(list.Items).To(BeEmpty())
	})

	It("answers a token without create on alertmanagernotifications with 403", func(ctx SpecContext) {
		kube := kubernetes.NewForConfigOrDie(cp.RESTConfig())
		name := "no-rbac-" + rand.String(5)
		_, err := kube.CoreV1().ServiceAccounts("default").Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		token, err := kube.CoreV1().ServiceAccounts("default").CreateToken(ctx, name, &authenticationv1.TokenRequest{}, metav1.CreateOptions{})
		Expect(err).NotTo(HaveOccurred())
		cfg := rest.AnonymousClientConfig(cp.RESTConfig())
		cfg.BearerToken = token.Status.Token
		ns := newTestNamespace(ctx)
		code, raw := postNotification(ctx, cfg, webhookBody(ns, webhookAlert("firing", ns, "x-0", "8888888888888888")), false)
		Expect(code).To(Equal(http.StatusForbidden), string(raw))
		Expect(string(raw)).To(ContainSubstring(`cannot create resource \"alertmanagernotifications\"`))
	})
})
