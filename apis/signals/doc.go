// Package signals is the internal version of the signals.remediation.io API
// group: a Signal is one notification that something is wrong with an
// object, sent to be deduplicated into a RemediationRequest.
//
// +k8s:deepcopy-gen=package
// +groupName=signals.remediation.io
package signals
