package dedup

import (
	"context"
	"errors"
	"fmt"
	"strings"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	remediationclient "github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned/typed/remediation/v1alpha1"
)

// nameRuleMessage is part of the message of the CRD's rule that a new
// RemediationRequest is named after its fingerprint.
const nameRuleMessage = "must be named rr-"

// ErrNameRuleMissing means kube-apiserver accepts RemediationRequests not
// named after their fingerprint: the RemediationRequest CRD is older than
// this server.
var ErrNameRuleMissing = errors.New("the RemediationRequest CRD accepts RemediationRequests not named after their fingerprint: apply the CRD of this version (artifacts/crd) first")

// CheckNameRule asks kube-apiserver, with a dry-run create in namespace,
// whether the RemediationRequest CRD refuses a new RemediationRequest that
// is not named after its fingerprint. The engine relies on that rule: with
// it, a fingerprint can have one RemediationRequest at a time whoever
// creates them, and an earlier version's replicas cannot open new ones
// under their own names during an upgrade. Nothing is written.
func CheckNameRule(ctx context.Context, client remediationclient.RemediationRequestsGetter, namespace string) error {
	now := metav1.Now()
	probe := &remediationv1alpha1.RemediationRequest{
		ObjectMeta: metav1.ObjectMeta{Namespace: namespace, Name: "rr-name-rule-check"},
		Spec: remediationv1alpha1.RemediationRequestSpec{
			SignalFingerprint: strings.Repeat("0", 64),
			SignalName:        "NameRuleCheck",
			SignalSource:      FieldManager,
			TargetResource:    remediationv1alpha1.ResourceReference{APIVersion: "v1", Kind: "Namespace", Name: namespace},
			FiringTime:        now,
			ReceivedTime:      now,
		},
	}
	_, err := client.RemediationRequests(namespace).Create(ctx, probe, metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}, FieldManager: FieldManager})
	if err == nil {
		return ErrNameRuleMissing
	}
	var status apierrors.APIStatus
	if apierrors.IsInvalid(err) && errors.As(err, &status) && status.Status().Details != nil {
		for _, cause := range status.Status().Details.Causes {
			if strings.Contains(cause.Message, nameRuleMessage) {
				return nil
			}
		}
	}
	return fmt.Errorf("checking the RemediationRequest CRD's name rule with a dry-run create: %w", err)
}
