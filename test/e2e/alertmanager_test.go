package e2e

import (
	"context"
	"encoding/json"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
)

const (
	alertNamespace        = "e2e-alerts"
	alertmanagerNamespace = "monitoring"
	alertmanagerService   = "alertmanager"
)

// postedAlert is an alert of Alertmanager's v2 API.
type postedAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations,omitempty"`
	EndsAt      *time.Time        `json:"endsAt,omitempty"`
}

func alertmanagerSpecs() {
	Context("alerts posted to the Alertmanager Pod", func() {
		It("reach kube-apiserver through the shipped receiver with the Pod's ServiceAccount token: one RemediationRequest per target, each alert instance counted once across resends", func(ctx SpecContext) {
			createNamespace(ctx, alertNamespace)
			alerts := []postedAlert{
				{Labels: map[string]string{"alertname": "E2EHighLatency", "namespace": alertNamespace, "deployment": "web-a", "severity": "warning"}},
				{Labels: map[string]string{"alertname": "E2EErrorRate", "namespace": alertNamespace, "deployment": "web-a", "severity": "critical"}},
				{Labels: map[string]string{"alertname": "E2EHighLatency", "namespace": alertNamespace, "deployment": "web-b", "severity": "warning"}},
			}
			before, serverBefore := alertmanagerMetrics(ctx), serverAlertOutcomes(ctx)
			postAlerts(ctx, alerts)
			DeferCleanup(func(ctx context.Context) {
				// Resolve them, so that Alertmanager stops resending.
				now := time.Now()
				for i := range alerts {
					alerts[i].EndsAt = &now
				}
				postAlerts(ctx, alerts)
			})

			By("waiting until Alertmanager has resent every alert")
			var outcomes map[string]float64
			Eventually(func(g Gomega) {
				outcomes = serverAlertOutcomes(ctx)
				for k, v := range serverBefore {
					outcomes[k] -= v
				}
				g.Expect(outcomes["alreadycounted"]).To(BeNumerically(">=", len(alerts)))
			}).WithContext(ctx).Should(Succeed())
			GinkgoWriter.Printf("alert outcomes on signal-apiserver: %v\n", outcomes)
			Expect(outcomes["created"] + outcomes["deduplicated"]).To(Equal(float64(len(alerts))))
			Expect(outcomes["failed"] + outcomes["rejected"]).To(BeZero())
			webhook := map[string]string{"integration": "webhook"}
			after := alertmanagerMetrics(ctx)
			Expect(sum(after, "alertmanager_notifications_failed_total", webhook) - sum(before, "alertmanager_notifications_failed_total", webhook)).To(BeZero())
			GinkgoWriter.Printf("Alertmanager sent %v webhook notifications\n",
				sum(after, "alertmanager_notifications_total", webhook)-sum(before, "alertmanager_notifications_total", webhook))

			rrs := rrsIn(ctx, alertNamespace)
			Expect(rrs).To(HaveLen(2))
			counts := map[string]int64{}
			for _, rr := range rrs {
				Expect(rr.Spec.SignalSource).To(Equal("alertmanager"))
				Expect(rr.Spec.TargetResource.Kind).To(Equal("Deployment"))
				counts[rr.Spec.TargetResource.Name] = countOf(&rr)
			}
			Expect(counts).To(Equal(map[string]int64{"web-a": 2, "web-b": 1}))
		})
	})
}

// postAlerts posts alerts to Alertmanager's API through kube-apiserver's
// Service proxy.
func postAlerts(ctx context.Context, alerts []postedAlert) {
	body, err := json.Marshal(alerts)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	err = kube.CoreV1().RESTClient().Post().
		AbsPath("/api/v1/namespaces", alertmanagerNamespace, "services", alertmanagerService+":9093", "proxy", "api", "v2", "alerts").
		SetHeader("Content-Type", "application/json").Body(body).Do(ctx).Error()
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
}

func alertmanagerMetrics(ctx context.Context) map[string]*dto.MetricFamily {
	body, err := kube.CoreV1().Services(alertmanagerNamespace).ProxyGet("http", alertmanagerService, "9093", "/metrics", nil).DoRaw(ctx)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return parseMetrics(body)
}

// serverAlertOutcomes adds up signal_apiserver_alertmanager_alerts_total by
// outcome over the server's replicas.
func serverAlertOutcomes(ctx context.Context) map[string]float64 {
	outcomes := map[string]float64{}
	for _, pod := range podsOf(ctx, serverNamespace, serverName) {
		f := serverMetrics(ctx, pod.Name)["signal_apiserver_alertmanager_alerts_total"]
		if f == nil {
			continue
		}
		for _, m := range f.Metric {
			for _, l := range m.Label {
				if l.GetName() == "outcome" {
					outcomes[l.GetValue()] += m.GetCounter().GetValue()
				}
			}
		}
	}
	return outcomes
}
