package signal

import (
	"context"

	"k8s.io/apiserver/pkg/authorization/authorizer"

	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/owner"
)

// Deduplicator counts a signal on its RemediationRequest; *dedup.Engine is
// the implementation.
type Deduplicator interface {
	Submit(ctx context.Context, s dedup.Signal) (*dedup.Result, error)
}

// OwnerResolver resolves a signal's target to its top-level controller;
// *owner.Resolver is the implementation. It never fails: a failed resolution
// answers with the target itself and a fallback reason.
type OwnerResolver interface {
	Resolve(ctx context.Context, target owner.Reference) owner.Result
}

// Authorizer decides whether a user may do something; the server's
// delegated authorizer (SubjectAccessReview through kube-apiserver, with
// cached decisions) is the implementation.
type Authorizer interface {
	Authorize(ctx context.Context, a authorizer.Attributes) (authorizer.Decision, string, error)
}

// NamespaceGate says in which namespaces RemediationRequests may be opened;
// *ManagedNamespaces is the implementation.
type NamespaceGate interface {
	// Managed reports whether namespace is one; an error means the gate
	// cannot tell yet.
	Managed(namespace string) (bool, error)
	// String describes the gate for messages, e.g. the label selector.
	String() string
}
