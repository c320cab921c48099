// Package v1alpha1 holds the RemediationRequest custom resource of the
// remediation.io API group.
//
// +k8s:deepcopy-gen=package
// +k8s:openapi-gen=true
// +groupName=remediation.io
package v1alpha1
