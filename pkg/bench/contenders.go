package bench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strconv"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
)

// The contenders, in the order they run in each scenario.
const (
	LimitAggregation  = "limit-aggregation"
	LimitCreate       = "limit-create"
	LimitStatusUpdate = "limit-status-update"
	Baseline          = "baseline"
	SignalAPIServer   = "signal-apiserver"
	// SignalAPIServerX2 is signal-apiserver with two replicas behind the
	// APIService's Service, as the default install runs it. Its rows run
	// last, after a second replica has started.
	SignalAPIServerX2 = "signal-apiserver-x2"
)

// Contenders lists the contenders in run order.
var Contenders = []string{LimitAggregation, LimitCreate, LimitStatusUpdate, Baseline, SignalAPIServer, SignalAPIServerX2}

// isLimit tells the reference rows, which deduplicate nothing, from the
// intakes.
func isLimit(contender string) bool {
	return contender == LimitAggregation || contender == LimitCreate || contender == LimitStatusUpdate
}

// isSignalAPIServer tells the product's rows, which must answer correctly,
// from the others.
func isSignalAPIServer(contender string) bool {
	return contender == SignalAPIServer || contender == SignalAPIServerX2
}

// runsIn reports whether contender has a row in scenario s. Status updates
// are the floor of spread and, with creates, bound fresh; a storm of them
// would only queue on one RemediationRequest. Two replicas count a storm;
// a keyed storm compares signal-apiserver with itself in storm.
func runsIn(contender string, s Scenario) bool {
	switch contender {
	case LimitStatusUpdate:
		return s.Name == "spread" || s.Name == "fresh"
	case SignalAPIServerX2:
		return s.Name == "storm"
	}
	if s.Keyed {
		return contender == SignalAPIServer
	}
	return true
}

// preparer is a contender that sets up the namespace of a workload before
// it runs, unmeasured.
type preparer interface {
	prepare(ctx context.Context, w *workload) error
}

// result is the outcome of one request.
type result struct {
	// err means the request failed: no 2xx answer.
	err error
	// swallowed is an error the baseline answers 2xx anyway, as the
	// gateway does: AlreadyExists from its create, or a status write that
	// failed after its retries.
	swallowed error
}

// contender takes in the signals of a workload.
type contender interface {
	// send handles request i of w.
	send(ctx context.Context, w *workload, i int) result
}

func newContender(name string, cs versioned.Interface) (contender, error) {
	switch name {
	case LimitAggregation:
		return limitAggregation{cs}, nil
	case LimitCreate:
		return limitCreate{cs}, nil
	case Baseline:
		return baseline{cs}, nil
	case LimitStatusUpdate:
		return &limitStatusUpdate{cs: cs}, nil
	case SignalAPIServer, SignalAPIServerX2:
		return signalAPIServer{cs}, nil
	}
	return nil, fmt.Errorf("unknown contender %q", name)
}

// signalAPIServer creates Signals through kube-apiserver's aggregator: the
// product.
type signalAPIServer struct{ cs versioned.Interface }

func (c signalAPIServer) send(ctx context.Context, w *workload, i int) result {
	sig, _ := w.request(i)
	_, err := c.cs.SignalsV1().Signals().Create(ctx, sig, metav1.CreateOptions{})
	return result{err: err}
}

// limitAggregation reads the discovery document of signals.remediation.io/v1,
// which kube-apiserver proxies to signal-apiserver: the cheapest round trip
// through the aggregator.
type limitAggregation struct{ cs versioned.Interface }

func (c limitAggregation) send(ctx context.Context, _ *workload, _ int) result {
	return result{err: c.cs.Discovery().RESTClient().Get().AbsPath("/apis/signals.remediation.io/v1").Do(ctx).Error()}
}

// limitCreate creates one RemediationRequest per signal, as signal-apiserver
// would build it: the cost of one write, the most any intake that creates
// RemediationRequests can do. The CRD admits one RemediationRequest per
// fingerprint, so each request creates one of a fingerprint of its own,
// derived from its signal's.
type limitCreate struct{ cs versioned.Interface }

func (c limitCreate) send(ctx context.Context, w *workload, i int) result {
	sig, fp := w.request(i)
	sum := sha256.Sum256([]byte(fp + "/" + strconv.Itoa(i)))
	fp = hex.EncodeToString(sum[:])
	rr := &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: w.namespace, Name: remediationv1alpha1.NameFor(fp)},
		Spec:       remediationSpec(sig, fp, time.Now()),
	}
	_, err := c.cs.RemediationV1alpha1().RemediationRequests(w.namespace).Create(ctx, rr,
		metav1.CreateOptions{FieldManager: serverFieldManager})
	return result{err: err}
}

// serverFieldManager is the field manager signal-apiserver writes with.
const serverFieldManager = "signal-apiserver"
