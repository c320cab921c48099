package signal

import (
	"fmt"
	"testing"
)

// TestSourcesRefusedTakeNoSlot: sources of refused signals never take one
// of the bounded label slots.
func TestSourcesRefusedTakeNoSlot(t *testing.T) {
	var s sources
	for i := range maxSources * 2 {
		if got := s.label(fmt.Sprintf("spam-%d", i), false); got != "other" {
			t.Fatalf("refused source labelled %q, want other", got)
		}
	}
	if got := s.label("alertmanager", true); got != "alertmanager" {
		t.Errorf("accepted source labelled %q after refused ones, want its own", got)
	}
	if got := s.label("alertmanager", false); got != "alertmanager" {
		t.Errorf("a refused signal of a known source labelled %q", got)
	}
}
