package apiserver

import (
	"bytes"
	"encoding/json"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
)

// The create handler asks for an encoder in the signals group version; a
// RemediationRequest must still come out as remediation.io/v1alpha1, and a
// Status as itself.
func TestSignalsSerializerEncodesRemediationRequests(t *testing.T) {
	ns := newSignalsSerializer(Codecs)
	var mediaTypes []string
	var jsonInfo runtime.SerializerInfo
	for _, info := range ns.SupportedMediaTypes() {
		mediaTypes = append(mediaTypes, info.MediaType)
		if info.MediaType == runtime.ContentTypeJSON {
			jsonInfo = info
		}
	}
	if len(mediaTypes) != 2 || mediaTypes[0] != runtime.ContentTypeJSON || mediaTypes[1] != runtime.ContentTypeYAML {
		t.Fatalf("media types = %v, want [application/json application/yaml]", mediaTypes)
	}
	encoder := ns.EncoderForVersion(jsonInfo.Serializer, signalsv1.SchemeGroupVersion)

	tests := []struct {
		obj        runtime.Object
		apiVersion string
		kind       string
	}{
		{&remediationv1alpha1.RemediationRequest{ObjectMeta: metav1.ObjectMeta{Name: "rr-1"}}, "remediation.io/v1alpha1", "RemediationRequest"},
		{&signalsv1.Signal{}, "signals.remediation.io/v1", "Signal"},
		{&metav1.Status{Status: metav1.StatusFailure, Code: 422}, "v1", "Status"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := encoder.Encode(tt.obj, &buf); err != nil {
			t.Fatalf("encoding %T: %v", tt.obj, err)
		}
		var got metav1.TypeMeta
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.APIVersion != tt.apiVersion || got.Kind != tt.kind {
			t.Errorf("%T encoded as %s %s, want %s %s", tt.obj, got.APIVersion, got.Kind, tt.apiVersion, tt.kind)
		}
	}
}
