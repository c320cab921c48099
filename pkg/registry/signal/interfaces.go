package signal

import (
	"context"

	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
)

// Deduplicator counts a signal on its RemediationRequest; *dedup.Engine is
// the implementation.
type Deduplicator interface {
	Submit(ctx context.Context, s dedup.Signal) (*dedup.Result, error)
}
