package apiserver

import (
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// signalsSerializer is the NegotiatedSerializer of the signals API group.
//
// k8s.io/apiserver encodes every response of a group in that group's
// version: the create handler asks for an encoder for signals.remediation.io/v1.
// Creating a Signal answers with a RemediationRequest, so the encoder is
// given remediation.io/v1alpha1 as a second target version; the versioning
// codec picks, per object, the one version of its own group (Status and
// other unversioned types are untouched).
//
// RemediationRequest has no protobuf form, so only the text media types
// (JSON, YAML) are offered; a client that asks for protobuf with a JSON
// fallback, as client-go does, gets JSON.
type signalsSerializer struct {
	runtime.NegotiatedSerializer
}

func newSignalsSerializer(ns runtime.NegotiatedSerializer) runtime.NegotiatedSerializer {
	return signalsSerializer{NegotiatedSerializer: ns}
}

func (s signalsSerializer) SupportedMediaTypes() []runtime.SerializerInfo {
	var infos []runtime.SerializerInfo
	for _, info := range s.NegotiatedSerializer.SupportedMediaTypes() {
		if info.MediaType == runtime.ContentTypeJSON || info.MediaType == runtime.ContentTypeYAML {
			infos = append(infos, info)
		}
	}
	return infos
}

func (s signalsSerializer) EncoderForVersion(encoder runtime.Encoder, gv runtime.GroupVersioner) runtime.Encoder {
	if v, ok := gv.(schema.GroupVersion); ok {
		gv = schema.GroupVersions{v, remediationv1alpha1.SchemeGroupVersion}
	}
	return s.NegotiatedSerializer.EncoderForVersion(encoder, gv)
}
