package apiserver

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	"github.com/signal-apiserver/signal-apiserver/apis/signals/validation"
)

// FuzzDecodeSignal feeds request bodies through the decoder the create
// handler uses (strict JSON into the internal version) and validation:
// neither may panic, whatever the bytes.
func FuzzDecodeSignal(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"signals.remediation.io/v1","kind":"Signal","spec":{"source":"manual","name":"X","target":{"apiVersion":"apps/v1","kind":"Deployment","namespace":"default","name":"web"}}}`))
	f.Add([]byte(`{"apiVersion":"remediation.io/v1alpha1","kind":"RemediationRequest"}`))
	f.Add([]byte(`{"apiVersion":"signals.remediation.io/v1","kind":"Signal","spec":{"labels":{"a":1},"startsAt":"yesterday"}}`))
	f.Add([]byte(`[]`))
	var info runtime.SerializerInfo
	for _, i := range newSignalsSerializer(Codecs).SupportedMediaTypes() {
		if i.MediaType == runtime.ContentTypeJSON {
			info = i
		}
	}
	decoder := Codecs.DecoderToVersion(info.StrictSerializer, signals.SchemeGroupVersion)
	f.Fuzz(func(t *testing.T, body []byte) {
		obj, _, err := decoder.Decode(body, nil, &signals.Signal{})
		if err != nil {
			return
		}
		if s, ok := obj.(*signals.Signal); ok {
			validation.ValidateSignal(s)
		}
	})
}
