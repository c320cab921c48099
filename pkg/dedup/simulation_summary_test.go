package dedup_test

import (
	"fmt"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// simAlerts are the signals the simulation sends about each fingerprint,
// in turn: distinct names of distinct severities, so that the summary has
// several entries and its highest severity rises.
var simAlerts = []struct{ name, severity string }{
	{"SimulatedAlert", "warning"},
	{"SimulatedOutage", "critical"},
	{"SimulatedNotice", "Info"},
}

// simSummaryProblem is the summary's part of promise 2, checked on every
// stored version: the counts of the summary's entries and of otherSignals
// sum to occurrenceCount, no entry is counted twice, and the highest
// severity is at least every entry's. Empty if all holds.
func simSummaryProblem(o *rr) string {
	s := o.Status.SignalSummary
	if s == nil {
		return ""
	}
	var sum int64
	seen := map[string]bool{}
	for _, e := range s.Signals {
		sum += e.Count
		if seen[e.Source+"/"+e.Name] {
			return fmt.Sprintf("%s/%s (%s): signalSummary has %s/%s twice", o.Namespace, o.Name, o.UID, e.Source, e.Name)
		}
		seen[e.Source+"/"+e.Name] = true
		if remediationv1alpha1.SeverityRank(e.HighestSeverity) > remediationv1alpha1.SeverityRank(s.HighestSeverity) {
			return fmt.Sprintf("%s/%s (%s): highestSeverity %q below entry %s's %q", o.Namespace, o.Name, o.UID, s.HighestSeverity, e.Name, e.HighestSeverity)
		}
	}
	if s.OtherSignals != nil {
		sum += s.OtherSignals.Count
	}
	var count int64
	if d := o.Status.Deduplication; d != nil {
		count = d.OccurrenceCount
	}
	if sum != count {
		return fmt.Sprintf("%s/%s (%s): signalSummary counts sum to %d, occurrenceCount is %d", o.Namespace, o.Name, o.UID, sum, count)
	}
	return ""
}
