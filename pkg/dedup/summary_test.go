package dedup

import (
	"fmt"
	"testing"
	"time"

	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

var summaryT0 = time.Date(2026, 11, 27, 10, 0, 0, 0, time.UTC)

func summaryRR(severity string) *remediationv1alpha1.RemediationRequest {
	return &remediationv1alpha1.RemediationRequest{Spec: remediationv1alpha1.RemediationRequestSpec{
		SignalName: "KubePodCrashLooping", SignalSource: "alertmanager", Severity: severity,
		ReceivedTime: metav1.NewTime(summaryT0),
	}}
}

func fire(name, severity string, sec int) *op {
	return &op{source: "alertmanager", name: name, severity: severity, at: summaryT0.Add(time.Duration(sec) * time.Second)}
}

func resolveOp(name string, sec int) *op {
	o := fire(name, "", sec)
	o.resolved = true
	return o
}

// checkSum fails t unless the summary's counts sum to occurrenceCount.
func checkSum(t *testing.T, rr *remediationv1alpha1.RemediationRequest) {
	t.Helper()
	if msg := summarySumMismatch(rr); msg != "" {
		t.Fatal(msg)
	}
}

func condition(rr *remediationv1alpha1.RemediationRequest, typ string) string {
	c := meta.FindStatusCondition(rr.Status.Conditions, typ)
	if c == nil {
		return "absent"
	}
	return string(c.Status)
}

func entryOf(t *testing.T, rr *remediationv1alpha1.RemediationRequest, name string) remediationv1alpha1.SignalRecord {
	t.Helper()
	for _, e := range rr.Status.SignalSummary.Signals {
		if e.Name == name {
			return e
		}
	}
	t.Fatalf("no entry %s in %+v", name, rr.Status.SignalSummary.Signals)
	return remediationv1alpha1.SignalRecord{}
}

func TestSummaryEscalationAndResolution(t *testing.T) {
	rr := summaryRR("Warning")
	apply(rr, []*op{fire("KubePodCrashLooping", "Warning", 0), fire("KubePodCrashLooping", "warning", 1)})
	checkSum(t, rr)
	if got := rr.Status.SignalSummary.HighestSeverity; got != "warning" {
		t.Fatalf("highestSeverity %q, want warning", got)
	}
	if got := condition(rr, remediationv1alpha1.ConditionEscalated); got != "absent" {
		t.Fatalf("Escalated %s after signals of the opening severity", got)
	}
	if got := condition(rr, remediationv1alpha1.ConditionSignalsResolved); got != "False" {
		t.Fatalf("SignalsResolved %s while firing", got)
	}

	apply(rr, []*op{fire("KubeDeploymentReplicasMismatch", "ERROR", 2), fire("HighErrorRate", "critical", 3), fire("HighErrorRate", "critical", 4)})
	checkSum(t, rr)
	s := rr.Status.SignalSummary
	if len(s.Signals) != 3 || s.OtherSignals != nil || s.HighestSeverity != "critical" {
		t.Fatalf("summary %+v, want 3 entries, no others, critical", s)
	}
	for name, want := range map[string]int64{"KubePodCrashLooping": 2, "KubeDeploymentReplicasMismatch": 1, "HighErrorRate": 2} {
		if got := entryOf(t, rr, name).Count; got != want {
			t.Errorf("%s count %d, want %d", name, got, want)
		}
	}
	if got := entryOf(t, rr, "KubeDeploymentReplicasMismatch").HighestSeverity; got != "high" {
		t.Errorf("ERROR mapped to %q, want high", got)
	}
	esc := meta.FindStatusCondition(rr.Status.Conditions, remediationv1alpha1.ConditionEscalated)
	if esc == nil || esc.Status != metav1.ConditionTrue || esc.Message != "critical HighErrorRate from alertmanager raised the highest severity from warning to critical" {
		t.Fatalf("Escalated %+v", esc)
	}

	// The controller looked again; a signal no more severe leaves that be.
	meta.SetStatusCondition(&rr.Status.Conditions, metav1.Condition{Type: remediationv1alpha1.ConditionEscalated, Status: metav1.ConditionFalse, Reason: "Reanalysed"})
	apply(rr, []*op{fire("Other", "critical", 5)})
	if got := condition(rr, remediationv1alpha1.ConditionEscalated); got != "False" {
		t.Fatalf("Escalated %s after a signal no more severe than critical", got)
	}

	apply(rr, []*op{resolveOp("KubePodCrashLooping", 6), resolveOp("HighErrorRate", 6), resolveOp("Other", 6)})
	checkSum(t, rr)
	if got := condition(rr, remediationv1alpha1.ConditionSignalsResolved); got != "False" {
		t.Fatalf("SignalsResolved %s with KubeDeploymentReplicasMismatch firing", got)
	}
	// A Resolved older than the latest firing of its signal does not resolve it.
	apply(rr, []*op{resolveOp("KubeDeploymentReplicasMismatch", 1)})
	if got := entryOf(t, rr, "KubeDeploymentReplicasMismatch").State; got != remediationv1alpha1.SignalFiring {
		t.Fatalf("state %s after a stale Resolved", got)
	}
	apply(rr, []*op{resolveOp("KubeDeploymentReplicasMismatch", 7)})
	if got := condition(rr, remediationv1alpha1.ConditionSignalsResolved); got != "True" {
		t.Fatalf("SignalsResolved %s after every signal resolved", got)
	}
	if e := entryOf(t, rr, "HighErrorRate"); e.State != remediationv1alpha1.SignalResolved || e.Count != 2 || !e.LastResolvedAt.Time.Equal(summaryT0.Add(6*time.Second)) {
		t.Fatalf("HighErrorRate %+v", e)
	}
	if !rr.Status.Deduplication.LastResolvedAt.Time.Equal(summaryT0.Add(7 * time.Second)) {
		t.Fatalf("lastResolvedAt %v", rr.Status.Deduplication.LastResolvedAt)
	}
	apply(rr, []*op{fire("HighErrorRate", "critical", 8)})
	checkSum(t, rr)
	if got := condition(rr, remediationv1alpha1.ConditionSignalsResolved); got != "False" {
		t.Fatalf("SignalsResolved %s after HighErrorRate fired again", got)
	}
	if got := rr.Status.Deduplication.OccurrenceCount; got != 7 {
		t.Fatalf("occurrenceCount %d, want 7", got)
	}
}

func TestSummaryOverflow(t *testing.T) {
	rr := summaryRR("")
	var ops []*op
	for i := range 200 {
		for range 5 {
			ops = append(ops, fire(fmt.Sprintf("Storm%03d", i), "info", i))
		}
	}
	apply(rr, ops[:500])
	apply(rr, ops[500:])
	checkSum(t, rr)
	s := rr.Status.SignalSummary
	if len(s.Signals) != remediationv1alpha1.MaxSignalRecords || s.OtherSignals == nil || s.OtherSignals.Count != 1000-5*remediationv1alpha1.MaxSignalRecords {
		t.Fatalf("%d entries, others %+v; want 32 and 840", len(s.Signals), s.OtherSignals)
	}
	if s.Signals[31].Name != "Storm031" || s.Signals[31].Count != 5 {
		t.Fatalf("last entry %+v", s.Signals[31])
	}
	// Others resolve as one: the latest signal among them decides.
	apply(rr, []*op{resolveOp("Storm199", 300)})
	if got := s.OtherSignals.State; got != remediationv1alpha1.SignalResolved {
		t.Fatalf("others %s", got)
	}
	if got := condition(rr, remediationv1alpha1.ConditionEscalated); got != "True" {
		t.Fatalf("Escalated %s after info signals on a RemediationRequest opened without severity", got)
	}
}

func TestSummaryOfEarlierVersions(t *testing.T) {
	rr := summaryRR("critical")
	rr.Status.Deduplication = &remediationv1alpha1.DeduplicationStatus{OccurrenceCount: 5}
	k := digest("k")
	apply(rr, []*op{fire("KubePodCrashLooping", "critical", 1), {source: "alertmanager", name: "Keyed", at: summaryT0, key: k, keyed: true}})
	checkSum(t, rr)
	if o := rr.Status.SignalSummary.OtherSignals; o == nil || o.Count != 5 || o.State != "" {
		t.Fatalf("others %+v, want the 5 earlier counts without a state", o)
	}
	// A redelivery counted before touches neither count nor summary.
	before := rr.Status.SignalSummary.DeepCopy()
	redelivery := &op{source: "alertmanager", name: "Keyed", at: summaryT0.Add(time.Minute), key: k, keyed: true}
	apply(rr, []*op{redelivery})
	if !redelivery.alreadyCounted || rr.Status.Deduplication.OccurrenceCount != 7 {
		t.Fatalf("redelivery counted: %d", rr.Status.Deduplication.OccurrenceCount)
	}
	if e := entryOf(t, rr, "Keyed"); !e.LastSeenAt.Equal(before.Signals[1].LastSeenAt) {
		t.Fatalf("redelivery moved lastSeenAt to %v", e.LastSeenAt)
	}
	// A client that does not know the summary wrote it away.
	rr.Status.SignalSummary = nil
	apply(rr, []*op{fire("New", "warning", 2)})
	checkSum(t, rr)
	if got := rr.Status.SignalSummary.OtherSignals.Count; got != 7 {
		t.Fatalf("others %d, want 7", got)
	}
}

// summarySumMismatch describes how the counts of rr's summary fail to sum
// to its occurrenceCount; empty if they do, or if it has no summary.
func summarySumMismatch(rr *remediationv1alpha1.RemediationRequest) string {
	s, d := rr.Status.SignalSummary, rr.Status.Deduplication
	if s == nil {
		return ""
	}
	var sum int64
	for _, e := range s.Signals {
		sum += e.Count
	}
	if s.OtherSignals != nil {
		sum += s.OtherSignals.Count
	}
	if d == nil || d.OccurrenceCount != sum {
		return fmt.Sprintf("%s/%s: signalSummary counts sum to %d, deduplication %+v", rr.Namespace, rr.Name, sum, d)
	}
	return ""
}

func keyedFire(name, key string, sec int) *op {
	o := fire(name, "warning", sec)
	o.instance, o.instanced = digest(key), true
	o.key, o.keyed = o.instance, true
	return o
}

func keyedResolve(name, key string, sec int) *op {
	o := resolveOp(name, sec)
	o.instance, o.instanced = digest(key), true
	return o
}

// TestSummaryInstances: instances of one name (one alert per Pod) share an
// entry, which resolves only when every one of them has.
func TestSummaryInstances(t *testing.T) {
	rr := summaryRR("warning")
	apply(rr, []*op{keyedFire("KubePodCrashLooping", "pod-a", 0), keyedFire("KubePodCrashLooping", "pod-b", 0)})
	// Alertmanager resends pod-b, still firing, with pod-a's resolution.
	apply(rr, []*op{keyedResolve("KubePodCrashLooping", "pod-a", 1), keyedFire("KubePodCrashLooping", "pod-b", 1)})
	checkSum(t, rr)
	if e := entryOf(t, rr, "KubePodCrashLooping"); e.State != remediationv1alpha1.SignalFiring || e.Count != 2 || len(e.FiringInstances) != 8 {
		t.Fatalf("entry %+v, want Firing with pod-b's instance, count 2", e)
	}
	if got := condition(rr, remediationv1alpha1.ConditionSignalsResolved); got != "False" {
		t.Fatalf("SignalsResolved %s while pod-b fires", got)
	}
	// A resolution of an instance that never fired here changes nothing.
	apply(rr, []*op{keyedResolve("KubePodCrashLooping", "pod-z", 2)})
	if got := condition(rr, remediationv1alpha1.ConditionSignalsResolved); got != "False" {
		t.Fatalf("SignalsResolved %s after another instance resolved", got)
	}
	apply(rr, []*op{keyedResolve("KubePodCrashLooping", "pod-b", 3)})
	if e := entryOf(t, rr, "KubePodCrashLooping"); e.State != remediationv1alpha1.SignalResolved || e.FiringInstances != nil {
		t.Fatalf("entry %+v, want Resolved", e)
	}
	if got := condition(rr, remediationv1alpha1.ConditionSignalsResolved); got != "True" {
		t.Fatalf("SignalsResolved %s after both resolved", got)
	}

	// Beyond the bound the instances share a stand-in.
	var ops []*op
	for i := range 20 {
		ops = append(ops, keyedFire("Many", fmt.Sprint(i), 10))
	}
	apply(rr, ops)
	e := entryOf(t, rr, "Many")
	if len(e.FiringInstances) != 8*remediationv1alpha1.MaxFiringInstances || indexOf(e.FiringInstances, unkeyed) != 8*(remediationv1alpha1.MaxFiringInstances-1) {
		t.Fatalf("%d bytes of instances, stand-in at %d", len(e.FiringInstances), indexOf(e.FiringInstances, unkeyed))
	}
	// A Resolved without a key resolves every instance.
	apply(rr, []*op{resolveOp("Many", 11)})
	if got := condition(rr, remediationv1alpha1.ConditionSignalsResolved); got != "True" {
		t.Fatalf("SignalsResolved %s after the sender resolved Many", got)
	}
	checkSum(t, rr)
}

// TestSummaryOnFinishedRR: apply keeps the summary of a finished
// RemediationRequest too, for whatever counts on it.
func TestSummaryOnFinishedRR(t *testing.T) {
	rr := summaryRR("warning")
	rr.Status.OverallPhase = remediationv1alpha1.PhaseCompleted
	apply(rr, []*op{fire("KubePodCrashLooping", "warning", 0), fire("HighErrorRate", "critical", 1), resolveOp("KubePodCrashLooping", 2), resolveOp("HighErrorRate", 2)})
	checkSum(t, rr)
	if got := condition(rr, remediationv1alpha1.ConditionSignalsResolved); got != "True" {
		t.Fatalf("SignalsResolved %s", got)
	}
	if got := condition(rr, remediationv1alpha1.ConditionEscalated); got != "True" {
		t.Fatalf("Escalated %s", got)
	}
}
