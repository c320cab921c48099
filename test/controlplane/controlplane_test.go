package controlplane_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	"k8s.io/apiextensions-apiserver/pkg/apihelpers"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apiextensionsclientset "k8s.io/apiextensions-apiserver/pkg/client/clientset/clientset"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apimachinery/pkg/watch"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"
	aggregatorclientset "k8s.io/kube-aggregator/pkg/client/clientset_generated/clientset"
	ctrllog "sigs.k8s.io/controller-runtime/pkg/log"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// TestControlPlane runs the harness against a stub signal-apiserver
// (testdata/stub-apiserver) that checks what the harness must get right: the
// front-proxy set-up, the server's kubeconfig and RBAC, and registration.
func TestControlPlane(t *testing.T) {
	ctrllog.SetLogger(klog.NewKlogr())
	repoRoot, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	binDir, err := controlplane.FindBinDir(repoRoot)
	if err != nil {
		t.Fatal(err)
	}
	stateDir, err := os.MkdirTemp("", "controlplane-test-")
	if err != nil {
		t.Fatal(err)
	}
	stub := filepath.Join(stateDir, "stub-apiserver")
	if out, err := exec.Command("go", "build", "-o", stub, "./testdata/stub-apiserver").CombinedOutput(); err != nil {
		t.Fatalf("building the stub server: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	began := time.Now()
	cp, err := controlplane.Start(ctx, controlplane.Options{BinDir: binDir, StateDir: stateDir, ServerBinary: stub, RepoRoot: repoRoot})
	if err != nil {
		t.Fatalf("Start: %v (state in %s)", err, stateDir)
	}
	t.Logf("Start took %s", time.Since(began).Round(time.Millisecond))
	t.Cleanup(func() {
		if err := cp.Stop(); err != nil {
			t.Errorf("Stop: %v", err)
		}
		if t.Failed() {
			t.Logf("logs and state kept in %s", stateDir)
			return
		}
		_ = os.RemoveAll(stateDir)
	})

	admin := cp.RESTConfig()
	core := kubernetes.NewForConfigOrDie(admin)

	t.Run("CRDs are established", func(t *testing.T) {
		crds := apiextensionsclientset.NewForConfigOrDie(admin).ApiextensionsV1().CustomResourceDefinitions()
		crd, err := crds.Get(ctx, "remediationrequests.remediation.io", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if !apihelpers.IsCRDConditionTrue(crd, apiextensionsv1.Established) {
			t.Errorf("CRD %s is not Established: %+v", crd.Name, crd.Status.Conditions)
		}
	})

	t.Run("kube-apiserver publishes the front-proxy settings", func(t *testing.T) {
		cm, err := core.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		want := map[string]string{
			"requestheader-allowed-names":        `["front-proxy-client"]`,
			"requestheader-username-headers":     `["X-Remote-User"]`,
			"requestheader-group-headers":        `["X-Remote-Group"]`,
			"requestheader-extra-headers-prefix": `["X-Remote-Extra-"]`,
			"requestheader-uid-headers":          `["X-Remote-Uid"]`,
			"requestheader-client-ca-file":       string(cp.FrontProxyCA()),
		}
		for key, value := range want {
			if got := cm.Data[key]; got != value {
				t.Errorf("%s = %q, want %q", key, got, value)
			}
		}
	})

	t.Run("signal-apiserver's RBAC is exactly artifacts/deploy/rbac.yaml and servingcert.yaml", func(t *testing.T) {
		for _, tc := range []struct {
			attrs authorizationv1.ResourceAttributes
			want  bool
		}{
			{authorizationv1.ResourceAttributes{Group: "remediation.io", Resource: "remediationrequests", Verb: "list"}, true},
			{authorizationv1.ResourceAttributes{Group: "remediation.io", Resource: "remediationrequests", Verb: "watch"}, true},
			{authorizationv1.ResourceAttributes{Group: "remediation.io", Resource: "remediationrequests", Verb: "get", Namespace: "default"}, true},
			{authorizationv1.ResourceAttributes{Group: "remediation.io", Resource: "remediationrequests", Verb: "create", Namespace: "default"}, true},
			{authorizationv1.ResourceAttributes{Group: "remediation.io", Resource: "remediationrequests", Subresource: "status", Verb: "update", Namespace: "default"}, true},
			{authorizationv1.ResourceAttributes{Group: "remediation.io", Resource: "remediationrequests", Subresource: "status", Verb: "patch", Namespace: "default"}, false},
			{authorizationv1.ResourceAttributes{Group: "remediation.io", Resource: "remediationrequests", Verb: "update", Namespace: "default"}, false},
			{authorizationv1.ResourceAttributes{Group: "remediation.io", Resource: "remediationrequests", Verb: "patch", Namespace: "default"}, false},
			{authorizationv1.ResourceAttributes{Group: "remediation.io", Resource: "remediationrequests", Verb: "delete", Namespace: "default"}, true},
			// Not an API verb: it names the server to policy.yaml.
			{authorizationv1.ResourceAttributes{Group: "remediation.io", Resource: "remediationrequests", Verb: "deduplicate"}, true},
			{authorizationv1.ResourceAttributes{Group: "authentication.k8s.io", Resource: "tokenreviews", Verb: "create"}, true},
			{authorizationv1.ResourceAttributes{Group: "authorization.k8s.io", Resource: "subjectaccessreviews", Verb: "create"}, true},
			{authorizationv1.ResourceAttributes{Resource: "configmaps", Verb: "get", Namespace: "kube-system", Name: "extension-apiserver-authentication"}, true},
			{authorizationv1.ResourceAttributes{Resource: "configmaps", Verb: "get", Namespace: "default"}, false},
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "get", Namespace: "kube-system"}, false},
			{authorizationv1.ResourceAttributes{Resource: "namespaces", Verb: "watch"}, true},
			{authorizationv1.ResourceAttributes{Resource: "namespaces", Verb: "delete"}, false},
			{authorizationv1.ResourceAttributes{Resource: "events", Verb: "create", Namespace: "default"}, true},
			{authorizationv1.ResourceAttributes{Resource: "events", Verb: "delete", Namespace: "default"}, false},
			{authorizationv1.ResourceAttributes{Group: "admissionregistration.k8s.io", Resource: "validatingadmissionpolicies", Verb: "watch"}, true},
			{authorizationv1.ResourceAttributes{Group: "admissionregistration.k8s.io", Resource: "validatingwebhookconfigurations", Verb: "create"}, false},
			{authorizationv1.ResourceAttributes{Group: "flowcontrol.apiserver.k8s.io", Resource: "flowschemas", Verb: "list"}, false},
			{authorizationv1.ResourceAttributes{Group: "signals.remediation.io", Resource: "signals", Verb: "create"}, false},
			{authorizationv1.ResourceAttributes{Resource: "pods", Verb: "get", Namespace: "default"}, true},
			{authorizationv1.ResourceAttributes{Resource: "pods", Verb: "list"}, false},
			{authorizationv1.ResourceAttributes{Resource: "pods", Verb: "watch"}, false},
			{authorizationv1.ResourceAttributes{Resource: "pods", Verb: "delete", Namespace: "default"}, false},
			{authorizationv1.ResourceAttributes{Group: "apps", Resource: "replicasets", Verb: "get", Namespace: "default"}, true},
			{authorizationv1.ResourceAttributes{Group: "apps", Resource: "replicasets", Verb: "list"}, false},
			{authorizationv1.ResourceAttributes{Group: "batch", Resource: "jobs", Verb: "get", Namespace: "default"}, true},
			{authorizationv1.ResourceAttributes{Group: "batch", Resource: "jobs", Verb: "list"}, false},
			{authorizationv1.ResourceAttributes{Group: "apps", Resource: "deployments", Verb: "get", Namespace: "default"}, false},
			{authorizationv1.ResourceAttributes{Group: "apps", Resource: "statefulsets", Verb: "get", Namespace: "default"}, false},
			{authorizationv1.ResourceAttributes{Group: "apps", Resource: "daemonsets", Verb: "get", Namespace: "default"}, false},
			{authorizationv1.ResourceAttributes{Group: "batch", Resource: "cronjobs", Verb: "get", Namespace: "default"}, false},
			{authorizationv1.ResourceAttributes{Resource: "pods", Subresource: "log", Verb: "get", Namespace: "default"}, false},
			// servingcert.yaml: the one Secret and the one APIService, by name.
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "get", Namespace: controlplane.ServerNamespace, Name: "signal-apiserver-serving-ca"}, true},
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "update", Namespace: controlplane.ServerNamespace, Name: "signal-apiserver-serving-ca"}, true},
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "get", Namespace: controlplane.ServerNamespace, Name: "other"}, false},
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "list", Namespace: controlplane.ServerNamespace}, false},
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "create", Namespace: controlplane.ServerNamespace}, false},
			{authorizationv1.ResourceAttributes{Resource: "secrets", Verb: "delete", Namespace: controlplane.ServerNamespace, Name: "signal-apiserver-serving-ca"}, false},
			{authorizationv1.ResourceAttributes{Group: "apiregistration.k8s.io", Resource: "apiservices", Verb: "update", Name: controlplane.APIServiceName}, true},
			{authorizationv1.ResourceAttributes{Group: "apiregistration.k8s.io", Resource: "apiservices", Verb: "update", Name: "v1.apps"}, false},
			{authorizationv1.ResourceAttributes{Group: "apiregistration.k8s.io", Resource: "apiservices", Verb: "create"}, false},
			{authorizationv1.ResourceAttributes{Group: "apiregistration.k8s.io", Resource: "apiservices", Verb: "delete", Name: controlplane.APIServiceName}, false},
		} {
			sar, err := core.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authorizationv1.SubjectAccessReview{
				Spec: authorizationv1.SubjectAccessReviewSpec{User: controlplane.ServerUser, Groups: controlplane.ServerGroups, ResourceAttributes: &tc.attrs},
			}, metav1.CreateOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if sar.Status.Allowed != tc.want {
				t.Errorf("%+v: allowed = %v, want %v", tc.attrs, sar.Status.Allowed, tc.want)
			}
		}
	})

	t.Run("kubectl auth can-i --list: signal-apiserver's ServiceAccount has exactly these rules", func(t *testing.T) {
		// The rules of artifacts/deploy/rbac.yaml plus what every
		// authenticated user has (system:basic-user, system:discovery,
		// system:public-info-viewer), as kubectl prints them: resources,
		// non-resource URLs, resource names, verbs, with runs of spaces
		// collapsed, in namespace default (the kube-system RoleBinding is
		// checked by the SubjectAccessReview subtest; the Secret rule of
		// servingcert.yaml is namespaced). Update this list with rbac.yaml and
		// servingcert.yaml.
		want := []string{
			"selfsubjectreviews.authentication.k8s.io [] [] [create]",
			"tokenreviews.authentication.k8s.io [] [] [create]",
			"selfsubjectaccessreviews.authorization.k8s.io [] [] [create]",
			"selfsubjectrulesreviews.authorization.k8s.io [] [] [create]",
			"subjectaccessreviews.authorization.k8s.io [] [] [create]",
			"remediationrequests.remediation.io [] [] [create deduplicate delete get list watch]",
			"namespaces [] [] [get list watch]",
			"clustertrustbundles.certificates.k8s.io [] [] [get list watch]",
			"apiservices.apiregistration.k8s.io [] [v1.signals.remediation.io] [get update]",
			"[/.well-known/openid-configuration/] [] [get]",
			"[/.well-known/openid-configuration] [] [get]",
			"[/api/*] [] [get]",
			"[/api] [] [get]",
			"[/apis/*] [] [get]",
			"[/apis] [] [get]",
			"[/healthz] [] [get]",
			"[/healthz] [] [get]",
			"[/livez] [] [get]",
			"[/livez] [] [get]",
			"[/openapi/*] [] [get]",
			"[/openapi] [] [get]",
			"[/openid/v1/jwks/] [] [get]",
			"[/openid/v1/jwks] [] [get]",
			"[/readyz] [] [get]",
			"[/readyz] [] [get]",
			"[/version/] [] [get]",
			"[/version/] [] [get]",
			"[/version] [] [get]",
			"[/version] [] [get]",
			"pods [] [] [get]",
			"events [] [] [create patch]",
			"replicasets.apps [] [] [get]",
			"jobs.batch [] [] [get]",
			"mutatingadmissionpolicies.admissionregistration.k8s.io [] [] [list watch]",
			"mutatingadmissionpolicybindings.admissionregistration.k8s.io [] [] [list watch]",
			"mutatingwebhookconfigurations.admissionregistration.k8s.io [] [] [list watch]",
			"validatingadmissionpolicies.admissionregistration.k8s.io [] [] [list watch]",
			"validatingadmissionpolicybindings.admissionregistration.k8s.io [] [] [list watch]",
			"validatingwebhookconfigurations.admissionregistration.k8s.io [] [] [list watch]",
			"remediationrequests.remediation.io/status [] [] [update]",
		}
		out, err := exec.Command(cp.KubectlPath(), "--kubeconfig", cp.KubeconfigPath(),
			"auth", "can-i", "--list", "--as="+controlplane.ServerUser).CombinedOutput()
		if err != nil {
			t.Fatalf("kubectl auth can-i --list: %v\n%s", err, out)
		}
		var got []string
		for i, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if i == 0 || strings.HasPrefix(line, "Warning:") {
				continue // the header
			}
			got = append(got, sortedVerbs(strings.Join(strings.Fields(line), " ")))
		}
		// The order of the lines, and of the verbs of rules that kubectl
		// merges, varies; only the rules count.
		slices.Sort(got)
		slices.Sort(want)
		if !slices.Equal(got, want) {
			t.Errorf("kubectl auth can-i --list --as=%s:\ngot:\n%s\nwant:\n%s", controlplane.ServerUser, strings.Join(got, "\n"), strings.Join(want, "\n"))
		}
	})

	t.Run("artifacts/deploy passes a server-side dry run", func(t *testing.T) {
		cmd := exec.Command(cp.KubectlPath(), "--kubeconfig", cp.KubeconfigPath(),
			"apply", "--server-side", "--dry-run=server", "-k", filepath.Join(repoRoot, "artifacts", "deploy"))
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("kubectl apply -k artifacts/deploy: %v\n%s", err, out)
		}
	})

	t.Run("a proxy forwards as the server, holds requests and pauses watches", func(t *testing.T) {
		testProxy(ctx, t, cp, admin)
	})

	t.Run("two replicas behind the aggregator", func(t *testing.T) {
		a, err := cp.StartServer(ctx, "stub-a")
		if err != nil {
			t.Fatal(err)
		}
		b, err := cp.StartServer(ctx, "stub-b")
		if err != nil {
			t.Fatal(err)
		}
		if a.Port == b.Port {
			t.Fatalf("both servers on port %d", a.Port)
		}

		if err := cp.RegisterAPIService(ctx, a); err != nil {
			t.Fatal(err)
		}
		adminVia := whoami{User: "admin", Groups: []string{"system:masters", "system:authenticated"}}
		if got := whoamiThrough(ctx, t, admin); !reflect.DeepEqual(got, adminVia) {
			t.Errorf("through kube-apiserver: %+v, want %+v", got, adminVia)
		}

		direct := cp.FrontProxyClientConfig(b, "alice", []string{"team-a", "team-b"})
		want := whoami{User: "alice", Groups: []string{"team-a", "team-b"}}
		if got := whoamiThrough(ctx, t, direct); !reflect.DeepEqual(got, want) {
			t.Errorf("directly to %s: %+v, want %+v", b.Name, got, want)
		}

		noClientCert := &rest.Config{Host: direct.Host, TLSClientConfig: rest.TLSClientConfig{CAData: b.CABundle}}
		_, err = kubernetes.NewForConfigOrDie(noClientCert).Discovery().RESTClient().Get().AbsPath("/apis/signals.remediation.io/v1").DoRaw(ctx)
		if !apierrors.IsUnauthorized(err) {
			t.Errorf("without the front-proxy certificate: err = %v, want 401", err)
		}

		if err := cp.RegisterAPIService(ctx, b); err != nil {
			t.Fatal(err)
		}
		apiService, err := aggregatorclientset.NewForConfigOrDie(admin).ApiregistrationV1().APIServices().Get(ctx, controlplane.APIServiceName, metav1.GetOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if got := *apiService.Spec.Service.Port; got != int32(b.Port) {
			t.Errorf("APIService port = %d, want %d", got, b.Port)
		}
		if !bytes.Equal(apiService.Spec.CABundle, b.CABundle) {
			t.Errorf("APIService caBundle is not the serving CA")
		}

		// Once a is gone, requests through kube-apiserver can only reach b.
		if err := a.Stop(); err != nil {
			t.Errorf("stopping %s: %v", a.Name, err)
		}
		if got := whoamiThrough(ctx, t, admin); !reflect.DeepEqual(got, adminVia) {
			t.Errorf("through kube-apiserver to %s: %+v, want %+v", b.Name, got, adminVia)
		}

		if err := b.Kill(); err != nil {
			t.Errorf("killing %s: %v", b.Name, err)
		}
		for _, s := range []*controlplane.Server{a, b} {
			select {
			case <-s.Done():
			default:
				t.Errorf("%s is still running", s.Name)
			}
		}
	})
}

