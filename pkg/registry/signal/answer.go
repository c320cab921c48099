package signal

import (
	"bytes"
	"io"
	"sync"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/utils/lru"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
)

// recentAnswers bounds the answers kept for sharing: those of the last few
// hundred writes, far more than are answered at any one moment.
const recentAnswers = 256

// answers shares the answer of one write among the signals it counted.
//
// Every signal one status write counted is answered with the
// RemediationRequest that write stored (dedup.Result shares it and never
// changes it) and its outcome as an annotation. In a storm one write counts
// dozens of signals: instead of copying, annotating and encoding the
// RemediationRequest for each of them, they share one answer per write and
// outcome, which k8s.io/apimachinery's encoders encode once
// (runtime.CacheableObject, as kube-apiserver's watch cache does for its
// watchers). The bytes on the wire are the same.
type answers struct {
	mu     *sync.Mutex
	recent *lru.Cache
}

type answerKey struct {
	rr      *remediationv1alpha1.RemediationRequest
	outcome dedup.Outcome
}

func newAnswers() answers {
	return answers{mu: &sync.Mutex{}, recent: lru.New(recentAnswers)}
}

// of returns the answer for res, shared with every other signal that got
// the same RemediationRequest and outcome.
func (a answers) of(res *dedup.Result) *answer {
	key := answerKey{rr: res.RemediationRequest, outcome: res.Outcome}
	// One lock around the look-up and the add: two signals of one write
	// that miss at once would otherwise make two answers, encoded twice.
	a.mu.Lock()
	defer a.mu.Unlock()
	if cached, ok := a.recent.Get(key); ok {
		return cached.(*answer)
	}
	ans := &answer{rr: annotated(res), encodings: map[runtime.Identifier]*encoding{}}
	a.recent.Add(key, ans)
	return ans
}

// annotated returns a copy of the RemediationRequest of res with the
// outcome annotation, as remediation.io/v1alpha1.
func annotated(res *dedup.Result) *remediationv1alpha1.RemediationRequest {
	rr := res.RemediationRequest.DeepCopy()
	rr.SetGroupVersionKind(remediationv1alpha1.SchemeGroupVersion.WithKind("RemediationRequest"))
	if rr.Annotations == nil {
		rr.Annotations = map[string]string{}
	}
	rr.Annotations[signalsv1.AnnotationOutcome] = string(res.Outcome)
	return rr
}

// answer is a RemediationRequest that concurrent responses share. Nothing
// modifies rr: encoders get copies of it (GetObject), and the metadata and
// kind they may read are copies too.
type answer struct {
	rr *remediationv1alpha1.RemediationRequest

	mu        sync.Mutex
	encodings map[runtime.Identifier]*encoding
}

// encoding is the answer encoded by one encoder.
type encoding struct {
	once sync.Once
	data []byte
	err  error
}

var (
	_ runtime.CacheableObject   = &answer{}
	_ metav1.ObjectMetaAccessor = &answer{}
)

// CacheEncode writes the answer as encode writes it, encoding it only the
// first time for each encoder.
func (a *answer) CacheEncode(id runtime.Identifier, encode func(runtime.Object, io.Writer) error, w io.Writer) error {
	a.mu.Lock()
	e := a.encodings[id]
	if e == nil {
		e = &encoding{}
		a.encodings[id] = e
	}
	a.mu.Unlock()
	e.once.Do(func() {
		var buf bytes.Buffer
		e.err = encode(a.GetObject(), &buf)
		e.data = buf.Bytes()
	})
	if e.err != nil {
		return e.err
	}
	_, err := w.Write(e.data)
	return err
}

// GetObject returns a copy of the RemediationRequest.
func (a *answer) GetObject() runtime.Object { return a.rr.DeepCopy() }

// GetObjectKind returns a copy of the kind, so that setting it changes
// nothing shared.
func (a *answer) GetObjectKind() schema.ObjectKind {
	kind := a.rr.TypeMeta
	return &kind
}

// DeepCopyObject returns a copy of the RemediationRequest.
func (a *answer) DeepCopyObject() runtime.Object { return a.GetObject() }

// GetObjectMeta returns a copy of the metadata, for the response
// transformations that read it (PartialObjectMetadata, Table).
func (a *answer) GetObjectMeta() metav1.Object {
	meta := a.rr.ObjectMeta
	return &meta
}
