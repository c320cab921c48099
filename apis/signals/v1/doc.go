// Package v1 is version v1 of the signals.remediation.io API group.
//
// +k8s:deepcopy-gen=package
// +k8s:conversion-gen=github.com/signal-apiserver/signal-apiserver/apis/signals
// +k8s:defaulter-gen=TypeMeta
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=io.remediation.signals.v1
// +groupName=signals.remediation.io
package v1