// whoami is the stub's answer to GET /apis/signals.remediation.io/v1/whoami.
type whoami struct {
	User   string   `json:"user"`
	Groups []string `json:"groups"`
}

func whoamiThrough(ctx context.Context, t *testing.T, cfg *rest.Config) whoami {
	t.Helper()
	rc := kubernetes.NewForConfigOrDie(cfg).Discovery().RESTClient()
	var got whoami
	// The aggregator may need a moment to notice a registration change.
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 10*time.Second, true, func(ctx context.Context) (bool, error) {
		var status int
		body, err := rc.Get().AbsPath("/apis/signals.remediation.io/v1/whoami").Do(ctx).StatusCode(&status).Raw()
		if err != nil {
			t.Logf("whoami: %d %v", status, err)
			return false, nil
		}
		return status == http.StatusOK, json.Unmarshal(body, &got)
	})
	if err != nil {
		t.Fatalf("whoami via %s: %v", cfg.Host, err)
	}
	return got
}

// testProxy starts the stub behind a controlplane.Proxy: it reads the front-proxy
// settings and lists RemediationRequests through it, which RBAC allows only
// to signal-apiserver's user, so a ready stub proves the proxy forwards as
// that user. Then it holds the stub's list, and pauses a watch.
func testProxy(ctx context.Context, t *testing.T, cp *controlplane.ControlPlane, admin *rest.Config) {
	p, err := cp.StartProxy("proxy-test")
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()

	rrs := versioned.NewForConfigOrDie(admin).RemediationV1alpha1().RemediationRequests("default")
	// kube-apiserver answers 429 until the CRD's watch cache is ready, and
	// builds it on first use; client-go retries.
	if _, err := rrs.List(ctx, metav1.ListOptions{}); err != nil {
		t.Fatal(err)
	}
	hold := p.Hold(func(r controlplane.Request) bool { return r.Verb == "list" && r.Resource == "remediationrequests" })
	s, err := cp.StartServerNoWait("stub-proxied", controlplane.ThroughProxy(p))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if err := s.Stop(); err != nil {
			t.Errorf("stopping %s: %v", s.Name, err)
		}
	}()
	held, err := hold.Next(ctx)
	if err != nil {
		t.Fatal(err)
	}
	hold.Stop()
	if held.Method != http.MethodGet || held.APIGroup != "remediation.io" || held.Namespace != "" {
		t.Errorf("held %+v, want a cluster-wide list of remediation.io remediationrequests", held.Request)
	}
	// Not ready while its list is held.
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		code, _, err := cp.ServerReadyz(ctx, s)
		if err != nil {
			return false, nil // not listening yet
		}
		if code != http.StatusServiceUnavailable {
			return false, fmt.Errorf("/readyz = %d while the list is held, want 503", code)
		}
		return true, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	held.Release()
	if code, err := held.Answer(ctx); err != nil || code != http.StatusOK {
		t.Fatalf("the released list: %d, %v; want 200", code, err)
	}
	if err := cp.WaitForServerReady(ctx, s); err != nil {
		t.Fatal(err)
	}

	proxied := versioned.NewForConfigOrDie(p.RESTConfig()).RemediationV1alpha1().RemediationRequests("default")
	list, err := proxied.List(ctx, metav1.ListOptions{})
	if err != nil {
		t.Fatal(err)
	}
	w, err := proxied.Watch(ctx, metav1.ListOptions{ResourceVersion: list.ResourceVersion})
	if err != nil {
		t.Fatal(err)
	}
	defer w.Stop()
	next := func() watch.Event {
		t.Helper()
		for {
			select {
			case ev := <-w.ResultChan():
				if ev.Type != watch.Bookmark {
					return ev
				}
			case <-ctx.Done():
				t.Fatal("no watch event")
			}
		}
	}

	p.PauseWatches()
	a, err := rrs.Create(ctx, newRemediationRequest("proxy-a"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	b, err := rrs.Create(ctx, newRemediationRequest("proxy-b"), metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := rrs.Delete(ctx, a.Name, metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	fired := p.PauseWatchesAfter(func(ev controlplane.WatchEvent) bool { return ev.Type == "ADDED" && ev.UID == b.UID })
	p.ResumeWatches()
	for _, want := range []*remediationv1alpha1.RemediationRequest{a, b} {
		ev := next()
		if got := ev.Object.(*remediationv1alpha1.RemediationRequest); ev.Type != watch.Added || got.UID != want.UID {
			t.Fatalf("got %s %s, want ADDED %s", ev.Type, got.Name, want.Name)
		}
	}
	if ev := <-fired; ev.Name != b.Name || ev.Namespace != "default" || ev.ResourceVersion != b.ResourceVersion {
		t.Errorf("the pause fired on %+v, want the ADDED event of %s", ev, b.Name)
	}
	// The deletion reached the proxy long ago; it stays buffered.
	select {
	case ev := <-w.ResultChan():
		t.Fatalf("got %s while paused", ev.Type)
	case <-time.After(time.Second):
	}
	p.ResumeWatches()
	if ev := next(); ev.Type != watch.Deleted || ev.Object.(*remediationv1alpha1.RemediationRequest).UID != a.UID {
		t.Fatalf("got %s, want DELETED %s", ev.Type, a.Name)
	}
}

// newRemediationRequest is a RemediationRequest of its own fingerprint,
// derived from label, at the name the CRD requires for it.
func newRemediationRequest(label string) *remediationv1alpha1.RemediationRequest {
	now := metav1.Now()
	sum := sha256.Sum256([]byte(label))
	fp := hex.EncodeToString(sum[:])
	return &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Name: remediationv1alpha1.NameFor(fp)},
		Spec: remediationv1alpha1.RemediationRequestSpec{
			SignalFingerprint: fp,
			SignalName:        "ProxyTest",
			SignalSource:      "controlplane-test",
			TargetResource:    remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "default", Name: "proxy-test"},
			FiringTime:        now,
			ReceivedTime:      now,
		},
	}
}

// sortedVerbs sorts the verbs of a line of `kubectl auth can-i --list`, the
// last bracketed list: kubectl merges rules in no fixed order.
func sortedVerbs(line string) string {
	i := strings.LastIndex(line, "[")
	if i < 0 || !strings.HasSuffix(line, "]") {
		return line
	}
	verbs := strings.Fields(line[i+1 : len(line)-1])
	slices.Sort(verbs)
	return line[:i+1] + strings.Join(verbs, " ") + "]"
}
