package apiserver

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"sync"
	"sync/atomic"
	"testing"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/apis/signals"
	signalsv1 "github.com/signal-apiserver/signal-apiserver/apis/signals/v1"
	"github.com/signal-apiserver/signal-apiserver/pkg/dedup"
	"github.com/signal-apiserver/signal-apiserver/pkg/registry"
	signalregistry "github.com/signal-apiserver/signal-apiserver/pkg/registry/signal"
	"github.com/signal-apiserver/signal-apiserver/pkg/signalkey"
)

// The create handler asks for an encoder in the signals group version; a
// RemediationRequest must still come out as remediation.io/v1alpha1, and a
// Status as itself.
func TestSignalsSerializerEncodesRemediationRequests(t *testing.T) {
	ns := newSignalsSerializer(Codecs)
	var mediaTypes []string
	var jsonInfo runtime.SerializerInfo
	for _, info := range ns.SupportedMediaTypes() {
		mediaTypes = append(mediaTypes, info.MediaType)
		if info.MediaType == runtime.ContentTypeJSON {
			jsonInfo = info
		}
	}
	if len(mediaTypes) != 2 || mediaTypes[0] != runtime.ContentTypeJSON || mediaTypes[1] != runtime.ContentTypeYAML {
		t.Fatalf("media types = %v, want [application/json application/yaml]", mediaTypes)
	}
	encoder := ns.EncoderForVersion(jsonInfo.Serializer, signalsv1.SchemeGroupVersion)

	tests := []struct {
		obj        runtime.Object
		apiVersion string
		kind       string
	}{
		{&remediationv1alpha1.RemediationRequest{ObjectMeta: metav1.ObjectMeta{Name: "rr-1"}}, "remediation.io/v1alpha1", "RemediationRequest"},
		{&signalsv1.Signal{}, "signals.remediation.io/v1", "Signal"},
		{&metav1.Status{Status: metav1.StatusFailure, Code: 422}, "v1", "Status"},
	}
	for _, tt := range tests {
		var buf bytes.Buffer
		if err := encoder.Encode(tt.obj, &buf); err != nil {
			t.Fatalf("encoding %T: %v", tt.obj, err)
		}
		var got metav1.TypeMeta
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatal(err)
		}
		if got.APIVersion != tt.apiVersion || got.Kind != tt.kind {
			t.Errorf("%T encoded as %s %s, want %s %s", tt.obj, got.APIVersion, got.Kind, tt.apiVersion, tt.kind)
		}
	}
}

// countingEncoder counts what it encodes.
type countingEncoder struct {
	runtime.Encoder
	n *atomic.Int32
}

func (e countingEncoder) Encode(obj runtime.Object, w io.Writer) error {
	e.n.Add(1)
	return e.Encoder.Encode(obj, w)
}

type sharedWrite struct {
	rr *remediationv1alpha1.RemediationRequest
}

func (w sharedWrite) Submit(context.Context, dedup.Signal) (*dedup.Result, error) {
	return &dedup.Result{RemediationRequest: w.rr, Outcome: dedup.OutcomeDeduplicated}, nil
}

// The signals one write counted share an answer, encoded once and written
// as the same bytes a RemediationRequest of their own would be.
func TestSharedAnswersAreEncodedOnce(t *testing.T) {
	stored := &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: "shop", Name: "rr-1", ResourceVersion: "7"},
		Spec:       remediationv1alpha1.RemediationRequestSpec{SignalFingerprint: "f00d", SignalLabels: map[string]string{"team": "platform"}},
		Status:     remediationv1alpha1.RemediationRequestStatus{Deduplication: &remediationv1alpha1.DeduplicationStatus{OccurrenceCount: 12}},
	}
	storage := signalregistry.NewREST(&signalkey.Policy{}, &registry.Gate{}, sharedWrite{stored})
	ns := newSignalsSerializer(Codecs)
	var jsonInfo runtime.SerializerInfo
	for _, info := range ns.SupportedMediaTypes() {
		if info.MediaType == runtime.ContentTypeJSON {
			jsonInfo = info
		}
	}
	var encoded atomic.Int32
	encoder := ns.EncoderForVersion(countingEncoder{jsonInfo.Serializer, &encoded}, signalsv1.SchemeGroupVersion)

	want := stored.DeepCopy()
	want.Annotations = map[string]string{signalsv1.AnnotationOutcome: "Deduplicated"}
	var wantJSON bytes.Buffer
	if err := ns.EncoderForVersion(jsonInfo.Serializer, signalsv1.SchemeGroupVersion).Encode(want, &wantJSON); err != nil {
		t.Fatal(err)
	}

	const n = 20
	var wg sync.WaitGroup
	answers := make([][]byte, n)
	for i := range n {
		wg.Go(func() {
			obj, err := storage.Create(context.Background(), &signals.Signal{Spec: signals.SignalSpec{
				Source: "alertmanager", Name: "KubePodCrashLooping", Status: signals.SignalStatusFiring,
				Target: signals.TargetReference{APIVersion: "apps/v1", Kind: "Deployment", Namespace: "shop", Name: "cart"},
			}}, nil, &metav1.CreateOptions{})
			if err != nil {
				t.Error(err)
				return
			}
			var buf bytes.Buffer
			if err := encoder.Encode(obj, &buf); err != nil {
				t.Error(err)
			}
			answers[i] = buf.Bytes()
		})
	}
	wg.Wait()
	for i, got := range answers {
		if !bytes.Equal(got, wantJSON.Bytes()) {
			t.Fatalf("answer %d:\n%s\nwant\n%s", i, got, wantJSON.Bytes())
		}
	}
	if n := encoded.Load(); n != 1 {
		t.Fatalf("%d answers of one write were encoded %d times, want once", len(answers), n)
	}
}
