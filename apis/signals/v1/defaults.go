package v1

import (
	"k8s.io/apimachinery/pkg/runtime"
)

func addDefaultingFuncs(scheme *runtime.Scheme) error {
	return RegisterDefaults(scheme)
}

// SetDefaults_SignalSpec defaults status to Firing.
func SetDefaults_SignalSpec(obj *SignalSpec) { //nolint:revive // the name is defaulter-gen's convention
	if obj.Status == "" {
		obj.Status = SignalStatusFiring
	}
}
