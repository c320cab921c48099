package signal

import (
	"context"

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
