// Command signal-event-source watches Kubernetes Warning Events and submits
// each version as a Signal through kube-apiserver.
package main

import (
	"os"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/component-base/cli"

	"github.com/signal-apiserver/signal-apiserver/pkg/cmd/eventsource"
)

func main() {
	ctx := genericapiserver.SetupSignalContext()
	os.Exit(cli.Run(eventsource.NewCommand(ctx)))
}
