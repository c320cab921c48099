// Package alertmanager is the REST face of the create-only
// alertmanagernotifications resource: every alert of an Alertmanager webhook
// notification is recorded as a Signal through the same gate, key policy
// and engine as the signals resource, or Rejected alone; alerts about one
// RemediationRequest are applied in body order. The batch is answered
// 2xx only if every alert was recorded, else 5xx so Alertmanager retries;
// each alert carries an idempotency key, so a retry counts nothing twice.
package alertmanager

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"

	"golang.org/x/sync/errgroup"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/util/validation/field"
	"k8s.io/apiserver/pkg/registry/rest"
	"k8s.io/apiserver/pkg/util/dryrun"
	"k8s.io/klog/v2"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
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

// Bounds of one notification. Alerts past MaxAlerts, and alerts about a
// namespace past the first MaxNamespaces distinct ones, are Rejected
// (reason RequestEntityTooLarge) without being authorized or keyed: one
// request costs at most MaxNamespaces SubjectAccessReviews.
const (
	MaxAlerts     = 1000
	MaxNamespaces = 64
)

// Create validates the notification, runs admission once for it, and
// records every alert. It answers with the notification's group fields and
// one result per alert, or with a 5xx error if any alert was not recorded.
func (r *REST) Create(ctx context.Context, obj runtime.Object, createValidation rest.ValidateObjectFunc, options *metav1.CreateOptions) (runtime.Object, error) {
	n, ok := obj.(*signals.AlertmanagerNotification)
	if !ok {
		return nil, apierrors.NewBadRequest(fmt.Sprintf("not an AlertmanagerNotification: %T", obj))
	}
	return r.create(ctx, n, createValidation, dryrun.IsDryRun(options.DryRun))
}

// work is one alert on its way: its Signal, then its key, then its result.
type work struct {
	sig      signals.Signal
	adjusted []string
	ns       string
	key      dedup.Signal
	result   signals.AlertResult
	settled  bool  // result is final: Rejected before submission
	err      error // not recorded: the notification is retried
}

func (w *work) reject(err error) {
	var status apierrors.APIStatus
	if class := apistatus.Of(err); (class == apistatus.Denied || class == apistatus.Rejected) && errors.As(err, &status) {
		w.result = signals.AlertResult{Outcome: OutcomeRejected, Reason: status.Status().Reason, Message: status.Status().Message}
		w.settled = true
		return
	}
	w.err = err
}

