//go:build tools

// Package tools pins the Alertmanager version the integration tests run
// against; hack/build-alertmanager.sh builds it from this module so its
// dependencies stay apart from k8s.io/kubernetes in hack/tools.
package tools

import _ "github.com/prometheus/alertmanager/cmd/alertmanager"
