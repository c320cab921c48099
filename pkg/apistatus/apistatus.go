// Package apistatus classifies the answers of the signals API the same way
// wherever the project acts on them: the server's metrics and Alertmanager
// batches, and the event source's retries. It depends on apimachinery only,
// so clients link none of the server.
package apistatus

import (
	"errors"
	"net/http"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// Class is what an answer means for the one who sent the request.
type Class int

// Classes of answers.
const (
	// Success: the request was done.
	Success Class = iota
	// Retryable: try again later (429, 503, 504, 408, or no answer at all):
	// nothing about the request was wrong.
	Retryable
	// Denied: the sender may not do this (401, 403); a change of its
	// credentials or permissions can change the answer.
	Denied
	// Rejected: the request is wrong as it is (any other 4xx); sending it
	// again gets the same answer.
	Rejected
	// Failed: the server failed (any other 5xx).
	Failed
)

// Code is the HTTP status code of the answer for err, an error that a
// storage returns (nil: 201 Created): its API status's code, or 500 for an
// error that carries none, as k8s.io/apiserver answers it.
func Code(err error) int32 {
	if err == nil {
		return http.StatusCreated
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return http.StatusInternalServerError
	}
	return status.Status().Code
}

// Of classifies err, the error of a request to the API (nil: Success). An
// error that carries no API status is a request that got no answer:
// Retryable.
func Of(err error) Class {
	if err == nil {
		return Success
	}
	var status apierrors.APIStatus
	if !errors.As(err, &status) {
		return Retryable
	}
	switch code := int(status.Status().Code); {
	case code == http.StatusTooManyRequests, code == http.StatusServiceUnavailable,
		code == http.StatusGatewayTimeout, code == http.StatusRequestTimeout:
		return Retryable
	case code == http.StatusUnauthorized, code == http.StatusForbidden:
		return Denied
	case code >= 400 && code < 500:
		return Rejected
	case code >= 500:
		return Failed
	}
	return Success
}

// ServiceUnavailable is a 503 with Retry-After: 1 (k8s.io/apiserver turns
// RetryAfterSeconds into the header) whose message is err's.
func ServiceUnavailable(err error) *apierrors.StatusError {
	e := apierrors.NewServiceUnavailable(err.Error())
	e.ErrStatus.Details = &metav1.StatusDetails{RetryAfterSeconds: 1}
	return e
}
