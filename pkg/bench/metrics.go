package bench

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"k8s.io/client-go/rest"
)

// Verbs are the verbs reported per signal, in table order.
var Verbs = []string{"LIST", "GET", "CREATE", "UPDATE", "PATCH"}

// kube-apiserver's metrics of the requests it answered.
const (
	requestTotal    = "apiserver_request_total"
	requestDuration = "apiserver_request_duration_seconds"
)

// VerbCounts holds numbers by verb.
type VerbCounts map[string]float64

// Sub returns c - before, verb by verb.
func (c VerbCounts) Sub(before VerbCounts) VerbCounts {
	out := VerbCounts{}
	for verb, n := range c {
		out[verb] = n - before[verb]
	}
	for verb, n := range before {
		if _, ok := c[verb]; !ok {
			out[verb] = -n
		}
	}
	return out
}

// Writes is the number of CREATE, UPDATE and PATCH requests.
func (c VerbCounts) Writes() float64 { return c["CREATE"] + c["UPDATE"] + c["PATCH"] }

// Reads is the number of LIST and GET requests.
func (c VerbCounts) Reads() float64 { return c["LIST"] + c["GET"] }

// requestMetrics are kube-apiserver's request metrics of one resource, by
// verb, summed over codes, subresources and everything else.
type requestMetrics struct {
	// Requests is apiserver_request_total.
	Requests VerbCounts
	// Seconds and Timed are the sum and count of
	// apiserver_request_duration_seconds, which times requests from their
	// arrival to their answer.
	Seconds VerbCounts
	Timed   VerbCounts
	// Conflicts are the requests answered 409 Conflict, by verb: for
	// UPDATE a stale resourceVersion, for CREATE AlreadyExists.
	Conflicts VerbCounts
}

// Sub returns m - before.
func (m requestMetrics) Sub(before requestMetrics) requestMetrics {
	return requestMetrics{
		Requests:  m.Requests.Sub(before.Requests),
		Seconds:   m.Seconds.Sub(before.Seconds),
		Timed:     m.Timed.Sub(before.Timed),
		Conflicts: m.Conflicts.Sub(before.Conflicts),
	}
}

// MeanMilliseconds returns the mean time kube-apiserver took per request,
// by verb, for the verbs it timed.
func (m requestMetrics) MeanMilliseconds() VerbCounts {
	out := VerbCounts{}
	for verb, n := range m.Timed {
		if n > 0 {
			out[verb] = m.Seconds[verb] * 1000 / n
		}
	}
	return out
}

// parseRequestMetrics reads kube-apiserver's /metrics in the Prometheus
// text format and returns the request metrics of one resource.
//
// Custom resources are labelled with the RBAC verb (CREATE, UPDATE, ...),
// built-in resources with the HTTP method (POST, PUT, APPLY): both are
// folded into the RBAC verbs, server-side apply into PATCH.
func parseRequestMetrics(r io.Reader, group, resource string) (requestMetrics, error) {
	m := requestMetrics{Requests: VerbCounts{}, Seconds: VerbCounts{}, Timed: VerbCounts{}, Conflicts: VerbCounts{}}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(r)
	if err != nil {
		return m, fmt.Errorf("parsing metrics: %w", err)
	}
	for name, family := range families {
		if name != requestTotal && name != requestDuration {
			continue
		}
		for _, metric := range family.GetMetric() {
			labels := make(map[string]string, len(metric.GetLabel()))
			for _, l := range metric.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			if labels["group"] != group || labels["resource"] != resource {
				continue
			}
			verb := normalizeVerb(labels["verb"])
			if name == requestTotal {
				m.Requests[verb] += metric.GetCounter().GetValue()
				if labels["code"] == "409" {
					m.Conflicts[verb] += metric.GetCounter().GetValue()
				}
			} else {
				m.Seconds[verb] += metric.GetHistogram().GetSampleSum()
				m.Timed[verb] += float64(metric.GetHistogram().GetSampleCount())
			}
		}
	}
	return m, nil
}

func normalizeVerb(verb string) string {
	switch verb = strings.ToUpper(verb); verb {
	case "POST":
		return "CREATE"
	case "PUT":
		return "UPDATE"
	case "APPLY":
		return "PATCH"
	}
	return verb
}

// scrapeRequestMetrics fetches kube-apiserver's /metrics with client (an
// admin's) and returns the request metrics of RemediationRequests.
func scrapeRequestMetrics(ctx context.Context, client rest.Interface) (requestMetrics, error) {
	body, err := client.Get().AbsPath("/metrics").SetHeader("Accept", string(expfmt.NewFormat(expfmt.TypeTextPlain))).Stream(ctx)
	if err != nil {
		return requestMetrics{}, fmt.Errorf("GET /metrics: %w", err)
	}
	defer body.Close()
	return parseRequestMetrics(body, rrGroup, rrResource)
}
