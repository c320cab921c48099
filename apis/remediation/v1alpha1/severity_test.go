package v1alpha1

import "testing"

func TestSeverityOrder(t *testing.T) {
	for _, tc := range []struct {
		in, normalized string
		rank           int
	}{
		{"critical", "critical", 4}, {"CRITICAL", "critical", 4}, {" Fatal ", "critical", 4}, {"page", "critical", 4},
		{"high", "high", 3}, {"Error", "high", 3}, {"err", "high", 3}, {"major", "high", 3},
		{"warning", "warning", 2}, {"WARN", "warning", 2}, {"medium", "warning", 2},
		{"info", "info", 1}, {"Informational", "info", 1}, {"notice", "info", 1}, {"low", "info", 1},
		{"", "", 0}, {"none", "none", 0}, {"Sev-A", "Sev-A", 0},
	} {
		if got := NormalizeSeverity(tc.in); got != tc.normalized {
			t.Errorf("NormalizeSeverity(%q) = %q, want %q", tc.in, got, tc.normalized)
		}
		if got := SeverityRank(tc.in); got != tc.rank {
			t.Errorf("SeverityRank(%q) = %d, want %d", tc.in, got, tc.rank)
		}
	}
}
