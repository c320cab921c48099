package apistatus

import (
	"errors"
	"fmt"
	"testing"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/runtime/schema"
)

func TestOf(t *testing.T) {
	gr := schema.GroupResource{Group: "signals.remediation.io", Resource: "signals"}
	tests := []struct {
		err  error
		want Class
	}{
		{nil, Success},
		{errors.New("connection refused"), Retryable},
		{apierrors.NewTooManyRequests("busy", 1), Retryable},
		{ServiceUnavailable(errors.New("starting")), Retryable},
		{apierrors.NewTimeoutError("slow", 1), Retryable},
		{fmt.Errorf("wrapped: %w", apierrors.NewTimeoutError("slow", 1)), Retryable},
		{apierrors.NewUnauthorized("who"), Denied},
		{apierrors.NewForbidden(gr, "", errors.New("rbac")), Denied},
		{apierrors.NewInvalid(schema.GroupKind{Group: gr.Group, Kind: "Signal"}, "", nil), Rejected},
		{apierrors.NewBadRequest("bad"), Rejected},
		{apierrors.NewNotFound(gr, "x"), Rejected},
		{apierrors.NewConflict(gr, "x", errors.New("collision")), Rejected},
		{apierrors.NewRequestEntityTooLargeError("big"), Rejected},
		{apierrors.NewInternalError(errors.New("boom")), Failed},
	}
	for _, tt := range tests {
		if got := Of(tt.err); got != tt.want {
			t.Errorf("Of(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
	if d := ServiceUnavailable(errors.New("x")).ErrStatus.Details; d == nil || d.RetryAfterSeconds != 1 {
		t.Errorf("ServiceUnavailable carries no Retry-After: %+v", d)
	}
}

func TestCode(t *testing.T) {
	gr := schema.GroupResource{Group: "signals.remediation.io", Resource: "signals"}
	tests := []struct {
		err  error
		want int32
	}{
		{nil, 201},
		{apierrors.NewForbidden(gr, "", errors.New("no")), 403},
		{fmt.Errorf("wrapped: %w", apierrors.NewInvalid(gr.WithVersion("v1").GroupVersion().WithKind("Signal").GroupKind(), "", nil)), 422},
		{ServiceUnavailable(errors.New("busy")), 503},
		{errors.New("boom"), 500},
	}
	for _, tt := range tests {
		if got := Code(tt.err); got != tt.want {
			t.Errorf("Code(%v) = %d, want %d", tt.err, got, tt.want)
		}
	}
}
