package v1alpha1

import "strings"

// Severities in the order signal-apiserver ranks them, most severe first.
// A severity outside this order is kept as its sender spelled it and ranks
// below SeverityInfo, with no severity at all.
const (
	SeverityCritical = "critical"
	SeverityHigh     = "high"
	SeverityWarning  = "warning"
	SeverityInfo     = "info"
)

// severitySpellings maps senders' spellings, lowercased, to the ordered
// severities: Alertmanager rules, syslog levels, klog/zap levels, ticketing
// priorities.
var severitySpellings = map[string]string{
	"critical": SeverityCritical, "crit": SeverityCritical, "fatal": SeverityCritical,
	"emergency": SeverityCritical, "emerg": SeverityCritical, "alert": SeverityCritical,
	"page": SeverityCritical, "p0": SeverityCritical, "p1": SeverityCritical,
	"high": SeverityHigh, "error": SeverityHigh, "err": SeverityHigh, "major": SeverityHigh,
	"p2":      SeverityHigh,
	"warning": SeverityWarning, "warn": SeverityWarning, "medium": SeverityWarning,
	"minor": SeverityWarning, "p3": SeverityWarning,
	"info": SeverityInfo, "informational": SeverityInfo, "information": SeverityInfo,
	"notice": SeverityInfo, "low": SeverityInfo, "p4": SeverityInfo,
}

var severityRanks = map[string]int{SeverityCritical: 4, SeverityHigh: 3, SeverityWarning: 2, SeverityInfo: 1}

// NormalizeSeverity returns the ordered severity a sender's spelling maps
// to, matched case-insensitively and without surrounding spaces, or s as
// it is if it maps to none.
func NormalizeSeverity(s string) string {
	if n, ok := severitySpellings[strings.ToLower(strings.TrimSpace(s))]; ok {
		return n
	}
	return s
}

// SeverityRank orders severities: 4 for critical down to 1 for info, 0 for
// anything else, the empty severity included. It ranks a sender's spelling
// as NormalizeSeverity maps it.
func SeverityRank(s string) int {
	return severityRanks[NormalizeSeverity(s)]
}