func (r *REST) create(ctx context.Context, n *signals.AlertmanagerNotification, createValidation rest.ValidateObjectFunc, dryRun bool) (runtime.Object, error) {
	if errs := validation.ValidateAlertmanagerNotification(n); len(errs) > 0 {
		alertsTotal.WithLabelValues("rejected").Add(float64(len(n.Alerts)))
		return nil, apierrors.NewInvalid(signals.Kind("AlertmanagerNotification"), n.Name, errs)
	}
	if createValidation != nil {
		if err := createValidation(ctx, n); err != nil {
			alertsTotal.WithLabelValues("rejected").Add(float64(len(n.Alerts)))
			return nil, err
		}
	}
	if n.TruncatedAlerts > 0 {
		// Left out by Alertmanager's max_alerts: lost before they came.
		alertsTotal.WithLabelValues("truncated").Add(float64(n.TruncatedAlerts))
	}

	works := r.convert(n)
	r.key(ctx, works, dryRun)
	r.submit(ctx, works)

	results := make([]signals.AlertResult, len(works))
	failures := make([]error, len(works))
	for i := range works {
		results[i], failures[i] = works[i].result, works[i].err
		results[i].Index = int32(i)
		results[i].Fingerprint = n.Alerts[i].Fingerprint
		if len(works[i].adjusted) > 0 && results[i].Outcome != OutcomeRejected {
			results[i].Message = strings.Join(works[i].adjusted, "; ")
		}
	}
	if err := batchError(failures); err != nil {
		alertsTotal.WithLabelValues("failed").Add(float64(len(works)))
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

// convert turns each alert into a Signal, in body order, and rejects those
// that cannot be one, past MaxAlerts or about a namespace past the first
// MaxNamespaces.
func (r *REST) convert(n *signals.AlertmanagerNotification) []work {
	works := make([]work, len(n.Alerts))
	namespaces := map[string]bool{}
	for i := range n.Alerts {
		w := &works[i]
		if i >= MaxAlerts {
			w.reject(tooLarge(fmt.Sprintf("the notification has %d alerts; alerts past the first %d are not recorded (set max_alerts: %d in Alertmanager's webhook_config, and group alerts more finely)", len(n.Alerts), MaxAlerts, MaxAlerts)))
			continue
		}
		p := field.NewPath("alerts").Index(i)
		var errs field.ErrorList
		w.sig, w.adjusted, errs = r.toSignal(&n.Alerts[i], p)
		if len(errs) > 0 {
			w.reject(apierrors.NewInvalid(signals.Kind("Alert"), "", errs))
			w.result.Message = errs.ToAggregate().Error()
			continue
		}
		w.ns = r.keys.Namespace(w.sig.Spec.Target)
		if !namespaces[w.ns] {
			if len(namespaces) == MaxNamespaces {
				w.reject(tooLarge(fmt.Sprintf("the notification names more than %d namespaces; alerts about the later ones, in body order, are not recorded (group alerts by namespace)", MaxNamespaces)))
				continue
			}
			namespaces[w.ns] = true
		}
	}
	return works
}

func tooLarge(msg string) error {
	return apierrors.NewRequestEntityTooLargeError(msg)
}

// key authorizes each distinct namespace once, then lets each alert
// through the gate and keys it, concurrently.
func (r *REST) key(ctx context.Context, works []work, dryRun bool) {
	authorized := map[string]error{}
	var order []string
	for i := range works {
		w := &works[i]
		if w.settled || w.err != nil {
			continue
		}
		if _, ok := authorized[w.ns]; !ok {
			authorized[w.ns] = nil
			order = append(order, w.ns)
		}
	}
	var mu sync.Mutex
	var g errgroup.Group
	g.SetLimit(maxConcurrentAlerts)
	for _, ns := range order {
		g.Go(func() error {
			err := r.gate.Authorize(ctx, ns, ns == r.keys.ClusterScopedNamespace)
			mu.Lock()
			authorized[ns] = err
			mu.Unlock()
			return nil
		})
	}
	_ = g.Wait()
	for i := range works {
		w := &works[i]
		if w.settled || w.err != nil {
			continue
		}
		g.Go(func() error {
			if err := authorized[w.ns]; err != nil {
				w.reject(err)
				return nil
			}
			target := w.sig.Spec.Target
			if !isFallback(target) {
				var errs field.ErrorList
				var err error
				target, errs, err = r.keys.Target(ctx, target, field.NewPath("spec", "target"))
				switch {
				case len(errs) > 0:
					w.reject(apierrors.NewInvalid(signals.Kind("Signal"), "", errs))
					return nil
				case err != nil:
					w.reject(apistatus.ServiceUnavailable(err))
					return nil
				}
			}
			if err := r.gate.CheckManaged(w.ns, target); err != nil {
				w.reject(err)
				return nil
			}
			s, err := r.keys.Key(ctx, &w.sig, target, dryRun)
			if err != nil {
				w.reject(registry.APIError(err, s))
				return nil
			}
			if v := s.Annotations[signalsv1.AnnotationFiringTimeClamped]; v != "" {
				w.adjusted = append(w.adjusted, "startsAt: "+v)
			}
			if len(w.adjusted) > 0 {
				s.Annotations = maps.Clone(s.Annotations)
				if s.Annotations == nil {
					s.Annotations = map[string]string{}
				}
				s.Annotations[signalsv1.AnnotationAlertAdjusted] = validation.Truncate(strings.Join(w.adjusted, "; "), 4096)
			}
			w.key = s
			return nil
		})
	}
	_ = g.Wait()
}

// submit counts the keyed alerts. Alerts about one RemediationRequest
// (namespace and fingerprint) are applied in body order: each run of
// alerts of the same status waits for the run before it, and the first
// alert of a run is applied before the rest, which are applied together
// (their writes shared). So a payload always opens the same
// RemediationRequests with the same first signal, counts and resolutions.
// Different RemediationRequests are worked on concurrently. A group stops
// at its first failure, so that the retry applies its alerts in order.
func (r *REST) submit(ctx context.Context, works []work) {
	groups := map[string][]*work{}
	var order []string
	for i := range works {
		w := &works[i]
		if w.settled || w.err != nil {
			continue
		}
		id := w.key.Namespace + "/" + w.key.Fingerprint
		if groups[id] == nil {
			order = append(order, id)
		}
		groups[id] = append(groups[id], w)
	}
	slots := make(chan struct{}, maxConcurrentAlerts)
	apply := func(w *work) {
		slots <- struct{}{}
		defer func() { <-slots }()
		w.result, w.err = r.record(ctx, w.key)
	}
	var wg sync.WaitGroup
	for _, id := range order {
		wg.Go(func() {
			group := groups[id]
			for len(group) > 0 {
				run := 1
				for run < len(group) && group[run].key.Resolved == group[0].key.Resolved {
					run++
				}
				apply(group[0])
				failed := group[0].err != nil
				var rest sync.WaitGroup
				for _, w := range group[1:run] {
					if failed {
						w.err = errors.New("not applied: an earlier alert about the same RemediationRequest was not recorded")
						continue
					}
					rest.Go(func() { apply(w) })
				}
				rest.Wait()
				for _, w := range group[:run] {
					failed = failed || w.err != nil
				}
				group = group[run:]
				if failed {
					for _, w := range group {
						w.err = errors.New("not applied: an earlier alert about the same RemediationRequest was not recorded")
					}
					return
				}
			}
		})
	}
	wg.Wait()
}

// record counts one keyed alert. An alert that its own Signal would get a
// 4xx for is Rejected in its result; any other failure is the batch's.
func (r *REST) record(ctx context.Context, s dedup.Signal) (signals.AlertResult, error) {
	res, err := r.dedup.Submit(ctx, s)
	switch {
	case errors.Is(err, dedup.ErrNoActiveRemediation):
		return signals.AlertResult{Outcome: OutcomeNoActive}, nil
	case err != nil:
		w := work{}
		w.reject(registry.APIError(err, s))
		return w.result, w.err
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

// toSignal converts one alert at path p, cutting or leaving out what does
// not fit a Signal (adjusted says what), and returns the problems no
// cutting mends, with the alert's field paths.
func (r *REST) toSignal(a *signals.Alert, p *field.Path) (signals.Signal, []string, field.ErrorList) {
	errs := validation.ValidateAlert(a, p)
	if len(errs) > 0 {
		return signals.Signal{}, nil, errs
	}
	var adjusted []string
	status := signals.SignalStatusFiring
	if a.Status == "resolved" {
		status = signals.SignalStatusResolved
	}
	startsAt := a.StartsAt
	name := a.Labels["alertname"]
	if clean := strings.Map(noControl, name); clean != name {
		name = clean
		adjusted = append(adjusted, "labels[alertname]: control characters replaced by spaces")
	}
	if len(name) > validation.MaxNameLength {
		name = validation.Truncate(name, validation.MaxNameLength)
		adjusted = append(adjusted, fmt.Sprintf("labels[alertname]: cut to %d bytes", validation.MaxNameLength))
	}
	severity := a.Labels["severity"]
	if len(severity) > validation.MaxSeverityLength || strings.Map(noControl, severity) != severity {
		severity = ""
		adjusted = append(adjusted, fmt.Sprintf("labels[severity]: left out (more than %d bytes, or control characters)", validation.MaxSeverityLength))
	}
	description := firstOf(a.Annotations, "description", "summary", "message")
	if len(description) > validation.MaxDescriptionLength {
		description = validation.Truncate(description, validation.MaxDescriptionLength)
		adjusted = append(adjusted, fmt.Sprintf("description: cut to %d bytes", validation.MaxDescriptionLength))
	}
	labels, left := bounded(a.Labels, validation.MaxLabelsSize)
	if left > 0 {
		adjusted = append(adjusted, fmt.Sprintf("labels: %d left out (invalid keys, or past %d entries or %d bytes)", left, validation.MaxMapEntries, validation.MaxLabelsSize))
	}
	annotations, left := bounded(a.Annotations, validation.MaxAnnotationsSize)
	if left > 0 {
		adjusted = append(adjusted, fmt.Sprintf("annotations: %d left out (invalid keys, or past %d entries or %d bytes)", left, validation.MaxMapEntries, validation.MaxAnnotationsSize))
	}
	spec := signals.SignalSpec{
		Source:         Source,
		Name:           name,
		Severity:       severity,
		Description:    description,
		Status:         status,
		Labels:         labels,
		Annotations:    annotations,
		StartsAt:       &startsAt,
		IdempotencyKey: "alertmanager/" + a.Fingerprint + "/" + a.StartsAt.UTC().Format(time.RFC3339Nano),
	}
	if strings.TrimSpace(spec.Name) == "" {
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
	sig := signals.Signal{Spec: spec}
	for _, e := range validation.ValidateSignal(&sig) {
		e.Field = alertPath(p, e.Field, label)
		errs = append(errs, e)
	}
	return sig, adjusted, errs
}

func noControl(r rune) rune {
	if unicode.IsControl(r) {
		return ' '
	}
	return r
}

// alertPath maps the path of a Signal field to the alert field it came from.
func alertPath(p *field.Path, signalField, targetLabel string) string {
	labels, annotations := p.Child("labels"), p.Child("annotations")
	switch {
	case signalField == "spec.name":
		return labels.Key("alertname").String()
	case signalField == "spec.severity":
		return labels.Key("severity").String()
	case signalField == "spec.target.namespace":
		return labels.Key("namespace").String()
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

// bounded copies m, in key order, leaving out the entries whose keys a
// Signal refuses and those that would take it past the validation bounds:
// an alert is recorded with the labels that fit rather than refused for the
// ones that do not. left is how many were left out.
func bounded(m map[string]string, maxSize int) (out map[string]string, left int) {
	if len(m) == 0 {
		return nil, 0
	}
	out = make(map[string]string, min(len(m), validation.MaxMapEntries))
	size := 0
	for _, k := range slices.Sorted(maps.Keys(m)) {
		v := m[k]
		if k == "" || len(k) > validation.MaxMapKeyLength || strings.Map(noControl, k) != k ||
			len(out) == validation.MaxMapEntries || size+len(k)+len(v) > maxSize {
			left++
			continue
		}
		out[k] = v
		size += len(k) + len(v)
	}
	return out, left
}

func firstOf(m map[string]string, keys ...string) string {
	for _, k := range keys {
		if v := m[k]; v != "" {
			return v
		}
	}
	return ""
}
