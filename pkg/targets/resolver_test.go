package targets

import (
	"context"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	fakediscovery "k8s.io/client-go/discovery/fake"
	clienttesting "k8s.io/client-go/testing"
)

// clusterResources is a small cluster's discovery.
func clusterResources() []*metav1.APIResourceList {
	return []*metav1.APIResourceList{
		{GroupVersion: "v1", APIResources: []metav1.APIResource{
			{Name: "pods", SingularName: "pod", Namespaced: true, Kind: "Pod", ShortNames: []string{"po"}},
			{Name: "pods/status", Namespaced: true, Kind: "Pod"},
			{Name: "nodes", SingularName: "node", Kind: "Node", ShortNames: []string{"no"}},
			{Name: "namespaces", SingularName: "namespace", Kind: "Namespace", ShortNames: []string{"ns"}},
			{Name: "services", SingularName: "service", Namespaced: true, Kind: "Service", ShortNames: []string{"svc"}},
		}},
		{GroupVersion: "apps/v1", APIResources: []metav1.APIResource{
			{Name: "deployments", SingularName: "deployment", Namespaced: true, Kind: "Deployment", ShortNames: []string{"deploy"}},
			{Name: "replicasets", SingularName: "replicaset", Namespaced: true, Kind: "ReplicaSet", ShortNames: []string{"rs"}},
		}},
		{GroupVersion: "autoscaling/v2", APIResources: []metav1.APIResource{
			{Name: "horizontalpodautoscalers", SingularName: "horizontalpodautoscaler", Namespaced: true, Kind: "HorizontalPodAutoscaler", ShortNames: []string{"hpa"}},
		}},
		{GroupVersion: "autoscaling/v1", APIResources: []metav1.APIResource{
			{Name: "horizontalpodautoscalers", SingularName: "horizontalpodautoscaler", Namespaced: true, Kind: "HorizontalPodAutoscaler", ShortNames: []string{"hpa"}},
		}},
		{GroupVersion: "rbac.authorization.k8s.io/v1", APIResources: []metav1.APIResource{
			{Name: "clusterrolebindings", SingularName: "clusterrolebinding", Kind: "ClusterRoleBinding"},
		}},
		{GroupVersion: "serving.knative.dev/v1", APIResources: []metav1.APIResource{
			{Name: "services", SingularName: "service", Namespaced: true, Kind: "Service", ShortNames: []string{"ksvc"}},
		}},
	}
}

// fakeClock is a clock tests move by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }
func (c *fakeClock) step(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.t = c.t.Add(d)
}

func newTestResolver(t testing.TB) (*Resolver, *fakediscovery.FakeDiscovery, *fakeClock) {
	t.Helper()
	client := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{Resources: clusterResources()}}
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	r := newResolver(client, MinRefreshInterval, clock.now)
	if !r.Refresh(context.Background()) {
		t.Fatal("the first refresh failed")
	}
	return r, client, clock
}

