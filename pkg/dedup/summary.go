package dedup

import (
	"fmt"
	"strings"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// maxFiringNamesInMessage bounds the names the SignalsResolved condition's
// message lists.
const maxFiringNamesInMessage = 3

// summary updates status.signalSummary of one RemediationRequest as apply
// counts a batch on it. Every firing signal apply counts is counted here
// too, in its entry or in otherSignals, so their counts sum to
// occurrenceCount.
type summary struct {
	s *remediationv1alpha1.SignalSummary
	// index of each entry, by source NUL name.
	index map[string]int
	// escalated is the severity the batch raised highestSeverity to, with
	// the signal that did; empty if none.
	escalated     string
	escalatedBy   *op
	escalatedFrom string
}

// loadSummary returns the summary of rr, whose deduplication status is d
// before the batch. Counts that have no place in it (counted by a version
// that kept no summary, or written over by a client that does not know the
// field) go to otherSignals, so the sum holds before anything is added.
func loadSummary(rr *remediationv1alpha1.RemediationRequest, d *remediationv1alpha1.DeduplicationStatus) *summary {
	s := rr.Status.SignalSummary
	if s == nil {
		s = &remediationv1alpha1.SignalSummary{HighestSeverity: remediationv1alpha1.NormalizeSeverity(rr.Spec.Severity)}
		rr.Status.SignalSummary = s
	}
	var sum int64
	for _, e := range s.Signals {
		sum += e.Count
	}
	if s.OtherSignals != nil {
		sum += s.OtherSignals.Count
	}
	switch {
	case sum < d.OccurrenceCount:
		if s.OtherSignals == nil {
			s.OtherSignals = &remediationv1alpha1.OtherSignals{}
		}
		s.OtherSignals.Count += d.OccurrenceCount - sum
	case sum > d.OccurrenceCount:
		// Not written by this server: start again, all in otherSignals.
		*s = remediationv1alpha1.SignalSummary{
			HighestSeverity: s.HighestSeverity,
			OtherSignals:    &remediationv1alpha1.OtherSignals{Count: d.OccurrenceCount},
		}
	}
	u := &summary{s: s, index: make(map[string]int, len(s.Signals))}
	for i, e := range s.Signals {
		u.index[e.Source+"\x00"+e.Name] = i
	}
	return u
}

// entry returns the entry of o's source and name, adding one if there is
// room; nil means otherSignals takes o.
func (u *summary) entry(o *op, at metav1.Time) *remediationv1alpha1.SignalRecord {
	if o.source == "" || o.name == "" {
		return nil // the API refuses such signals; the engine's own callers may not
	}
	k := o.source + "\x00" + o.name
	if i, ok := u.index[k]; ok {
		return &u.s.Signals[i]
	}
	if len(u.s.Signals) >= remediationv1alpha1.MaxSignalRecords {
		return nil
	}
	u.s.Signals = append(u.s.Signals, remediationv1alpha1.SignalRecord{Source: o.source, Name: o.name, FirstSeenAt: at})
	u.index[k] = len(u.s.Signals) - 1
	return &u.s.Signals[len(u.s.Signals)-1]
}

// count records a firing signal that apply counted.
func (u *summary) count(o *op) {
	at := metav1.NewTime(o.at).Rfc3339Copy()
	severity := remediationv1alpha1.NormalizeSeverity(o.severity)
	if e := u.entry(o, at); e != nil {
		e.Count++
		e.HighestSeverity = higher(e.HighestSeverity, severity)
		e.LastSeenAt = later(e.LastSeenAt, at)
		// Without a key, a firing signal older than the latest Resolved
		// one (received by another replica) does not undo it.
		if o.instanced || e.LastResolvedAt == nil || !at.Before(e.LastResolvedAt) {
			e.FiringInstances = addInstance(e.FiringInstances, o)
		}
		e.State = stateOf(e.FiringInstances)
	} else {
		other := u.other()
		other.Count++
		other.HighestSeverity = higher(other.HighestSeverity, severity)
		other.LastSeenAt = later(other.LastSeenAt, at)
		if other.LastResolvedAt == nil || !at.Before(other.LastResolvedAt) {
			other.State = remediationv1alpha1.SignalFiring
		}
	}
	if remediationv1alpha1.SeverityRank(severity) > remediationv1alpha1.SeverityRank(u.s.HighestSeverity) {
		if u.escalatedBy == nil {
			u.escalatedFrom = u.s.HighestSeverity
		}
		u.escalated, u.escalatedBy = severity, o
	}
	u.s.HighestSeverity = higher(u.s.HighestSeverity, severity)
}

// resolve records a Resolved signal.
func (u *summary) resolve(o *op) {
	at := metav1.NewTime(o.at).Rfc3339Copy()
	if e := u.entry(o, at); e != nil {
		e.LastResolvedAt = later(e.LastResolvedAt, at)
		switch {
		case o.instanced:
			e.FiringInstances = removeInstance(e.FiringInstances, o.instance)
		case e.LastSeenAt == nil || !at.Before(e.LastSeenAt):
			// The sender resolved the signal, not one instance of it.
			e.FiringInstances = nil
		}
		e.State = stateOf(e.FiringInstances)
		return
	}
	other := u.other()
	other.LastResolvedAt = later(other.LastResolvedAt, at)
	if other.LastSeenAt == nil || !at.Before(other.LastSeenAt) {
		other.State = remediationv1alpha1.SignalResolved
	}
}

func (u *summary) other() *remediationv1alpha1.OtherSignals {
	if u.s.OtherSignals == nil {
		u.s.OtherSignals = &remediationv1alpha1.OtherSignals{}
	}
	return u.s.OtherSignals
}

// setConditions sets Escalated if the batch raised the highest severity,
// and SignalsResolved from the states of the entries.
func (u *summary) setConditions(rr *remediationv1alpha1.RemediationRequest) {
	if u.escalatedBy != nil {
		from := u.escalatedFrom
		if from == "" {
			from = "no severity"
		}
		meta.SetStatusCondition(&rr.Status.Conditions, metav1.Condition{
			Type:               remediationv1alpha1.ConditionEscalated,
			Status:             metav1.ConditionTrue,
			Reason:             "SeverityRaised",
			Message:            fmt.Sprintf("%s %s from %s raised the highest severity from %s to %s", u.escalated, u.escalatedBy.name, u.escalatedBy.source, from, u.escalated),
			ObservedGeneration: rr.Generation,
		})
	}
	var firing []string
	known := false
	for _, e := range u.s.Signals {
		known = true
		if e.State == remediationv1alpha1.SignalFiring {
			firing = append(firing, e.Name)
		}
	}
	if o := u.s.OtherSignals; o != nil && o.State != "" {
		known = true
		if o.State == remediationv1alpha1.SignalFiring {
			firing = append(firing, "(other signals)")
		}
	}
	if !known {
		return
	}
	c := metav1.Condition{
		Type:               remediationv1alpha1.ConditionSignalsResolved,
		Status:             metav1.ConditionTrue,
		Reason:             "AllResolved",
		Message:            "every signal that fired has been resolved since",
		ObservedGeneration: rr.Generation,
	}
	if len(firing) > 0 {
		names := firing[:min(len(firing), maxFiringNamesInMessage)]
		more := ""
		if len(firing) > len(names) {
			more = fmt.Sprintf(" and %d more", len(firing)-len(names))
		}
		c.Status, c.Reason = metav1.ConditionFalse, "Firing"
		c.Message = "still firing: " + strings.Join(names, ", ") + more
	}
	meta.SetStatusCondition(&rr.Status.Conditions, c)
}

// unkeyed is the instance digest that stands for the firing instances of a
// signal without a key of their own, or without room for it.
var unkeyed keyDigest

// addInstance records o's instance as firing in instances.
func addInstance(instances []byte, o *op) []byte {
	k := unkeyed
	if o.instanced {
		k = o.instance
	}
	if indexOf(instances, k) >= 0 {
		return instances
	}
	if k != unkeyed && len(instances)/len(k) >= remediationv1alpha1.MaxFiringInstances-1 {
		k = unkeyed // one place is kept for it
		if indexOf(instances, k) >= 0 {
			return instances
		}
	}
	return append(instances, k[:]...)
}

// removeInstance records instance k as resolved: it leaves instances; a key
// not recorded may be one of those without room, whose stand-in goes.
func removeInstance(instances []byte, k keyDigest) []byte {
	i := indexOf(instances, k)
	if i < 0 {
		i = indexOf(instances, unkeyed)
	}
	if i < 0 {
		return instances
	}
	out := append(instances[:i:i], instances[i+len(k):]...)
	if len(out) == 0 {
		return nil
	}
	return out
}

// indexOf is the byte offset of k in instances, -1 if absent.
func indexOf(instances []byte, k keyDigest) int {
	for i := 0; i+len(k) <= len(instances); i += len(k) {
		if keyDigest(instances[i:i+len(k)]) == k {
			return i
		}
	}
	return -1
}

func stateOf(instances []byte) remediationv1alpha1.SignalState {
	if len(instances) > 0 {
		return remediationv1alpha1.SignalFiring
	}
	return remediationv1alpha1.SignalResolved
}

// higher returns the more severe of a and b (both normalized); a if they
// rank alike and a is set.
func higher(a, b string) string {
	if a == "" || remediationv1alpha1.SeverityRank(b) > remediationv1alpha1.SeverityRank(a) {
		return b
	}
	return a
}

func later(t *metav1.Time, at metav1.Time) *metav1.Time {
	if t == nil || t.Before(&at) {
		return &at
	}
	return t
}
