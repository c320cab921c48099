package e2e

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/fields"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/portforward"
	"k8s.io/client-go/transport/spdy"
	aggregatorclientset "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// Where the install puts things (artifacts/deploy, artifacts/event-source).
const (
	serverNamespace = "signal-apiserver"
	serverName      = "signal-apiserver"
	eventSourceName = "signal-event-source"
	apiServiceName  = "v1.signals.remediation.io"
	serviceHost     = "signal-apiserver.signal-apiserver.svc"
)

// runKubectl runs kubectl binary with kubeconfig and returns its standard
// output and error.
func runKubectl(ctx context.Context, binary, kubeconfig string, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, binary, append([]string{"--kubeconfig", kubeconfig}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return strings.TrimSpace(out.String()), strings.TrimSpace(errOut.String()), err
}

// adminKubectl runs the cluster's kubectl as the admin and fails the spec
// on an error.
func adminKubectl(ctx context.Context, args ...string) string {
	out, errOut, err := runKubectl(ctx, kubectl, kubeconfigPath, args...)
	ExpectWithOffset(1, err).NotTo(HaveOccurred(), "kubectl %s: %s", strings.Join(args, " "), errOut)
	return out
}

// createNamespace creates a namespace for one spec and deletes it after.
func createNamespace(ctx context.Context, name string) {
	_, err := kube.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: name}}, metav1.CreateOptions{})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	DeferCleanup(func(ctx context.Context) {
		err := kube.CoreV1().Namespaces().Delete(ctx, name, metav1.DeleteOptions{})
		if !apierrors.IsNotFound(err) {
			Expect(err).NotTo(HaveOccurred())
		}
	})
}

// rrsOf lists the RemediationRequests of fingerprint fp in namespace, by the
// CRD's selectable field.
func rrsOf(ctx context.Context, namespace, fp string) []remediationv1alpha1.RemediationRequest {
	list, err := signals.RemediationV1alpha1().RemediationRequests(namespace).List(ctx, metav1.ListOptions{
		FieldSelector: fields.OneTermEqualSelector("spec.signalFingerprint", fp).String(),
	})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return list.Items
}

// rrsIn lists every RemediationRequest in namespace.
func rrsIn(ctx context.Context, namespace string) []remediationv1alpha1.RemediationRequest {
	list, err := signals.RemediationV1alpha1().RemediationRequests(namespace).List(ctx, metav1.ListOptions{})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return list.Items
}

func countOf(rr *remediationv1alpha1.RemediationRequest) int64 {
	if rr.Status.Deduplication == nil {
		return 0
	}
	return rr.Status.Deduplication.OccurrenceCount
}

// podsOf returns the Pods of a Deployment's label app.kubernetes.io/name.
func podsOf(ctx context.Context, namespace, name string) []corev1.Pod {
	list, err := kube.CoreV1().Pods(namespace).List(ctx, metav1.ListOptions{
		LabelSelector: labels.SelectorFromSet(labels.Set{"app.kubernetes.io/name": name}).String(),
	})
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return list.Items
}

func parseMetrics(body []byte) map[string]*dto.MetricFamily {
	parser := expfmt.NewTextParser(model.UTF8Validation)
	families, err := parser.TextToMetricFamilies(bytes.NewReader(body))
	ExpectWithOffset(2, err).NotTo(HaveOccurred())
	return families
}

