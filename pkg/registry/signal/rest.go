// Package signal is the REST face of the create-only signals resource, in
// the shape of kube-apiserver's TokenReview storage: type check, validation,
// the target resolved through discovery, the sender's gate, admission,
// then the work (the key policy, and a
// Deduplicator that counts), and the answer.
package signal

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/util/dryrun"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	"github.com/signal-apiserver/signal-apiserver/apis/signals/validation"
	"github.com/signal-apiserver/signal-apiserver/pkg/apistatus"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/registry"
	"github.com/signal-apiserver/signal-apiserver/pkg/signalkey"
)

// Deduplicator counts a signal on its RemediationRequest; *dedup.Engine is
// the implementation.
type Deduplicator interface {
	Submit(ctx context.Context, s dedup.Signal) (*dedup.Result, error)
}

// REST is the storage of signals: create-only, nothing stored.
type REST struct {
	keys    *signalkey.Policy
	gate    *registry.Gate
	dedup   Deduplicator
	sources sources
	answers answers
}

var (
	_ rest.Storage              = &REST{}
	_ rest.Creater              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.SingularNameProvider = &REST{}
	_ rest.StorageMetadata      = &REST{}
)

// NewREST returns the signals storage.
func NewREST(keys *signalkey.Policy, gate *registry.Gate, d Deduplicator) *REST {
	return &REST{keys: keys, gate: gate, dedup: d, answers: newAnswers()}
}

// New returns an empty Signal.
func (r *REST) New() runtime.Object { return &signals.Signal{} }

// Destroy releases nothing: the storage holds no resources.
func (r *REST) Destroy() {}

// NamespaceScoped is false: a Signal names its target's namespace itself.
func (r *REST) NamespaceScoped() bool { return false }

// GetSingularName is used by kubectl and discovery.
func (r *REST) GetSingularName() string { return "signal" }

// ProducesMIMETypes adds nothing to the defaults.
func (r *REST) ProducesMIMETypes(string) []string { return nil }

// ProducesObject tells OpenAPI that creating a Signal answers with a
// RemediationRequest.
func (r *REST) ProducesObject(verb string) any {
	if verb == "POST" {
		return remediationv1alpha1.RemediationRequest{}
	}
	return nil
}

// Create counts a Signal and answers with the RemediationRequest it was
// counted on.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	sig, ok := obj.(*signals.Signal)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not a Signal: %T", obj))
	}
	began := time.Now()
	dryRun := dryrun.IsDryRun(options.DryRun)
	res, err := r.create(ctx, sig, createValidation, dryRun)
	r.observe(sig.Spec.Source, began, res, err)
	switch {
	case err != nil:
		return nil, err
	case dryRun:
		// Computed for this signal alone: nothing to share.
		return annotated(res), nil
	}
	return r.answers.of(res), nil
}

func (r *REST) create(ctx context.Context, sig *signals.Signal, createValidation rest.ValidateObjectFunc, dryRun bool) (*dedup.Result, error) {
	// The create handler does this to the metadata it can reach; a Signal's
	// is out of its reach (apis/signals/types.go), so it is done here,
	// before admission validates the Signal. Signals are cluster-scoped:
	// the namespace is cleared, never refused.
	rest.WipeObjectMetaSystemFields(&sig.ObjectMeta)
	if err := rest.EnsureObjectNamespaceMatchesRequestNamespace(metav1.NamespaceNone, &sig.ObjectMeta); err != nil {
		return nil, err
	}
	if errs := validation.ValidateSignal(sig); len(errs) > 0 {
		return nil, apierrors.NewInvalid(signals.Kind("Signal"), sig.ObjectMeta.Name, errs)
	}
	target, errs, err := r.keys.Target(ctx, sig.Spec.Target, field.NewPath("spec", "target"))
	switch {
	case len(errs) > 0:
		return nil, apierrors.NewInvalid(signals.Kind("Signal"), sig.ObjectMeta.Name, errs)
	case err != nil:
		return nil, apistatus.ServiceUnavailable(err)
	}
	if err := r.gate.Check(ctx, r.keys.Namespace(target), target); err != nil {
		return nil, err
	}
	if createValidation != nil {
		if err := createValidation(ctx, sig); err != nil {
			return nil, err
		}
	}
	s, err := r.keys.Key(ctx, sig, target, dryRun)
	if err != nil {
		return nil, registry.APIError(err, s)
	}
	res, err := r.dedup.Submit(ctx, s)
	if err != nil {
		return nil, registry.APIError(err, s)
	}
	return res, nil
}
