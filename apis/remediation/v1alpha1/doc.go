// Package v1alpha1 holds the RemediationRequest custom resource of the
// remediation.io API group.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +k8s:openapi-model-package=io.remediation.v1alpha1
// +groupName=remediation.io
package v1alpha1
