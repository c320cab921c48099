package install

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting/roundtrip"
	"k8s.io/apimachinery/pkg/runtime/serializer"
)

// TestRoundTripTypes converts every kind of the group from its internal
// form to v1 and back, and through JSON, with random values: conversion
// and serialization lose nothing. k8s.io/apimachinery's object-metadata
// fuzzers are merged in by the test itself.
func TestRoundTripTypes(t *testing.T) {
	roundtrip.RoundTripTestForAPIGroup(t, Install, func(serializer.CodecFactory) []any { return nil })
}
