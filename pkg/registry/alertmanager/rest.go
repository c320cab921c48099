// Package alertmanager is the REST face of the create-only
// alertmanagernotifications resource: an Alertmanager webhook notification
// is validated whole, then every alert is recorded as a Signal through the
// same conversion and engine as the signals resource. The batch is answered
// 2xx only if every alert was recorded, else 5xx so Alertmanager retries;
// each alert carries an idempotency key, so a retry counts nothing twice.
package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/util/dryrun"
	"k8s.io/klog/v2"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	"github.com/signal-apiserver/signal-apiserver/apis/signals/validation"
	"github.com/signal-apiserver/signal-apiserver/pkg/apistatus"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/registry"
	"github.com/signal-apiserver/signal-apiserver/pkg/signalkey"
)

// Source is the spec.source of the signals made from alerts.
const Source = "alertmanager"

// OutcomeNoActive is the outcome of a resolved alert with no active
// RemediationRequest: nothing to resolve, and nothing to retry.
const OutcomeNoActive = "NoActive"

// OutcomeRejected is the outcome of an alert that cannot be recorded as it
// is (a 4xx for a Signal of its own): a resend would not change it, so it
// does not fail the notification; the result's reason and message say why.
const OutcomeRejected = "Rejected"

// The target of an alert that no target rule matches.
const (
	FallbackAPIVersion = "signals.remediation.io/v1"
	FallbackKind       = "Alert"
)

// maxConcurrentAlerts bounds the alerts of one batch submitted at once.
const maxConcurrentAlerts = 32

// Deduplicator counts a signal on its RemediationRequest; *dedup.Engine is
// the implementation.
type Deduplicator interface {
	Submit(ctx context.Context, s dedup.Signal) (*dedup.Result, error)
}

// REST is the storage of Alertmanager notifications: create-only, nothing
// stored.
type REST struct {
	keys  *signalkey.Policy
	gate  *registry.Gate
	dedup Deduplicator
	rules []TargetRule
}

var (
	_ rest.Storage              = &REST{}
	_ rest.Creater              = &REST{}
	_ rest.Scoper               = &REST{}
	_ rest.SingularNameProvider = &REST{}
)

// NewREST returns the storage; rules map alert labels to targets. Each
// alert goes through keys, gate and d as a Signal of its own would.
func NewREST(keys *signalkey.Policy, gate *registry.Gate, d Deduplicator, rules []TargetRule) *REST {
	return &REST{keys: keys, gate: gate, dedup: d, rules: rules}
}

// New returns an empty AlertmanagerNotification.
func (r *REST) New() runtime.Object { return &signals.AlertmanagerNotification{} }

// Destroy releases nothing: the storage holds no resources.
func (r *REST) Destroy() {}

// NamespaceScoped is false: alerts name their namespaces in labels.
func (r *REST) NamespaceScoped() bool { return false }

// GetSingularName is used by kubectl and discovery.
func (r *REST) GetSingularName() string { return "alertmanagernotification" }

// Create validates the whole notification, runs admission once for it, and
// records every alert. It answers with the notification's group fields and
// one result per alert, or with a 5xx error if any alert was not recorded.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	n, ok := obj.(*signals.AlertmanagerNotification)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not an AlertmanagerNotification: %T", obj))
	}
	out, err := r.create(ctx, n, createValidation, dryrun.IsDryRun(options.DryRun))
	notificationsTotal.WithLabelValues(strconv.Itoa(int(apistatus.Code(err)))).Inc()
	return out, err
}

func (r *REST) create(ctx context.Context, n *signals.AlertmanagerNotification, createValidation rest.ValidateObjectFunc, dryRun bool) (runtime.Object, error) {
	sigs, errs := r.toSignals(n)
	if len(errs) > 0 {
		alertsTotal.WithLabelValues("rejected").Add(float64(len(n.Alerts)))
		return nil, apierrors.NewInvalid(signals.Kind("AlertmanagerNotification"), n.Name, errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, n); err != nil {
			alertsTotal.WithLabelValues("rejected").Add(float64(len(n.Alerts)))
			return nil, err
		}
	}

	results := make([]signals.AlertResult, len(sigs))
	failures := make([]error, len(sigs))
	var g errgroup.Group
	g.SetLimit(maxConcurrentAlerts)
	for i := range sigs {
		g.Go(func() error {
			results[i], failures[i] = r.record(ctx, &sigs[i], dryRun)
			results[i].Index = int32(i)
			results[i].Fingerprint = n.Alerts[i].Fingerprint
			return nil
		})
	}
	_ = g.Wait()

	if err := batchError(failures); err != nil {
		alertsTotal.WithLabelValues("failed").Add(float64(len(sigs)))
		return nil, err
	}
	for _, res := range results {
		alertsTotal.WithLabelValues(strings.ToLower(res.Outcome)).Inc()
	}
	out := n.DeepCopy()
	out.Alerts = nil
	out.Results = results
	return out, nil
}