func TestResolveSpellings(t *testing.T) {
	r, _, _ := newTestResolver(t)
	deployment := Kind{GroupVersionKind: schema.GroupVersionKind{Group: "apps", Version: "v1", Kind: "Deployment"}, Namespaced: true}
	for _, tc := range []struct {
		apiVersion, kind string
		want             Kind
	}{
		{"apps/v1", "Deployment", deployment},
		{"apps/v1", "deployment", deployment},
		{"apps/v1", "deployments", deployment},
		{"apps/v1", "deploy", deployment},
		{"apps/v1", "DEPLOYMENT", deployment},
		{"apps/v1", "Deployments", deployment},
		// The version is not part of an object's identity: one the group
		// does not serve is named by the group's preferred one.
		{"apps/v1beta1", "Deployment", deployment},
		{"v1", "pod", Kind{GroupVersionKind: schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespaced: true}},
		{"v1", "po", Kind{GroupVersionKind: schema.GroupVersionKind{Version: "v1", Kind: "Pod"}, Namespaced: true}},
		{"v1", "nodes", Kind{GroupVersionKind: schema.GroupVersionKind{Version: "v1", Kind: "Node"}}},
		// The group decides which Service.
		{"v1", "svc", Kind{GroupVersionKind: schema.GroupVersionKind{Version: "v1", Kind: "Service"}, Namespaced: true}},
		{"serving.knative.dev/v1", "service", Kind{GroupVersionKind: schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}, Namespaced: true}},
		{"serving.knative.dev/v1", "ksvc", Kind{GroupVersionKind: schema.GroupVersionKind{Group: "serving.knative.dev", Version: "v1", Kind: "Service"}, Namespaced: true}},
		// A served version is kept.
		{"autoscaling/v1", "hpa", Kind{GroupVersionKind: schema.GroupVersionKind{Group: "autoscaling", Version: "v1", Kind: "HorizontalPodAutoscaler"}, Namespaced: true}},
		{"rbac.authorization.k8s.io/v1", "clusterrolebinding", Kind{GroupVersionKind: schema.GroupVersionKind{Group: "rbac.authorization.k8s.io", Version: "v1", Kind: "ClusterRoleBinding"}}},
	} {
		t.Run(tc.apiVersion+"/"+tc.kind, func(t *testing.T) {
			got, err := r.Resolve(context.Background(), tc.apiVersion, tc.kind)
			if err != nil {
				t.Fatalf("Resolve: %v", err)
			}
			if got != tc.want {
				t.Errorf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

func TestResolveUnknown(t *testing.T) {
	r, _, _ := newTestResolver(t)
	for _, tc := range []struct {
		apiVersion, kind, suggestion string
	}{
		{"apps/v1", "Deploymnet", `apiVersion "apps/v1", kind "Deployment"`},
		// The kind exists, in another group than the apiVersion's.
		{"v1", "Deployment", `apiVersion "apps/v1", kind "Deployment"`},
		{"v1", "deploy", `apiVersion "apps/v1", kind "Deployment"`},
		{"example.com/v1", "Widget", ""},
		{"apps/v1", "Pod", `apiVersion "v1", kind "Pod"`},
	} {
		t.Run(tc.apiVersion+"/"+tc.kind, func(t *testing.T) {
			_, err := r.Resolve(context.Background(), tc.apiVersion, tc.kind)
			var unknown *UnknownKindError
			if !errors.As(err, &unknown) {
				t.Fatalf("got %v, want an UnknownKindError", err)
			}
			if unknown.Suggestion != tc.suggestion {
				t.Errorf("suggestion %q, want %q", unknown.Suggestion, tc.suggestion)
			}
			if !strings.Contains(err.Error(), `"`+tc.kind+`"`) {
				t.Errorf("%q does not name the kind sent", err)
			}
		})
	}
}

// A resolved spelling costs no discovery read, however often it is sent.
func TestResolveCachedReadsNothing(t *testing.T) {
	r, client, _ := newTestResolver(t)
	ctx := context.Background()
	for _, kind := range []string{"Deployment", "deploy", "deployments"} {
		if _, err := r.Resolve(ctx, "apps/v1", kind); err != nil {
			t.Fatal(err)
		}
	}
	before := len(client.Actions())
	for range 1000 {
		for _, kind := range []string{"Deployment", "deploy", "deployments"} {
			if _, err := r.Resolve(ctx, "apps/v1", kind); err != nil {
				t.Fatal(err)
			}
		}
	}
	if after := len(client.Actions()); after != before {
		t.Errorf("3000 resolutions of known spellings made %d discovery requests, want 0", after-before)
	}
}

// A kind served after the last refresh is found by a miss once
// MinRefreshInterval has passed; misses within it read nothing.
func TestResolveRefreshesOnMissRateLimited(t *testing.T) {
	r, client, clock := newTestResolver(t)
	ctx := context.Background()
	client.Resources = append(client.Resources, &metav1.APIResourceList{GroupVersion: "example.com/v1", APIResources: []metav1.APIResource{
		{Name: "widgets", SingularName: "widget", Namespaced: true, Kind: "Widget", ShortNames: []string{"wd"}},
	}})
	before := len(client.Actions())
	for i := range 100 {
		var unknown *UnknownKindError
		if _, err := r.Resolve(ctx, "example.com/v1", "Made"+strings.Repeat("Up", i+1)); !errors.As(err, &unknown) {
			t.Fatalf("got %v, want an UnknownKindError", err)
		}
	}
	if _, err := r.Resolve(ctx, "example.com/v1", "widget"); err == nil {
		t.Fatal("a kind served after the refresh was found within MinRefreshInterval of it: the refresh is not rate-limited")
	}
	if after := len(client.Actions()); after != before {
		t.Errorf("misses within MinRefreshInterval made %d discovery requests, want 0", after-before)
	}
	clock.step(MinRefreshInterval)
	got, err := r.Resolve(ctx, "example.com/v1", "wd")
	if err != nil {
		t.Fatalf("after MinRefreshInterval: %v", err)
	}
	if want := (schema.GroupVersionKind{Group: "example.com", Version: "v1", Kind: "Widget"}); got.GroupVersionKind != want || !got.Namespaced {
		t.Errorf("got %+v, want namespaced %v", got, want)
	}
}

// failingGroup is discovery in which one group version fails, as an
// aggregated API that is down does.
type failingGroup struct {
	*fakediscovery.FakeDiscovery
	groupVersion string
}

func (f failingGroup) ServerResourcesForGroupVersion(gv string) (*metav1.APIResourceList, error) {
	return f.ServerResourcesForGroupVersionWithContext(context.Background(), gv)
}

func (f failingGroup) ServerResourcesForGroupVersionWithContext(ctx context.Context, gv string) (*metav1.APIResourceList, error) {
	if gv == f.groupVersion {
		return nil, apierrors.NewServiceUnavailable("the APIService is not available")
	}
	return f.FakeDiscovery.ServerResourcesForGroupVersionWithContext(ctx, gv)
}

// A group whose discovery failed (an aggregated API that is down) makes its
// kinds unavailable, not unknown, and leaves the others resolvable.
func TestResolvePartialDiscovery(t *testing.T) {
	fake := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{Resources: append(clusterResources(), &metav1.APIResourceList{
		GroupVersion: "metrics.k8s.io/v1beta1",
		APIResources: []metav1.APIResource{{Name: "pods", SingularName: "pod", Namespaced: true, Kind: "PodMetrics"}},
	})}}
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	r := newResolver(failingGroup{fake, "metrics.k8s.io/v1beta1"}, MinRefreshInterval, clock.now)
	ctx := context.Background()
	if !r.Refresh(ctx) || !r.HasRead() {
		t.Fatal("a refresh with one failed group was not usable")
	}
	if got, err := r.Resolve(ctx, "apps/v1", "deploy"); err != nil || got.Kind != "Deployment" {
		t.Errorf("a kind of a healthy group: got %+v, %v", got, err)
	}
	if _, err := r.Resolve(ctx, "metrics.k8s.io/v1beta1", "PodMetrics"); !errors.Is(err, ErrDiscoveryUnavailable) {
		t.Errorf("a kind of the failed group: got %v, want ErrDiscoveryUnavailable", err)
	}
}

// Before discovery was ever read, nothing is resolved and nothing is
// unknown: the answer is retryable.
func TestResolveBeforeDiscovery(t *testing.T) {
	fake := &fakediscovery.FakeDiscovery{Fake: &clienttesting.Fake{}}
	fake.AddReactor("get", "group", func(clienttesting.Action) (bool, runtime.Object, error) {
		return true, nil, apierrors.NewServiceUnavailable("starting")
	})
	clock := &fakeClock{t: time.Unix(1_800_000_000, 0)}
	r := newResolver(fake, MinRefreshInterval, clock.now)
	if _, err := r.Resolve(context.Background(), "apps/v1", "Deployment"); !errors.Is(err, ErrDiscoveryUnavailable) {
		t.Errorf("got %v, want ErrDiscoveryUnavailable", err)
	}
	if r.HasRead() {
		t.Error("HasRead after a failed read")
	}
}
