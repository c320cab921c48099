package owner

import (
	"context"
	"errors"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	metadatafake "k8s.io/client-go/metadata/fake"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

const ns = "shop"

func object(apiVersion, kind, name string, uid types.UID, controller *metav1.OwnerReference) *metav1.PartialObjectMetadata {
	o := &metav1.PartialObjectMetadata{
		TypeMeta:   metav1.TypeMeta{APIVersion: apiVersion, Kind: kind},
		ObjectMeta: metav1.ObjectMeta{Namespace: ns, Name: name, UID: uid},
	}
	if controller != nil {
		o.OwnerReferences = []metav1.OwnerReference{*controller}
	}
	return o
}

func controllerRef(apiVersion, kind, name string, uid types.UID) *metav1.OwnerReference {
	return &metav1.OwnerReference{APIVersion: apiVersion, Kind: kind, Name: name, UID: uid, Controller: new(true)}
}

func newTestResolver(objects ...runtime.Object) (*Resolver, *metadatafake.FakeMetadataClient) {
	scheme := metadatafake.NewTestScheme()
	for _, gvk := range []schema.GroupVersionKind{
		{Version: "v1", Kind: "Pod"},
		{Group: "apps", Version: "v1", Kind: "ReplicaSet"},
		{Group: "batch", Version: "v1", Kind: "Job"},
	} {
		scheme.AddKnownTypeWithName(gvk, &metav1.PartialObjectMetadata{})
	}
	client := metadatafake.NewSimpleMetadataClient(scheme, objects...)
	return NewResolver(client, Options{TTL: time.Minute, CacheSize: 100, Timeout: time.Second}), client
}

func TestResolve(t *testing.T) {
	objects := []runtime.Object{
		object("apps/v1", "ReplicaSet", "web-5d8f", "rs-uid", controllerRef("apps/v1", "Deployment", "web", "deploy-uid")),
		object("v1", "Pod", "web-5d8f-a1", "pod-uid", controllerRef("apps/v1", "ReplicaSet", "web-5d8f", "rs-uid")),
		object("v1", "Pod", "db-0", "db0-uid", controllerRef("apps/v1", "StatefulSet", "db", "sts-uid")),
		object("v1", "Pod", "agent-x", "agent-uid", controllerRef("apps/v1", "DaemonSet", "agent", "ds-uid")),
		object("batch/v1", "Job", "backup-1", "job-uid", controllerRef("batch/v1", "CronJob", "backup", "cron-uid")),
		object("v1", "Pod", "backup-1-x", "jobpod-uid", controllerRef("batch/v1", "Job", "backup-1", "job-uid")),
		object("v1", "Pod", "bare", "bare-uid", nil),
		object("v1", "Pod", "kube-apiserver-node1", "mirror-uid", controllerRef("v1", "Node", "node1", "node-uid")),
		object("v1", "Pod", "orphan", "orphan-uid", controllerRef("apps/v1", "ReplicaSet", "gone", "gone-uid")),
		object("v1", "Pod", "impostor", "imp-uid", controllerRef("apps/v1", "ReplicaSet", "web-5d8f", "old-rs-uid")),
		object("apps/v1", "ReplicaSet", "rollout-abc", "rsr-uid", controllerRef("argoproj.io/v1alpha1", "Rollout", "rollout", "ro-uid")),
	}
	ref := func(apiVersion, kind, name string) remediationv1alpha1.ResourceReference {
		return remediationv1alpha1.ResourceReference{APIVersion: apiVersion, Kind: kind, Namespace: ns, Name: name}
	}
	for _, tc := range []struct {
		name     string
		target   remediationv1alpha1.ResourceReference
		uid      types.UID
		want     remediationv1alpha1.ResourceReference
		reason   string
		message  string
		err      string
		wantGets int
	}{
		{name: "Pod of a Deployment", target: ref("v1", "Pod", "web-5d8f-a1"), want: ref("apps/v1", "Deployment", "web"), wantGets: 2},
		{name: "ReplicaSet of a Deployment", target: ref("apps/v1", "ReplicaSet", "web-5d8f"), want: ref("apps/v1", "Deployment", "web"), wantGets: 1},
		{name: "Pod of a StatefulSet", target: ref("v1", "Pod", "db-0"), want: ref("apps/v1", "StatefulSet", "db"), wantGets: 1},
		{name: "Pod of a DaemonSet", target: ref("v1", "Pod", "agent-x"), want: ref("apps/v1", "DaemonSet", "agent"), wantGets: 1},
		{name: "Pod of a Job of a CronJob", target: ref("v1", "Pod", "backup-1-x"), want: ref("batch/v1", "CronJob", "backup"), wantGets: 2},
		{name: "Pod without owner", target: ref("v1", "Pod", "bare"), want: ref("v1", "Pod", "bare"), wantGets: 1},
		{name: "mirror Pod owned by a Node", target: ref("v1", "Pod", "kube-apiserver-node1"), want: ref("v1", "Pod", "kube-apiserver-node1"), wantGets: 1},
		{name: "ReplicaSet of an unknown controller", target: ref("apps/v1", "ReplicaSet", "rollout-abc"), want: ref("apps/v1", "ReplicaSet", "rollout-abc"), wantGets: 1},
		{name: "Deployment is not read", target: ref("apps/v1", "Deployment", "web"), want: ref("apps/v1", "Deployment", "web")},
		{name: "Node is not read", target: remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Node", Name: "node1"}, want: remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Node", Name: "node1"}},
		{name: "Pod of another group is not read", target: ref("example.com/v1", "Pod", "web-5d8f-a1"), want: ref("example.com/v1", "Pod", "web-5d8f-a1")},
		{
			name: "missing Pod", target: ref("v1", "Pod", "gone-1"), want: ref("v1", "Pod", "gone-1"), wantGets: 1,
			reason: ReasonNotFound, message: "Pod shop/gone-1 not found",
		},
		{
			name: "missing owner", target: ref("v1", "Pod", "orphan"), want: ref("v1", "Pod", "orphan"), wantGets: 2,
			reason: ReasonNotFound, message: "ReplicaSet shop/gone not found",
		},
		{name: "Pod of the UID given", target: ref("v1", "Pod", "web-5d8f-a1"), uid: "pod-uid", want: ref("apps/v1", "Deployment", "web"), wantGets: 2},
		{
			name: "Pod recreated since the UID given", target: ref("v1", "Pod", "db-0"), uid: "old-db0-uid", want: ref("v1", "Pod", "db-0"), wantGets: 1,
			err: "Pod shop/db-0 has UID db0-uid, not old-db0-uid: the object the signal is about was deleted and its name reused",
		},
		{
			name: "missing Pod with a UID", target: ref("v1", "Pod", "gone-1"), uid: "gone-uid", want: ref("v1", "Pod", "gone-1"), wantGets: 1,
			reason: ReasonNotFound, message: "Pod shop/gone-1 not found",
		},
		{name: "Deployment with a UID is not read", target: ref("apps/v1", "Deployment", "web"), uid: "any-uid", want: ref("apps/v1", "Deployment", "web")},
		{
			name: "owner's UID is not the target's", target: ref("v1", "Pod", "impostor"), uid: "imp-uid", want: ref("v1", "Pod", "impostor"), wantGets: 2,
			reason: ReasonUIDMismatch, message: "ReplicaSet shop/web-5d8f has UID rs-uid, its dependent's ownerReference names old-rs-uid",
		},
		{
			name: "recreated owner", target: ref("v1", "Pod", "impostor"), want: ref("v1", "Pod", "impostor"), wantGets: 2,
			reason: ReasonUIDMismatch, message: "ReplicaSet shop/web-5d8f has UID rs-uid, its dependent's ownerReference names old-rs-uid",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, client := newTestResolver(objects...)
			got := r.Resolve(context.Background(), tc.target, tc.uid)
			var gotErr string
			if got.Err != nil {
				gotErr = got.Err.Error()
			}
			if gotErr != tc.err {
				t.Errorf("Resolve(%v, %q) error %q, want %q", tc.target, tc.uid, gotErr, tc.err)
			}
			got.Err = nil
			want := Result{Target: tc.want, FallbackReason: tc.reason, Message: tc.message}
			if got != want {
				t.Errorf("Resolve(%v, %q) = %+v, want %+v", tc.target, tc.uid, got, want)
			}
			if gets := len(client.Actions()); gets != tc.wantGets {
				t.Errorf("%d GETs, want %d", gets, tc.wantGets)
			}
		})
	}
}