// record submits one alert's signal. An alert that its own Signal would
// get a 4xx for (a namespace the sender may not signal about among them) is
// Rejected in its result; any other failure is the batch's.
func (r *REST) record(ctx context.Context, sig *signals.Signal, dryRun bool) (signals.AlertResult, error) {
	res, err := r.submit(ctx, sig, dryRun)
	var status apierrors.APIStatus
	if class := apistatus.Of(err); (class == apistatus.Denied || class == apistatus.Rejected) && errors.As(err, &status) {
		return signals.AlertResult{Outcome: OutcomeRejected, Reason: status.Status().Reason, Message: status.Status().Message}, nil
	}
	return res, err
}

// submit lets one alert's signal through the gate, keys and counts it, as
// the signals storage does; its errors are API errors.
func (r *REST) submit(ctx context.Context, sig *signals.Signal, dryRun bool) (signals.AlertResult, error) {
	target := sig.Spec.Target
	if !isFallback(target) {
		var errs field.ErrorList
		var err error
		target, errs, err = r.keys.Target(ctx, target, field.NewPath("spec", "target"))
		switch {
		case len(errs) > 0:
			return signals.AlertResult{}, apierrors.NewInvalid(signals.Kind("Signal"), "", errs)
		case err != nil:
			return signals.AlertResult{}, apistatus.ServiceUnavailable(err)
		}
	}
	if err := r.gate.Check(ctx, r.keys.Namespace(target), target); err != nil {
		return signals.AlertResult{}, err
	}
	s, err := r.keys.Key(ctx, sig, target, dryRun)
	if err != nil {
		return signals.AlertResult{}, registry.APIError(err, s)
	}
	res, err := r.dedup.Submit(ctx, s)
	switch {
	case errors.Is(err, dedup.ErrNoActiveRemediation):
		return signals.AlertResult{Outcome: OutcomeNoActive}, nil
	case err != nil:
		return signals.AlertResult{}, registry.APIError(err, s)
	}
	rr := res.RemediationRequest
	return signals.AlertResult{Outcome: string(res.Outcome), Namespace: rr.Namespace, Name: rr.Name}, nil
}

// batchError is nil if every alert was recorded or rejected. Otherwise it
// is a 5xx, so that Alertmanager retries the batch: 503 with Retry-After if
// every failure is worth retrying, 500 if one is the server's own failure.
func batchError(failures []error) error {
	var msgs []string
	retryable := true
	for i, err := range failures {
		if err == nil {
			continue
		}
		msgs = append(msgs, fmt.Sprintf("alerts[%d]: %v", i, err))
		if apistatus.Of(err) != apistatus.Retryable {
			retryable = false
		}
	}
	if len(msgs) == 0 {
		return nil
	}
	klog.InfoS("Alertmanager notification not recorded whole; answering 5xx for a retry", "failed", len(msgs), "alerts", len(failures), "first", msgs[0])
	msg := fmt.Sprintf("%d of %d alerts were not recorded; the notification must be retried (a retry counts no alert twice): %s",
		len(msgs), len(failures), strings.Join(msgs, "; "))
	if !retryable {
		return apierrors.NewInternalError(errors.New(msg))
	}
	return apistatus.ServiceUnavailable(errors.New(msg))
}

