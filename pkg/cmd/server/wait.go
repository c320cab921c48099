package server

import (
	"context"
	"fmt"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"
)

// waitForKubeAPIServer waits until kube-apiserver answers /version. The
// server's start-up reads its delegated authentication configuration from
// kube-apiserver and would otherwise exit, and exit again on every restart,
// for as long as kube-apiserver is unreachable.
func (o *Options) waitForKubeAPIServer(ctx context.Context) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", o.RecommendedOptions.CoreAPI.CoreAPIKubeconfigPath)
	if err != nil {
		return fmt.Errorf("loading the kubeconfig: %w", err)
	}
	cfg.Timeout = 5 * time.Second
	client, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		return err
	}
	return wait.PollUntilContextCancel(ctx, time.Second, true, func(context.Context) (bool, error) {
		if _, err := client.ServerVersion(); err != nil {
			klog.InfoS("Waiting for kube-apiserver", "host", cfg.Host, "err", err)
			return false, nil
		}
		return true, nil
	})
}
