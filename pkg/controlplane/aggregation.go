package controlplane

import (
	"context"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/util/retry"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	apiregistrationhelper "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"
	aggregatorclientset "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
)

// The aggregated API signal-apiserver serves.
const (
	// APIServiceName is the name of the APIService for signals.remediation.io/v1.
	APIServiceName = "v1.signals.remediation.io"
	// SignalsGroupVersion is the group/version signal-apiserver serves.
	SignalsGroupVersion = "signals.remediation.io/v1"
	openAPIV3Path       = "/openapi/v3/apis/" + SignalsGroupVersion
	serviceName         = "signal-apiserver"
	registerTimeout     = 60 * time.Second
)

// RegisterAPIService points kube-apiserver's aggregator at server s: an
// ExternalName Service for localhost and the APIService
// v1.signals.remediation.io with s's port and CA. It creates both or updates
// them, so registering another server moves the API to it. It waits until the
// APIService is Available, discovery through kube-apiserver lists signals and
// kube-apiserver serves the OpenAPI v3 document of signals.remediation.io/v1.
func (c *ControlPlane) RegisterAPIService(ctx context.Context, s *Server) error {
	core, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	aggregator, err := aggregatorclientset.NewForConfig(c.admin)
	if err != nil {
		return err
	}

	// Without kube-proxy no cluster IP routes anywhere; an ExternalName of
	// localhost makes the aggregator dial https://localhost:<APIService port>.
	port := int32(s.Port)
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: serviceName, Namespace: ServerNamespace},
		Spec: corev1.ServiceSpec{
			Type:         corev1.ServiceTypeExternalName,
			ExternalName: "localhost",
			Ports: []corev1.ServicePort{{
				Name: "https", Port: port, TargetPort: intstr.FromInt32(port), Protocol: corev1.ProtocolTCP,
			}},
		},
	}
	services := core.CoreV1().Services(ServerNamespace)
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got, err := services.Get(ctx, serviceName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = services.Create(ctx, svc, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		got.Spec = svc.Spec
		_, err = services.Update(ctx, got, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("writing Service %s/%s: %w", ServerNamespace, serviceName, err)
	}

	apiService := &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: APIServiceName},
		Spec: apiregistrationv1.APIServiceSpec{
			Group:                "signals.remediation.io",
			Version:              "v1",
			GroupPriorityMinimum: 1000,
			VersionPriority:      15,
			Service:              &apiregistrationv1.ServiceReference{Namespace: ServerNamespace, Name: serviceName, Port: &port},
			CABundle:             s.CABundle,
		},
	}
	apiServices := aggregator.ApiregistrationV1().APIServices()
	if err := retry.RetryOnConflict(retry.DefaultRetry, func() error {
		got, err := apiServices.Get(ctx, APIServiceName, metav1.GetOptions{})
		if apierrors.IsNotFound(err) {
			_, err = apiServices.Create(ctx, apiService, metav1.CreateOptions{})
			return err
		}
		if err != nil {
			return err
		}
		got.Spec = apiService.Spec
		_, err = apiServices.Update(ctx, got, metav1.UpdateOptions{})
		return err
	}); err != nil {
		return fmt.Errorf("writing APIService %s: %w", APIServiceName, err)
	}

	disco, err := discovery.NewDiscoveryClientForConfig(c.admin)
	if err != nil {
		return err
	}
	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, registerTimeout, true, func(ctx context.Context) (bool, error) {
		got, err := apiServices.Get(ctx, APIServiceName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if !apiregistrationhelper.IsAPIServiceConditionTrue(got, apiregistrationv1.Available) {
			if cond := apiregistrationhelper.GetAPIServiceConditionByType(got, apiregistrationv1.Available); cond != nil {
				last = fmt.Sprintf("Available=%s %s: %s", cond.Status, cond.Reason, cond.Message)
			}
			return false, nil
		}
		resources, err := disco.ServerResourcesForGroupVersion(SignalsGroupVersion)
		if err != nil {
			last = "discovery: " + err.Error()
			return false, nil
		}
		if !slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "signals" }) {
			last = fmt.Sprintf("discovery of %s lists no signals", SignalsGroupVersion)
			return false, nil
		}
		// kube-apiserver fetches the server's OpenAPI a moment after
		// discovery works; kubectl explain needs it.
		if err := disco.RESTClient().Get().AbsPath(openAPIV3Path).Do(ctx).Error(); err != nil {
			last = openAPIV3Path + ": " + err.Error()
			return false, nil
		}
		return true, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for APIService %s to serve signals (last: %s; log: %s): %w", APIServiceName, last, s.LogPath, err)
	}
	return nil
}