// toSignals validates the notification and converts each alert into a
// Signal. Errors carry the paths of the notification's fields, in the
// order of its alerts.
func (r *REST) toSignals(n *signals.AlertmanagerNotification) ([]signals.Signal, field.ErrorList) {
	errs := validation.ValidateAlertmanagerNotification(n)
	sigs := make([]signals.Signal, len(n.Alerts))
	for i := range n.Alerts {
		p := field.NewPath("alerts").Index(i)
		var targetLabel string
		sigs[i], targetLabel = r.toSignal(&n.Alerts[i])
		for _, e := range validation.ValidateSignal(&sigs[i]) {
			e.Field = alertPath(p, e.Field, targetLabel)
			errs = append(errs, e)
		}
	}
	slices.SortStableFunc(errs, func(a, b *field.Error) int { return alertIndex(a.Field) - alertIndex(b.Field) })
	return sigs, errs
}

// alertIndex is i for a path under alerts[i], -1 for the notification's
// own fields.
func alertIndex(path string) int {
	rest, ok := strings.CutPrefix(path, "alerts[")
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(rest[:max(strings.IndexByte(rest, ']'), 0)])
	if err != nil {
		return -1
	}
	return i
}

// toSignal converts one alert; it also returns the label the target came
// from, empty if none.
func (r *REST) toSignal(a *signals.Alert) (signals.Signal, string) {
	status := signals.SignalStatusFiring
	if a.Status == "resolved" {
		status = signals.SignalStatusResolved
	}
	startsAt := a.StartsAt
	spec := signals.SignalSpec{
		Source:         Source,
		Name:           a.Labels["alertname"],
		Severity:       a.Labels["severity"],
		Description:    validation.Truncate(firstOf(a.Annotations, "description", "summary", "message"), validation.MaxDescriptionLength),
		Status:         status,
		Labels:         bounded(a.Labels, validation.MaxLabelsSize),
		Annotations:    bounded(a.Annotations, validation.MaxAnnotationsSize),
		StartsAt:       &startsAt,
		IdempotencyKey: "alertmanager/" + a.Fingerprint + "/" + a.StartsAt.UTC().Format(time.RFC3339Nano),
	}
	if spec.Name == "" {
		spec.Name = "UnnamedAlert"
	}
	t, label, ok := target(r.rules, a.Labels)
	if !ok {
		// About no object the rules know (e.g. Watchdog, or an alert on
		// the control plane): the alert series itself is the target, and
		// Alertmanager's fingerprint of it the deduplication key, so each
		// series has its own RemediationRequest in the cluster-scoped
		// namespace.
		t = signals.TargetReference{APIVersion: FallbackAPIVersion, Kind: FallbackKind, Name: a.Fingerprint}
		spec.Fingerprint = "alertmanager/" + a.Fingerprint
	}
	spec.Target = t
	return signals.Signal{Spec: spec}, label
}

// alertPath maps the path of a Signal field to the alert field it came from.
func alertPath(p *field.Path, signalField, targetLabel string) string {
	labels, annotations := p.Child("labels"), p.Child("annotations")
	switch {
	case signalField == "spec.name":
		return labels.Key("alertname").String()
	case signalField == "spec.severity":
		return labels.Key("severity").String()
	case strings.HasPrefix(signalField, "spec.target"):
		if targetLabel == "" {
			return labels.String()
		}
		return labels.Key(targetLabel).String()
	case strings.HasPrefix(signalField, "spec.labels"):
		return labels.String() + strings.TrimPrefix(signalField, "spec.labels")
	case strings.HasPrefix(signalField, "spec.annotations"), signalField == "spec.description":
		return annotations.String() + strings.TrimPrefix(signalField, "spec.annotations")
	case signalField == "spec.idempotencyKey", signalField == "spec.fingerprint":
		return p.Child("fingerprint").String()
	case signalField == "spec.startsAt":
		return p.Child("startsAt").String()
	}
	return p.String() + "." + strings.TrimPrefix(signalField, "spec.")
}

// bounded copies m, in key order, leaving out the entries that would take
// it past the validation bounds: an alert is recorded with the labels that
// fit rather than refused for the ones that do not.
func bounded(m map[string]string, maxSize int) map[string]string {
	if len(m) == 0 {
		return nil
	}
	out := make(map[string]string, min(len(m), validation.MaxMapEntries))
	size := 0
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if len(out) == validation.MaxMapEntries || size+len(k)+len(v) > maxSize {
			continue
		}
		out[k] = v
		size += len(k) + len(v)
	}
	return out
}

func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}