func TestResolveCaches(t *testing.T) {
	deployment := remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: ns, Name: "web"}
	rs := object("apps/v1", "ReplicaSet", "web-5d8f", "rs-uid", controllerRef("apps/v1", "Deployment", "web", "deploy-uid"))
	r, client := newTestResolver(
		rs,
		object("v1", "Pod", "web-5d8f-a1", "pod1-uid", controllerRef("apps/v1", "ReplicaSet", "web-5d8f", "rs-uid")),
		object("v1", "Pod", "web-5d8f-b2", "pod2-uid", controllerRef("apps/v1", "ReplicaSet", "web-5d8f", "rs-uid")),
	)
	ctx := context.Background()
	resolve := func(pod string, wantGets int) {
		t.Helper()
		got := r.Resolve(ctx, remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: pod}, "")
		if got != (Result{Target: deployment}) {
			t.Errorf("Resolve(%s) = %+v, want %v", pod, got, deployment)
		}
		if gets := len(client.Actions()); gets != wantGets {
			t.Errorf("after %s: %d GETs in all, want %d", pod, gets, wantGets)
		}
	}
	resolve("web-5d8f-a1", 2)
	resolve("web-5d8f-a1", 2) // both cached
	resolve("web-5d8f-b2", 3) // the ReplicaSet is cached

	// The ReplicaSet is recreated under the same name, with a new Pod: the
	// cached ReplicaSet has the old UID and is read again.
	gvr := schema.GroupVersionResource{Group: "apps", Version: "v1", Resource: "replicasets"}
	if err := client.Tracker().Delete(gvr, ns, "web-5d8f"); err != nil {
		t.Fatal(err)
	}
	if err := client.Tracker().Add(object("apps/v1", "ReplicaSet", "web-5d8f", "rs-uid-2", controllerRef("apps/v1", "Deployment", "web", "deploy-uid"))); err != nil {
		t.Fatal(err)
	}
	if err := client.Tracker().Add(object("v1", "Pod", "web-5d8f-c3", "pod3-uid", controllerRef("apps/v1", "ReplicaSet", "web-5d8f", "rs-uid-2"))); err != nil {
		t.Fatal(err)
	}
	before := len(client.Actions())
	resolve("web-5d8f-c3", before+2)
}

