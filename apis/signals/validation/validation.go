// Package validation checks Signals before anything is done with them.
package validation

import (
	"fmt"
	"regexp"
	"unicode"
	"unicode/utf8"

	"k8s.io/apimachinery/pkg/api/validate/content"
	apimachineryvalidation "k8s.io/apimachinery/pkg/api/validation"
	"k8s.io/apimachinery/pkg/runtime/schema"
	utilvalidation "k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/apimachinery/pkg/util/validation/field"

	"github.com/signal-apiserver/signal-apiserver/apis/signals"
)

// Size bounds of a Signal. They keep the RemediationRequest that a signal
// may become far below etcd's object size limit.
const (
	MaxSourceLength      = 253
	MaxNameLength        = 253
	MaxSeverityLength    = 63
	MaxDescriptionLength = 4096
	MaxFingerprintLength = 255
	MaxIdempotencyKeyLen = 512
	MaxKindLength        = 63
	MaxUIDLength         = 128
	MaxMapEntries        = 64
	MaxMapKeyLength      = 253
	MaxLabelsSize        = 16 << 10
	MaxAnnotationsSize   = 64 << 10
)

// Truncate cuts s to at most n bytes without splitting a UTF-8 character,
// for senders that shorten free text to fit the bounds above rather than be
// refused.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// kindRegexp admits a Kind or a resource name: CRDs' plural, singular and
// short names may hold dashes.
var kindRegexp = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9-]*$`)

// ValidateSignal returns every problem of s, each with its field path.
func ValidateSignal(s *signals.Signal) field.ErrorList {
	return validateSpec(&s.Spec, field.NewPath("spec"))
}

func validateSpec(spec *signals.SignalSpec, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	errs = append(errs, requiredText(spec.Source, MaxSourceLength, p.Child("source"))...)
	errs = append(errs, requiredText(spec.Name, MaxNameLength, p.Child("name"))...)
	errs = append(errs, optionalText(spec.Severity, MaxSeverityLength, p.Child("severity"))...)
	if len(spec.Description) > MaxDescriptionLength {
		errs = append(errs, field.TooLong(p.Child("description"), "", MaxDescriptionLength))
	}
	switch spec.Status {
	case signals.SignalStatusFiring, signals.SignalStatusResolved:
	default:
		errs = append(errs, field.NotSupported(p.Child("status"), spec.Status,
			[]string{string(signals.SignalStatusFiring), string(signals.SignalStatusResolved)}))
	}
	errs = append(errs, validateTarget(&spec.Target, p.Child("target"))...)
	errs = append(errs, validateMap(spec.Labels, MaxLabelsSize, p.Child("labels"))...)
	errs = append(errs, validateMap(spec.Annotations, MaxAnnotationsSize, p.Child("annotations"))...)
	if spec.Fingerprint != "" {
		errs = append(errs, optionalText(spec.Fingerprint, MaxFingerprintLength, p.Child("fingerprint"))...)
	}
	if spec.IdempotencyKey != "" {
		errs = append(errs, optionalText(spec.IdempotencyKey, MaxIdempotencyKeyLen, p.Child("idempotencyKey"))...)
	}
	return errs
}

func validateTarget(t *signals.TargetReference, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if t.APIVersion == "" {
		errs = append(errs, field.Required(p.Child("apiVersion"), "the API version of the target, e.g. apps/v1"))
	} else if gv, err := schema.ParseGroupVersion(t.APIVersion); err != nil || gv.Version == "" {
		errs = append(errs, field.Invalid(p.Child("apiVersion"), t.APIVersion, "must be <group>/<version> or <version>"))
	} else if gv.Group != "" {
		for _, msg := range utilvalidation.IsDNS1123Subdomain(gv.Group) {
			errs = append(errs, field.Invalid(p.Child("apiVersion"), t.APIVersion, "group: "+msg))
		}
	}
	switch {
	case t.Kind == "":
		errs = append(errs, field.Required(p.Child("kind"), "the kind of the target, e.g. Deployment"))
	case len(t.Kind) > MaxKindLength:
		errs = append(errs, field.TooLong(p.Child("kind"), "", MaxKindLength))
	case !kindRegexp.MatchString(t.Kind):
		errs = append(errs, field.Invalid(p.Child("kind"), t.Kind, "must be a Kubernetes kind or resource name: a letter followed by letters, digits and dashes"))
	}
	if t.Namespace != "" {
		for _, msg := range utilvalidation.IsDNS1123Label(t.Namespace) {
			errs = append(errs, field.Invalid(p.Child("namespace"), t.Namespace, msg))
		}
	}
	switch {
	case t.Name == "":
		errs = append(errs, field.Required(p.Child("name"), "the name of the target"))
	case len(t.Name) > utilvalidation.DNS1123SubdomainMaxLength:
		errs = append(errs, field.TooLong(p.Child("name"), "", utilvalidation.DNS1123SubdomainMaxLength))
	default:
		for _, msg := range objectNameRule(t.APIVersion)(t.Name, false) {
			errs = append(errs, field.Invalid(p.Child("name"), t.Name, msg))
		}
	}
	if len(t.UID) > MaxUIDLength {
		errs = append(errs, field.TooLong(p.Child("uid"), "", MaxUIDLength))
	}
	return errs
}

// objectNameRule is the rule kube-apiserver checks the names of apiVersion's
// objects with: RBAC's may be any path segment (system:node), every other
// kind's, custom resources included, are DNS-1123 subdomains or stricter.
// A name that breaks it belongs to no object.
func objectNameRule(apiVersion string) apimachineryvalidation.ValidateNameFunc {
	if gv, err := schema.ParseGroupVersion(apiVersion); err == nil && gv.Group == rbacGroup {
		return func(name string, _ bool) []string { return content.IsPathSegmentName(name) }
	}
	return apimachineryvalidation.NameIsDNSSubdomain
}

// rbacGroup is the API group of Roles, ClusterRoles and their bindings.
const rbacGroup = "rbac.authorization.k8s.io"

func validateMap(m map[string]string, maxSize int, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if len(m) > MaxMapEntries {
		errs = append(errs, field.TooMany(p, len(m), MaxMapEntries))
	}
	size := 0
	for k, v := range m {
		size += len(k) + len(v)
		switch {
		case k == "":
			errs = append(errs, field.Invalid(p, k, "keys must not be empty"))
		case len(k) > MaxMapKeyLength:
			errs = append(errs, field.TooLong(p.Key(k[:16]+"..."), "", MaxMapKeyLength))
		case hasControl(k):
			errs = append(errs, field.Invalid(p.Key(k), k, "keys must not contain control characters"))
		}
	}
	if size > maxSize {
		tooLong := field.TooLong(p, "", maxSize)
		tooLong.Detail = fmt.Sprintf("keys and values together must be no more than %d bytes, have %d", maxSize, size)
		errs = append(errs, tooLong)
	}
	return errs
}

func requiredText(s string, maxLen int, p *field.Path) field.ErrorList {
	if s == "" {
		return field.ErrorList{field.Required(p, "")}
	}
	return optionalText(s, maxLen, p)
}

func optionalText(s string, maxLen int, p *field.Path) field.ErrorList {
	switch {
	case len(s) > maxLen:
		return field.ErrorList{field.TooLong(p, "", maxLen)}
	case hasControl(s):
		return field.ErrorList{field.Invalid(p, s, "must not contain control characters")}
	}
	return nil
}

func hasControl(s string) bool {
	for _, r := range s {
		if unicode.IsControl(r) {
			return true
		}
	}
	return false
}

// AlertmanagerWebhookVersion is the only version of Alertmanager's webhook
// payload that is accepted.
const AlertmanagerWebhookVersion = "4"

// MaxAlertFingerprintLength bounds an alert's fingerprint (Alertmanager's
// are 16 hex digits): it goes into the alert's idempotency key and, for
// alerts about no known object, its Signal fingerprint.
const MaxAlertFingerprintLength = 128

// ValidateAlertmanagerNotification returns every problem of n's own fields,
// each with its field path: the problems that make the whole body unusable.
// Problems of one alert are ValidateAlert's, and fail that alert alone.
func ValidateAlertmanagerNotification(n *signals.AlertmanagerNotification) field.ErrorList {
	var errs field.ErrorList
	if n.Version != AlertmanagerWebhookVersion {
		errs = append(errs, field.NotSupported(field.NewPath("version"), n.Version, []string{AlertmanagerWebhookVersion}))
	}
	if n.TruncatedAlerts < 0 {
		errs = append(errs, field.Invalid(field.NewPath("truncatedAlerts"), n.TruncatedAlerts, "must not be negative"))
	}
	return errs
}

// ValidateAlert returns the problems of alert a, at path p, that no
// cutting or leaving out can mend: without a status, fingerprint and
// startsAt an alert cannot be recorded or deduplicated. Its labels and
// annotations become a Signal, which ValidateSignal checks.
func ValidateAlert(a *signals.Alert, p *field.Path) field.ErrorList {
	var errs field.ErrorList
	if a.Status != "firing" && a.Status != "resolved" {
		errs = append(errs, field.NotSupported(p.Child("status"), a.Status, []string{"firing", "resolved"}))
	}
	if a.Fingerprint == "" {
		errs = append(errs, field.Required(p.Child("fingerprint"), "Alertmanager's fingerprint of the alert"))
	} else {
		errs = append(errs, optionalText(a.Fingerprint, MaxAlertFingerprintLength, p.Child("fingerprint"))...)
	}
	if a.StartsAt.IsZero() {
		errs = append(errs, field.Required(p.Child("startsAt"), ""))
	}
	return errs
}