// sum adds the series of family whose labels include match.
func sum(families map[string]*dto.MetricFamily, family string, match map[string]string) float64 {
	f, ok := families[family]
	if !ok {
		return 0
	}
	total := 0.0
	for _, m := range f.Metric {
		have := map[string]string{}
		for _, l := range m.Label {
			have[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range match {
			if have[k] != v {
				ok = false
			}
		}
		if ok && m.Counter != nil {
			total += m.Counter.GetValue()
		}
	}
	return total
}

// eventSourceMetrics scrapes the event source's plain-HTTP /metrics
// through kube-apiserver's Pod proxy.
func eventSourceMetrics(ctx context.Context) map[string]*dto.MetricFamily {
	pods := podsOf(ctx, serverNamespace, eventSourceName)
	ExpectWithOffset(1, pods).To(HaveLen(1))
	body, err := kube.CoreV1().Pods(serverNamespace).ProxyGet("http", pods[0].Name, "8080", "/metrics", nil).DoRaw(ctx)
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return parseMetrics(body)
}

// serverMetrics scrapes one signal-apiserver Pod's /metrics through a port
// forward, as the admin (kube-apiserver does not proxy /metrics of an
// aggregated server), verifying its certificate as kube-apiserver does:
// against the APIService's caBundle, for the Service's name.
func serverMetrics(ctx context.Context, pod string) map[string]*dto.MetricFamily {
	body, err := getFromServerPod(ctx, pod, "/metrics")
	ExpectWithOffset(1, err).NotTo(HaveOccurred())
	return parseMetrics(body)
}

func getFromServerPod(ctx context.Context, pod, path string) ([]byte, error) {
	roundTripper, upgrader, err := spdy.RoundTripperFor(adminConf)
	if err != nil {
		return nil, err
	}
	url := kube.CoreV1().RESTClient().Post().Resource("pods").Namespace(serverNamespace).Name(pod).SubResource("portforward").URL()
	dialer := spdy.NewDialer(upgrader, &http.Client{Transport: roundTripper}, http.MethodPost, url)
	stop, ready := make(chan struct{}), make(chan struct{})
	defer close(stop)
	fw, err := portforward.NewOnAddresses(dialer, []string{"127.0.0.1"}, []string{"0:6443"}, stop, ready, io.Discard, io.Discard)
	if err != nil {
		return nil, err
	}
	errs := make(chan error, 1)
	go func() { errs <- fw.ForwardPorts() }()
	select {
	case <-ready:
	case err := <-errs:
		return nil, fmt.Errorf("port-forward to %s: %w", pod, err)
	case <-time.After(30 * time.Second):
		return nil, fmt.Errorf("port-forward to %s: not ready after 30s", pod)
	}
	ports, err := fw.GetPorts()
	if err != nil {
		return nil, err
	}

	client, err := serverHTTPClient(ctx)
	if err != nil {
		return nil, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("https://127.0.0.1:%d%s", ports[0].Local, path), nil)
	if err != nil {
		return nil, err
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s from %s: %s: %s", path, pod, resp.Status, body)
	}
	return body, nil
}

// serverHTTPClient talks to a signal-apiserver Pod with the admin's client
// certificate and trusts what kube-apiserver trusts for it.
func serverHTTPClient(ctx context.Context) (*http.Client, error) {
	tlsConfig, err := rest.TLSConfigFor(adminConf)
	if err != nil {
		return nil, err
	}
	svc, err := aggregatorclientset.NewForConfigOrDie(adminConf).ApiregistrationV1().APIServices().Get(ctx, apiServiceName, metav1.GetOptions{})
	if err != nil {
		return nil, err
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(svc.Spec.CABundle) {
		return nil, fmt.Errorf("APIService %s has no caBundle", apiServiceName)
	}
	tlsConfig = tlsConfig.Clone()
	tlsConfig.RootCAs, tlsConfig.ServerName = roots, serviceHost
	tlsConfig.MinVersion = tls.VersionTLS12
	return &http.Client{Transport: &http.Transport{TLSClientConfig: tlsConfig}, Timeout: 30 * time.Second}, nil
}

// writeTempFile writes content to a file of the spec's temporary folder.
func writeTempFile(name, content string) string {
	path := GinkgoT().TempDir() + "/" + name
	ExpectWithOffset(1, os.WriteFile(path, []byte(content), 0o600)).To(Succeed())
	return path
}
