// Package install registers the signals.remediation.io API group in a scheme.
package install

import (
	"k8s.io/apimachinery/pkg/runtime"
	utilruntime "k8s.io/apimachinery/pkg/util/runtime"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
)

// Install registers the internal and v1 types of the API group.
func Install(scheme *runtime.Scheme) {
	utilruntime.Must(signals.AddToScheme(scheme))
	utilruntime.Must(signalsv1.AddToScheme(scheme))
	utilruntime.Must(scheme.SetVersionPriority(signalsv1.SchemeGroupVersion))
}
