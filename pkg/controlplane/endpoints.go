package controlplane

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	corev1 "k8s.io/api/core/v1"
	discoveryv1 "k8s.io/api/discovery/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	apiregistrationv1 "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1"
	apiregistrationhelper "k8s.io/kube-aggregator/pkg/apis/apiregistration/v1/helper"
	aggregatorclientset "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	"k8s.io/utils/ptr"
)

// servicePort is the port of the ClusterIP Service of
// RegisterAPIServiceEndpoints; with aggregator routing nothing listens on it.
const servicePort = 443

// endpointSliceManager marks the EndpointSlices written here, so no
// controller takes them for its own.
const endpointSliceManager = "signal-apiserver-controlplane"

// RegisterAPIServiceEndpoints points kube-apiserver's aggregator at servers
// the way a Deployment behind a Service is reached: a ClusterIP Service with
// one EndpointSlice per server at Options.EndpointIP, and the APIService
// v1.signals.remediation.io on it. The aggregator (--enable-aggregator-routing)
// picks a random ready endpoint for every request. The servers must listen
// on EndpointIP (--bind-address=0.0.0.0). It replaces what an earlier call
// registered and waits until kube-apiserver serves discovery of
// signals.remediation.io/v1.
func (c *ControlPlane) RegisterAPIServiceEndpoints(ctx context.Context, servers ...*Server) error {
	ip := c.opts.EndpointIP
	if ip == nil {
		return errors.New("controlplane: RegisterAPIServiceEndpoints needs Options.EndpointIP")
	}
	if len(servers) == 0 {
		return errors.New("controlplane: no servers to register")
	}
	core, err := kubernetes.NewForConfig(c.admin)
	if err != nil {
		return err
	}
	aggregator, err := aggregatorclientset.NewForConfig(c.admin)
	if err != nil {
		return err
	}

	services := core.CoreV1().Services(ServerNamespace)
	if err := services.Delete(ctx, serviceName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	svc := &corev1.Service{
		ObjectMeta: metav1.ObjectMeta{Name: serviceName, Namespace: ServerNamespace},
		Spec: corev1.ServiceSpec{
			Type:  corev1.ServiceTypeClusterIP,
			Ports: []corev1.ServicePort{{Name: "https", Port: servicePort, TargetPort: intstr.FromString("https"), Protocol: corev1.ProtocolTCP}},
		},
	}
	if _, err := services.Create(ctx, svc, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating Service %s/%s: %w", ServerNamespace, serviceName, err)
	}

	endpointSlices := core.DiscoveryV1().EndpointSlices(ServerNamespace)
	if err := endpointSlices.DeleteCollection(ctx, metav1.DeleteOptions{}, metav1.ListOptions{
		LabelSelector: discoveryv1.LabelManagedBy + "=" + endpointSliceManager,
	}); err != nil {
		return err
	}
	for _, s := range servers {
		slice := &discoveryv1.EndpointSlice{
			ObjectMeta: metav1.ObjectMeta{
				Name:      serviceName + "-" + s.Name,
				Namespace: ServerNamespace,
				Labels:    map[string]string{discoveryv1.LabelServiceName: serviceName, discoveryv1.LabelManagedBy: endpointSliceManager},
			},
			AddressType: discoveryv1.AddressTypeIPv4,
			Endpoints:   []discoveryv1.Endpoint{{Addresses: []string{ip.String()}, Conditions: discoveryv1.EndpointConditions{Ready: ptr.To(true)}}},
			Ports:       []discoveryv1.EndpointPort{{Name: ptr.To("https"), Port: ptr.To(int32(s.Port)), Protocol: ptr.To(corev1.ProtocolTCP)}},
		}
		if _, err := endpointSlices.Create(ctx, slice, metav1.CreateOptions{}); err != nil {
			return fmt.Errorf("creating EndpointSlice of %s: %w", s.Name, err)
		}
	}

	apiServices := aggregator.ApiregistrationV1().APIServices()
	if err := apiServices.Delete(ctx, APIServiceName, metav1.DeleteOptions{}); err != nil && !apierrors.IsNotFound(err) {
		return err
	}
	if _, err := apiServices.Create(ctx, &apiregistrationv1.APIService{
		ObjectMeta: metav1.ObjectMeta{Name: APIServiceName},
		Spec: apiregistrationv1.APIServiceSpec{
			Group:                "signals.remediation.io",
			Version:              "v1",
			GroupPriorityMinimum: 1000,
			VersionPriority:      15,
			Service:              &apiregistrationv1.ServiceReference{Namespace: ServerNamespace, Name: serviceName, Port: ptr.To(int32(servicePort))},
			CABundle:             servers[0].CABundle,
		},
	}, metav1.CreateOptions{}); err != nil {
		return fmt.Errorf("creating APIService %s: %w", APIServiceName, err)
	}

	var last string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, registerTimeout, true, func(ctx context.Context) (bool, error) {
		got, err := apiServices.Get(ctx, APIServiceName, metav1.GetOptions{})
		if err != nil {
			return false, err
		}
		if !apiregistrationhelper.IsAPIServiceConditionTrue(got, apiregistrationv1.Available) {
			last = "APIService not Available"
			return false, nil
		}
		resources, err := core.Discovery().ServerResourcesForGroupVersion(SignalsGroupVersion)
		if err != nil {
			last = "discovery: " + err.Error()
			return false, nil
		}
		return slices.ContainsFunc(resources.APIResources, func(r metav1.APIResource) bool { return r.Name == "signals" }), nil
	})
	if err != nil {
		return fmt.Errorf("waiting for APIService %s on %d endpoints (last: %s): %w", APIServiceName, len(servers), last, err)
	}
	return nil
}

// PID returns the process ID of the server's current process.
func (s *Server) PID() int { return s.cmd.Process.Pid }
