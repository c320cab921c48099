package integration

import (
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	"k8s.io/apimachinery/pkg/util/rand"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
	alertmanagerregistry "github.com/signal-apiserver/signal-apiserver/pkg/registry/alertmanager"
)

// deploymentAlert is a webhook alert about Deployment namespace/name.
func deploymentAlert(status, namespace, name, alertname, fp string) string {
	return fmt.Sprintf(`{"status":%q,"labels":{"alertname":%q,"namespace":%q,"deployment":%q,"severity":"warning"},`+
		`"annotations":{},"startsAt":"2026-11-28T01:02:03.456789Z","endsAt":"0001-01-01T00:00:00Z",`+
		`"generatorURL":"http://prometheus:9090/graph","fingerprint":%q}`, status, alertname, namespace, name, fp)
}

func decodeNotification(raw []byte) signalsv1.AlertmanagerNotification {
	var got signalsv1.AlertmanagerNotification
	Expect(json.Unmarshal(raw, &got)).To(Succeed(), string(raw))
	return got
}

var _ = Describe("Alertmanager alerts one by one", Ordered, func() {
	var am *alertmanager

	BeforeAll(func(ctx SpecContext) {
		am = startAlertmanager(ctx, alertmanagerToken(ctx))
	})

	It("records the valid alert of a notification whose other alert is oversized, and Alertmanager sees no failure", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		group := "g-" + rand.String(6)
		start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		failedBefore, err := am.failedNotifications(ctx)
		Expect(err).NotTo(HaveOccurred())
		before := scrape(ctx)
		oversized := podAlert(group, ns, "big-0", strings.Repeat("A", 300)+"\nSecondLine", start)
		oversized.Labels["severity"] = strings.Repeat("s", 100)
		oversized.Labels[strings.Repeat("k", 300)] = "v"
		am.post(ctx, podAlert(group, ns, "ok-0", "KubePodCrashLooping", start), oversized)

		Eventually(podRR(ctx, ns, "ok-0")).WithContext(ctx).Should(haveCount(1))
		Eventually(podRR(ctx, ns, "big-0")).WithContext(ctx).Should(haveCount(1))
		rr, err := podRR(ctx, ns, "big-0")()
		Expect(err).NotTo(HaveOccurred())
		Expect(rr.Spec.SignalName).To(Equal(strings.Repeat("A", 253)))
		Expect(rr.Spec.Severity).To(BeEmpty())
		Expect(rr.Spec.SignalLabels).NotTo(HaveKey(strings.Repeat("k", 300)))
		Expect(rr.Annotations[signalsv1.AnnotationAlertAdjusted]).To(Equal(
			"labels[alertname]: control characters replaced by spaces; labels[alertname]: cut to 253 bytes; " +
				"labels[severity]: left out (more than 63 bytes, or control characters); labels: 1 left out (invalid keys, or past 64 entries or 16384 bytes)"))
		Expect(am.failedNotifications(ctx)).To(Equal(failedBefore))
		after := scrape(ctx)
		Expect(value(after, "signal_apiserver_alertmanager_notifications_total", map[string]string{"code": "201"}) -
			value(before, "signal_apiserver_alertmanager_notifications_total", map[string]string{"code": "201"})).To(BeNumerically(">=", 1))
		Expect(value(after, "signal_apiserver_alertmanager_notifications_total", map[string]string{"code": "422"}) -
			value(before, "signal_apiserver_alertmanager_notifications_total", map[string]string{"code": "422"})).To(BeZero())
	})

	It("counts a notification over the body limit, answered 413 before the storage runs, in the notifications metric", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		group := "g-" + rand.String(6)
		start := time.Now().Add(-time.Minute).Truncate(time.Millisecond)
		family, code413 := "signal_apiserver_alertmanager_notifications_total", map[string]string{"code": "413"}
		before := value(scrape(ctx), family, code413)
		failedBefore, err := am.failedNotifications(ctx)
		Expect(err).NotTo(HaveOccurred())
		var alerts []amAlert
		for i := range 4 {
			a := podAlert(group, ns, fmt.Sprintf("huge-%d", i), "KubePodCrashLooping", start)
			a.Annotations["runbook"] = strings.Repeat("r", 1<<20)
			alerts = append(alerts, a)
		}
		am.post(ctx, alerts...)
		Eventually(func() float64 { return value(scrape(ctx), family, code413) - before }).WithContext(ctx).Should(Equal(1.0))
		Eventually(am.failedNotifications).WithContext(ctx).Should(Equal(failedBefore + 1))
	})
})