// A Pod deleted and recreated under its name within the TTL: the cached
// entry of the old Pod is read again for the new UID, and the old UID is
// refused.
func TestResolveRecreatedTarget(t *testing.T) {
	statefulSet := remediationv1alpha1.ResourceReference{APIVersion: "apps/v1", Kind: "StatefulSet", Namespace: ns, Name: "db"}
	pod := remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Pod", Namespace: ns, Name: "db-0"}
	podsGVR := schema.GroupVersionResource{Version: "v1", Resource: "pods"}
	r, client := newTestResolver(object("v1", "Pod", "db-0", "old-uid", controllerRef("apps/v1", "StatefulSet", "db", "sts-uid")))
	ctx := context.Background()
	if got := r.Resolve(ctx, pod, "old-uid"); got != (Result{Target: statefulSet}) {
		t.Fatalf("old Pod: %+v, want %v", got, statefulSet)
	}
	if err := client.Resource(podsGVR).Namespace(ns).Delete(ctx, "db-0", metav1.DeleteOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := client.Tracker().Add(object("v1", "Pod", "db-0", "new-uid", controllerRef("apps/v1", "StatefulSet", "db", "sts-uid"))); err != nil {
		t.Fatal(err)
	}
	client.ClearActions()
	if got := r.Resolve(ctx, pod, "new-uid"); got != (Result{Target: statefulSet}) {
		t.Errorf("new Pod: %+v, want %v", got, statefulSet)
	}
	if gets := len(client.Actions()); gets != 1 {
		t.Errorf("new Pod: %d GETs, want 1 (the cached old Pod is read again)", gets)
	}
	got := r.Resolve(ctx, pod, "old-uid")
	var mismatch *TargetUIDMismatchError
	if !errors.As(got.Err, &mismatch) || mismatch.UID != "old-uid" || mismatch.LiveUID != "new-uid" {
		t.Errorf("old UID after the Pod was recreated: %+v, want a TargetUIDMismatchError old-uid/new-uid", got)
	}
	if got := r.Resolve(ctx, pod, ""); got != (Result{Target: statefulSet}) {
		t.Errorf("no UID: %+v, want %v", got, statefulSet)
	}
}
