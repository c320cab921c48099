package validation

import (
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/kube-openapi/pkg/validation/spec"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	generatedopenapi "github.com/signal-apiserver/signal-apiserver/generated/openapi"
)

// TestAlertOpenAPIRequiredMatchesValidation proves that the OpenAPI schema
// the server publishes (and kubectl validates against) lists as required
// exactly the fields of an alert without which the server rejects it.
func TestAlertOpenAPIRequiredMatchesValidation(t *testing.T) {
	defs := generatedopenapi.GetOpenAPIDefinitions(func(path string) spec.Ref { return spec.MustCreateRef(path) })
	def, ok := defs[signalsv1.Alert{}.OpenAPIModelName()]
	if !ok {
		t.Fatalf("no OpenAPI definition of %s", signalsv1.Alert{}.OpenAPIModelName())
	}
	required := map[string]bool{}
	for _, name := range def.Schema.Required {
		required[name] = true
	}

	// unset clears one field of an alert, by its JSON name.
	unset := map[string]func(*signals.Alert){
		"status":       func(a *signals.Alert) { a.Status = "" },
		"labels":       func(a *signals.Alert) { a.Labels = nil },
		"annotations":  func(a *signals.Alert) { a.Annotations = nil },
		"startsAt":     func(a *signals.Alert) { a.StartsAt = metav1.Time{} },
		"endsAt":       func(a *signals.Alert) { a.EndsAt = metav1.Time{} },
		"generatorURL": func(a *signals.Alert) { a.GeneratorURL = "" },
		"fingerprint":  func(a *signals.Alert) { a.Fingerprint = "" },
	}
	for name := range def.Schema.Properties {
		if unset[name] == nil {
			t.Errorf("the schema of an alert has %q, which this test does not know how to unset", name)
		}
	}
	for name, clear := range unset {
		if _, ok := def.Schema.Properties[name]; !ok {
			t.Errorf("the schema of an alert has no %q", name)
			continue
		}
		a := signals.Alert{
			Status:       "resolved",
			Labels:       map[string]string{"alertname": "KubePodCrashLooping"},
			Annotations:  map[string]string{"summary": "crash looping"},
			StartsAt:     metav1.NewTime(time.Date(2026, 11, 28, 1, 2, 3, 0, time.UTC)),
			EndsAt:       metav1.NewTime(time.Date(2026, 11, 28, 2, 2, 3, 0, time.UTC)),
			GeneratorURL: "http://prometheus/graph",
			Fingerprint:  "c0ffee",
		}
		clear(&a)
		refused := false
		for _, err := range ValidateAlert(&a, field.NewPath("alerts").Index(0)) {
			if err.Field == "alerts[0]."+name {
				refused = true
			} else {
				t.Errorf("without %s: unexpected error %v", name, err)
			}
		}
		if refused != required[name] {
			t.Errorf("%s: refused when unset %t, required in the OpenAPI schema %t", name, refused, required[name])
		}
	}
}
