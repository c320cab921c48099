package integration

import (
	"bytes"
	"context"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"

	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// scrape reads the primary server's /metrics directly, as the cluster
// admin through the front-proxy (kube-apiserver does not proxy /metrics of
// aggregated servers).
func scrape(ctx context.Context) map[string]*dto.MetricFamily {
	return scrapeServer(ctx, primary)
}

// scrapeServer reads server s's /metrics as scrape does.
func scrapeServer(ctx context.Context, s *controlplane.Server) map[string]*dto.MetricFamily {
	conf := restConfigFor(cp.FrontProxyClientConfig(s, "system:admin", []string{"system:masters"}))
	rc, err := rest.RESTClientFor(conf)
	Expect(err).NotTo(HaveOccurred())
	body, err := rc.Get().AbsPath("/metrics").DoRaw(ctx)
	Expect(err).NotTo(HaveOccurred())
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	Expect(err).NotTo(HaveOccurred())
	return families
}

// value returns the value of the series of family with exactly labels, or
// 0 if there is none.
func value(families map[string]*dto.MetricFamily, family string, labels map[string]string) float64 {
	f, ok := families[family]
	if !ok {
		return 0
	}
	for _, m := range f.Metric {
		if len(m.Label) != len(labels) {
			continue
		}
		match := true
		for _, l := range m.Label {
			if labels[l.GetName()] != l.GetValue() {
				match = false
			}
		}
		if !match {
			continue
		}
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return m.Histogram.GetSampleSum()
		}
	}
	return 0
}

var _ = Describe("Metrics", func() {
	It("counts signals by source and outcome, and the signals the status writes carried", func(ctx SpecContext) {
		before := scrape(ctx)
		Expect(value(before, "signal_apiserver_remediationrequest_cache_synced", nil)).To(Equal(1.0))

		source := "metrics-" + rand.String(6)
		s := newSignal("default")
		s.Spec.Source = source
		Expect(outcomes(sendConcurrently(ctx, s, 30, admin))).To(Equal(map[string]int{"Created": 1, "Deduplicated": 29}))
		bad := s.DeepCopy()
		bad.Spec.Target.Name = ""
		_, err := admin.SignalsV1().Signals().Create(ctx, bad, metaCreate)
		Expect(err).To(HaveOccurred())

		after := scrape(ctx)
		for outcome, want := range map[string]float64{"created": 1, "deduplicated": 29, "rejected": 1, "failed": 0} {
			Expect(value(after, "signal_apiserver_signals_total", map[string]string{"source": source, "outcome": outcome})).
				To(Equal(want), "outcome %s", outcome)
		}
		carried := value(after, "signal_apiserver_signals_per_status_write", nil) - value(before, "signal_apiserver_signals_per_status_write", nil)
		Expect(carried).To(Equal(30.0))
	})
})
