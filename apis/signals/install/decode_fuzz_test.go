package install

import (
	"testing"

	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/serializer"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	"github.com/signal-apiserver/signal-apiserver/apis/signals/validation"
)

// FuzzDecodeSignal feeds request bodies through the decoding the create
// handler does (strict JSON into the internal version, with defaulting) and
// through validation: neither may panic, whatever the bytes.
func FuzzDecodeSignal(f *testing.F) {
	f.Add([]byte(`{"apiVersion":"signals.remediation.io/v1","kind":"Signal","spec":{"source":"manual","name":"X","target":{"apiVersion":"apps/v1","kind":"Deployment","namespace":"default","name":"web"}}}`))
	f.Add([]byte(`{"apiVersion":"remediation.io/v1alpha1","kind":"RemediationRequest"}`))
	f.Add([]byte(`{"apiVersion":"signals.remediation.io/v1","kind":"Signal","spec":{"labels":{"a":1},"startsAt":"yesterday"}}`))
	f.Add([]byte(`{"spec":{"source":"x","source":"y"}}`))
	f.Add([]byte(`[]`))

	scheme := runtime.NewScheme()
	Install(scheme)
	codecs := serializer.NewCodecFactory(scheme)
	info, ok := runtime.SerializerInfoForMediaType(codecs.SupportedMediaTypes(), runtime.ContentTypeJSON)
	if !ok {
		f.Fatal("no JSON serializer")
	}
	decoder := codecs.DecoderToVersion(info.StrictSerializer, signals.SchemeGroupVersion)
	f.Fuzz(func(_ *testing.T, body []byte) {
		obj, _, err := decoder.Decode(body, nil, &signals.Signal{})
		if err != nil {
			return
		}
		if s, ok := obj.(*signals.Signal); ok {
			validation.ValidateSignal(s)
		}
	})
}
