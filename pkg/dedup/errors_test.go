package dedup

import (
	"errors"
	"fmt"
	"io"
	"syscall"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
)

// TestUpstream: a kube-apiserver error that a retry will likely cure is
// ErrUnavailable; others are left as they are.
func TestUpstream(t *testing.T) {
	gr := remediationv1alpha1.Resource("remediationrequests")
	tests := []struct {
		err         error
		unavailable bool
	}{
		{apierrors.NewTooManyRequests("busy", 1), true},
		{apierrors.NewServiceUnavailable("etcd"), true},
		{apierrors.NewTimeoutError("slow", 1), true},
		{apierrors.NewServerTimeout(gr, "update", 1), true},
		{apierrors.NewForbidden(gr, "x", errors.New("rbac is starting")), true},
		{fmt.Errorf("dial: %w", syscall.ECONNREFUSED), true},
		{io.ErrUnexpectedEOF, true},
		{fmt.Errorf("reading: %w", timeoutError{}), true},
		{apierrors.NewInvalid(remediationv1alpha1.SchemeGroupVersion.WithKind("RemediationRequest").GroupKind(), "x", nil), false},
		{apierrors.NewNotFound(gr, "x"), false},
		{errors.New("boom"), false},
		{fmt.Errorf("%w: %w", ErrNamespaceTerminating, apierrors.NewForbidden(gr, "x", errors.New("terminating"))), false},
	}
	for _, tt := range tests {
		got := upstream(tt.err)
		if errors.Is(got, ErrUnavailable) != tt.unavailable || !errors.Is(got, tt.err) {
			t.Errorf("upstream(%v) = %v; ErrUnavailable %v, want %v", tt.err, got, errors.Is(got, ErrUnavailable), tt.unavailable)
		}
	}
}

// timeoutError is a network timeout, as net/http's "TLS handshake timeout".
type timeoutError struct{}

func (timeoutError) Error() string   { return "net/http: TLS handshake timeout" }
func (timeoutError) Timeout() bool   { return true }
func (timeoutError) Temporary() bool { return true }
