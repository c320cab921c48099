package install

import (
	"testing"

	"k8s.io/apimachinery/pkg/api/apitesting/roundtrip"
	"k8s.io/apimachinery/pkg/runtime/serializer"
	"sigs.k8s.io/randfill"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
)

// fuzzerFuncs keep random values to what decoding does not change: an empty
// status is defaulted to Firing.
func fuzzerFuncs(serializer.CodecFactory) []any {
	return []any{
		func(s *signals.SignalSpec, c randfill.Continue) {
			c.FillNoCustom(s)
			if s.Status == "" {
				s.Status = signals.SignalStatusFiring
			}
		},
	}
}

// TestRoundTripTypes converts every kind of the group from its internal
// form to v1 and back, and through JSON, with random values: conversion
// and serialization lose nothing. k8s.io/apimachinery's object-metadata
// fuzzers are merged in by the test itself.
func TestRoundTripTypes(t *testing.T) {
	roundtrip.RoundTripTestForAPIGroup(t, Install, fuzzerFuncs)
}