var _ = Describe("The alertmanagernotifications API, alert by alert", func() {
	It("applies alerts about one RemediationRequest in body order: the same payload gives the same result 20 times in 20", func(ctx SpecContext) {
		for run := range 20 {
			ns := newTestNamespace(ctx)
			name := fmt.Sprintf("ord%d", run)
			body := webhookBody(ns,
				deploymentAlert("resolved", ns, name, "KubeDeploymentReplicasMismatch", "b100000000000001"),
				deploymentAlert("firing", ns, name, "KubeDeploymentRolloutStuck", "b100000000000002"),
				deploymentAlert("firing", ns, name, "KubeDeploymentReplicasMismatch", "b100000000000003"),
			)
			code, raw := postNotification(ctx, adminConf, body, false)
			Expect(code).To(Equal(http.StatusCreated), string(raw))
			got := decodeNotification(raw)
			fp := fingerprint.ForObject("", remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: name})
			rrs := rrsOf(ctx, ns, fp)
			Expect(rrs).To(HaveLen(1), "run %d", run)
			Expect(got.Results).To(Equal([]signalsv1.AlertResult{
				{Index: 0, Fingerprint: "b100000000000001", Outcome: "NoActive"},
				{Index: 1, Fingerprint: "b100000000000002", Outcome: "Created", Namespace: ns, Name: rrs[0].Name},
				{Index: 2, Fingerprint: "b100000000000003", Outcome: "Deduplicated", Namespace: ns, Name: rrs[0].Name},
			}), "run %d", run)
			Expect(countOf(&rrs[0])).To(Equal(int64(2)), "run %d", run)
			Expect(rrs[0].Status.Deduplication.LastResolvedAt).To(BeNil(), "run %d", run)
			Expect(rrs[0].Spec.SignalName).To(Equal("KubeDeploymentRolloutStuck"), "run %d", run)
		}
	})

	It("rejects an alert with a bad namespace label alone, at labels[namespace]", func(ctx SpecContext) {
		ns := newTestNamespace(ctx)
		body := webhookBody(ns,
			webhookAlert("firing", ns, "good-0", "c100000000000001"),
			webhookAlert("firing", "Bad NS", "x", "c100000000000002"),
		)
		code, raw := postNotification(ctx, adminConf, body, false)
		Expect(code).To(Equal(http.StatusCreated), string(raw))
		got := decodeNotification(raw)
		rr, err := podRR(ctx, ns, "good-0")()
		Expect(err).NotTo(HaveOccurred())
		Expect(got.Results).To(HaveLen(2))
		Expect(got.Results[0]).To(Equal(signalsv1.AlertResult{Index: 0, Fingerprint: "c100000000000001", Outcome: "Created", Namespace: ns, Name: rr.Name}))
		Expect(got.Results[1].Outcome).To(Equal("Rejected"))
		Expect(got.Results[1].Reason).To(BeEquivalentTo("Invalid"))
		Expect(got.Results[1].Message).To(HavePrefix(`alerts[1].labels[namespace]: Invalid value: "Bad NS": `))
	})

	It("authorizes each distinct namespace of a notification once, and no more than 64 of them", func(ctx SpecContext) {
		_ = alertmanagerToken(ctx) // applies artifacts/alertmanager
		sender := tokenConfig(ctx, "monitoring", "alertmanager-signals")
		prefix := "flood-" + rand.String(5)
		alerts := make([]string, 4000)
		for i := range alerts {
			alerts[i] = webhookAlert("firing", fmt.Sprintf("%s-%d", prefix, i), "p", fmt.Sprintf("d%015d", i))
		}
		before := total(scrape(ctx), "apiserver_delegated_authz_request_total")
		code, raw := postNotification(ctx, sender, webhookBody(prefix, alerts...), false)
		Expect(code).To(Equal(http.StatusCreated), string(raw))
		reviews := total(scrape(ctx), "apiserver_delegated_authz_request_total") - before
		// One per distinct namespace authorized, plus at most one for
		// create on alertmanagernotifications (its decision may be cached).
		Expect(reviews).To(BeElementOf(float64(alertmanagerregistry.MaxNamespaces), float64(alertmanagerregistry.MaxNamespaces+1)))
		reasons := map[string]int{}
		for _, res := range decodeNotification(raw).Results {
			reasons[res.Outcome+"/"+string(res.Reason)]++
		}
		Expect(reasons).To(Equal(map[string]int{
			"Rejected/Invalid":               alertmanagerregistry.MaxNamespaces, // the namespaces do not exist
			"Rejected/RequestEntityTooLarge": 4000 - alertmanagerregistry.MaxNamespaces,
		}))
	})
})
