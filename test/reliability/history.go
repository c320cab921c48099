// Package reliability checks signal-apiserver's two promises under faults:
// the Ginkgo suite injects the faults against a real control plane; this file
// checks the recorded history of every request mechanically.
package reliability

import (
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/anishathalye/porcupine"
)

// Request is one signal sent, as the client saw it.
type Request struct {
	// Sender names the client the request went through.
	Sender      string
	Fingerprint string
	// Call and Return are when the request was sent and answered.
	Call, Return time.Time
	// Code is the HTTP status; 0 when no HTTP answer came (connection
	// refused or reset, client timeout).
	Code int
	// RetryAfter is the Retry-After header of the answer, if any.
	RetryAfter string
	// RR and Count identify the RemediationRequest object (name and UID: a
	// deleted slot is created again under its name) and its occurrenceCount
	// in a 2xx answer.
	RR    string
	Count int64
	// Outcome is the outcome annotation of a 2xx answer.
	Outcome string
	// Err is the client's error, for non-2xx answers.
	Err string
}

// Acknowledged reports whether the signal got a 2xx answer: it was counted,
// or its idempotency key already was.
func (r Request) Acknowledged() bool { return r.Code >= 200 && r.Code < 300 }

// Counted reports whether the signal got a 2xx answer that says it was
// counted: not AlreadyCounted.
func (r Request) Counted() bool { return r.Acknowledged() && r.Outcome != "AlreadyCounted" }

// Read is one observation of a RemediationRequest's occurrenceCount, read
// from kube-apiserver between Call and Return.
type Read struct {
	RR           string
	Count        int64
	Call, Return time.Time
}

// counterOp is an operation on one RemediationRequest's counter.
type counterOp struct {
	// add: the write that counted k signals made the count v.
	// read: the count was v.
	read bool
	k, v int64
	// slack is how many unacknowledged signals of the fingerprint could
	// have been counted on this RemediationRequest.
	slack int64
}

// counterState is the count and how much of the slack explains it so far.
type counterState struct {
	count, slackUsed int64
}

// counterModel is a RemediationRequest's occurrenceCount: a write that counts
// k acknowledged signals moves it from c to exactly c+k plus any number of
// unacknowledged signals (bounded by the slack) counted since; a read sees
// the current count plus, again, unacknowledged signals counted since.
// Without unacknowledged signals it is exact: state+k == v.
var counterModel = porcupine.Model{
	Init: func() interface{} { return counterState{} },
	Step: func(state, input, _ interface{}) (bool, interface{}) {
		s, op := state.(counterState), input.(counterOp)
		var k int64
		if !op.read {
			k = op.k
		}
		extra := op.v - s.count - k
		if extra < 0 || s.slackUsed+extra > op.slack {
			return false, s
		}
		return true, counterState{count: op.v, slackUsed: s.slackUsed + extra}
	},
	DescribeOperation: func(input, _ interface{}) string {
		op := input.(counterOp)
		if op.read {
			return fmt.Sprintf("read %d", op.v)
		}
		return fmt.Sprintf("add %d -> %d", op.k, op.v)
	},
}

// CheckHistory checks that the answers and reads are linearizable against
// counterModel, per RemediationRequest. The 2xx answers naming the same
// RemediationRequest and count are one group-committed write: it counted
// them all, so it happened after the last of them was sent and before the
// first was answered. An AlreadyCounted answer counted nothing: it is a
// read of the count its write stored. An empty window, or a history no order
// of writes explains, is an error naming what is wrong.
func CheckHistory(requests []Request, reads []Read) error {
	reads = slices.Clip(reads)
	unacknowledged := map[string]int64{}
	fingerprintOf := map[string]string{}
	type key struct {
		rr    string
		count int64
	}
	type write struct {
		k              int64
		call, returned time.Time
	}
	writes := map[key]*write{}
	for _, r := range requests {
		if !r.Acknowledged() {
			unacknowledged[r.Fingerprint]++
			continue
		}
		if fp, ok := fingerprintOf[r.RR]; ok && fp != r.Fingerprint {
			return fmt.Errorf("RemediationRequest %s answered for fingerprints %s and %s", r.RR, fp, r.Fingerprint)
		}
		fingerprintOf[r.RR] = r.Fingerprint
		if !r.Counted() {
			reads = append(reads, Read{RR: r.RR, Count: r.Count, Call: r.Call, Return: r.Return})
			continue
		}
		k := key{r.RR, r.Count}
		w, ok := writes[k]
		if !ok {
			w = &write{call: r.Call, returned: r.Return}
			writes[k] = w
		}
		w.k++
		if r.Call.After(w.call) {
			w.call = r.Call
		}
		if r.Return.Before(w.returned) {
			w.returned = r.Return
		}
	}

	var history []porcupine.Operation
	for k, w := range writes {
		if w.call.After(w.returned) {
			return fmt.Errorf("RemediationRequest %s: the %d signals answered with count %d cannot have been counted by one write: one was answered (%s) before another was sent (%s)",
				k.rr, w.k, k.count, w.returned.Format(time.RFC3339Nano), w.call.Format(time.RFC3339Nano))
		}
		history = append(history, porcupine.Operation{
			Input:    counterOp{k: w.k, v: k.count, slack: unacknowledged[fingerprintOf[k.rr]]},
			Call:     w.call.UnixNano(),
			Return:   w.returned.UnixNano(),
			Metadata: k.rr,
		})
	}
	for _, r := range reads {
		fp, ok := fingerprintOf[r.RR]
		if !ok && r.Count > 0 {
			// Only unacknowledged signals can have counted on an RR no
			// answer named.
			if slack := maxSlack(unacknowledged); r.Count > slack {
				return fmt.Errorf("RemediationRequest %s was read with count %d but no answer named it and only %d signals went unacknowledged", r.RR, r.Count, slack)
			}
			continue
		}
		history = append(history, porcupine.Operation{
			Input:    counterOp{read: true, v: r.Count, slack: unacknowledged[fp]},
			Call:     r.Call.UnixNano(),
			Return:   r.Return.UnixNano(),
			Metadata: r.RR,
		})
	}
	byRR := map[string][]porcupine.Operation{}
	for _, op := range history {
		byRR[op.Metadata.(string)] = append(byRR[op.Metadata.(string)], op)
	}
	names := make([]string, 0, len(byRR))
	for name := range byRR {
		names = append(names, name)
	}
	sort.Strings(names)
	for _, name := range names {
		ops := byRR[name]
		switch porcupine.CheckOperationsTimeout(counterModel, ops, time.Minute) {
		case porcupine.Illegal:
			return fmt.Errorf("RemediationRequest %s: no order of its %d writes and reads explains the answers: a signal was counted twice, lost, or answered with a count it did not get", name, len(ops))
		case porcupine.Unknown:
			return fmt.Errorf("RemediationRequest %s: linearizability check of %d operations timed out", name, len(ops))
		}
	}
	return nil
}

func maxSlack(unacknowledged map[string]int64) int64 {
	var n int64
	for _, u := range unacknowledged {
		n += u
	}
	return n
}
