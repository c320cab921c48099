package bench

import (
	"strings"
	"testing"
)

// metricsText is an excerpt of kube-apiserver's /metrics: RemediationRequest
// requests under several codes and subresources, requests for other
// resources, and a built-in resource counted with HTTP methods.
const metricsText = `# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="namespace",subresource="",verb="LIST",version="v1alpha1"} 12
apiserver_request_total{code="200",component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="",verb="GET",version="v1alpha1"} 30
apiserver_request_total{code="404",component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="",verb="GET",version="v1alpha1"} 2
apiserver_request_total{code="201",component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="",verb="CREATE",version="v1alpha1"} 5
apiserver_request_total{code="409",component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="",verb="CREATE",version="v1alpha1"} 3
apiserver_request_total{code="200",component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="status",verb="UPDATE",version="v1alpha1"} 40
apiserver_request_total{code="409",component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="status",verb="UPDATE",version="v1alpha1"} 7
apiserver_request_total{code="200",component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="",verb="WATCH",version="v1alpha1"} 1
apiserver_request_total{code="201",component="apiserver",dry_run="",group="",resource="namespaces",scope="resource",subresource="",verb="POST",version="v1"} 9
apiserver_request_total{code="200",component="apiserver",dry_run="",group="signals.remediation.io",resource="signals",scope="resource",subresource="",verb="CREATE",version="v1"} 100
apiserver_request_total{code="201",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="POST",version="v1"} 4
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="PUT",version="v1"} 6
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="",verb="APPLY",version="v1"} 2
apiserver_request_total{code="200",component="apiserver",dry_run="",group="apps",resource="deployments",scope="resource",subresource="scale",verb="PATCH",version="v1"} 1
# HELP apiserver_request_duration_seconds [STABLE] Response latency distribution in seconds.
# TYPE apiserver_request_duration_seconds histogram
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="",verb="CREATE",version="v1alpha1",le="0.005"} 8
apiserver_request_duration_seconds_bucket{component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="",verb="CREATE",version="v1alpha1",le="+Inf"} 8
apiserver_request_duration_seconds_sum{component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="",verb="CREATE",version="v1alpha1"} 0.5
apiserver_request_duration_seconds_count{component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="",verb="CREATE",version="v1alpha1"} 8
`

func TestParseRequestMetrics(t *testing.T) {
	tests := []struct {
		name            string
		group, resource string
		want            VerbCounts
	}{
		{
			name:  "custom resource: summed over codes and subresources",
			group: "remediation.io", resource: "remediationrequests",
			want: VerbCounts{"LIST": 12, "GET": 32, "CREATE": 8, "UPDATE": 47, "WATCH": 1},
		},
		{
			name:  "built-in resource: HTTP methods folded into verbs",
			group: "apps", resource: "deployments",
			want: VerbCounts{"CREATE": 4, "UPDATE": 6, "PATCH": 3},
		},
		{
			name:  "nothing counted",
			group: "remediation.io", resource: "nothing",
			want: VerbCounts{},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseRequestMetrics(strings.NewReader(metricsText), tt.group, tt.resource)
			if err != nil {
				t.Fatal(err)
			}
			assertCounts(t, got.Requests, tt.want)
		})
	}
}

func TestParseRequestMetricsDuration(t *testing.T) {
	got, err := parseRequestMetrics(strings.NewReader(metricsText), "remediation.io", "remediationrequests")
	if err != nil {
		t.Fatal(err)
	}
	assertCounts(t, got.Seconds, VerbCounts{"CREATE": 0.5})
	assertCounts(t, got.Timed, VerbCounts{"CREATE": 8})
	assertCounts(t, got.MeanMilliseconds(), VerbCounts{"CREATE": 62.5})
	assertCounts(t, got.Conflicts, VerbCounts{"CREATE": 3, "UPDATE": 7})
}

func TestParseRequestMetricsRejectsGarbage(t *testing.T) {
	if _, err := parseRequestMetrics(strings.NewReader("apiserver_request_total{verb=\"GET\" 1\n"), "", ""); err == nil {
		t.Error("parseRequestCounts accepted a malformed line")
	}
}

func TestRequestDelta(t *testing.T) {
	before, err := parseRequestMetrics(strings.NewReader(metricsText), "remediation.io", "remediationrequests")
	if err != nil {
		t.Fatal(err)
	}
	// The same counters a row later: 1 create, 1 list, 20 status updates
	// (3 of them conflicts) and a PATCH the resource never had before; the
	// 4 creates timed since took 2 seconds.
	afterText := strings.NewReplacer(
		`verb="CREATE",version="v1alpha1",le="+Inf"} 8`, `verb="CREATE",version="v1alpha1",le="+Inf"} 12`,
		`verb="CREATE",version="v1alpha1"} 0.5`, `verb="CREATE",version="v1alpha1"} 2.5`,
		`verb="CREATE",version="v1alpha1"} 8`, `verb="CREATE",version="v1alpha1"} 12`,
		`verb="LIST",version="v1alpha1"} 12`, `verb="LIST",version="v1alpha1"} 13`,
		`verb="CREATE",version="v1alpha1"} 5`, `verb="CREATE",version="v1alpha1"} 6`,
		`subresource="status",verb="UPDATE",version="v1alpha1"} 40`, `subresource="status",verb="UPDATE",version="v1alpha1"} 57`,
		`subresource="status",verb="UPDATE",version="v1alpha1"} 7`, `subresource="status",verb="UPDATE",version="v1alpha1"} 10`,
	).Replace(metricsText) +
		`apiserver_request_total{code="200",component="apiserver",dry_run="",group="remediation.io",resource="remediationrequests",scope="resource",subresource="status",verb="PATCH",version="v1alpha1"} 2` + "\n"
	after, err := parseRequestMetrics(strings.NewReader(afterText), "remediation.io", "remediationrequests")
	if err != nil {
		t.Fatal(err)
	}
	metrics := after.Sub(before)
	assertCounts(t, metrics.MeanMilliseconds(), VerbCounts{"CREATE": 500})
	assertCounts(t, metrics.Conflicts, VerbCounts{"CREATE": 0, "UPDATE": 3})
	delta := metrics.Requests
	assertCounts(t, delta, VerbCounts{"LIST": 1, "GET": 0, "CREATE": 1, "UPDATE": 20, "WATCH": 0, "PATCH": 2})
	if got, want := delta.Writes(), 23.0; got != want {
		t.Errorf("Writes() = %v, want %v", got, want)
	}
	if got, want := delta.Reads(), 1.0; got != want {
		t.Errorf("Reads() = %v, want %v", got, want)
	}
}

func assertCounts(t *testing.T, got, want VerbCounts) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("got %v, want %v", got, want)
		return
	}
	for verb, n := range want {
		if g, ok := got[verb]; !ok || g != n {
			t.Errorf("got %v, want %v", got, want)
			return
		}
	}
}
