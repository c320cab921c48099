package integration

import (
	"bytes"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/rand"
	"k8s.io/client-go/rest"
)

// kubectlStderr runs the control plane's kubectl as cluster admin and
// returns its standard error too: warnings go there.
func kubectlStderr(ctx context.Context, args ...string) (stdout, stderr string, err error) {
	cmd := exec.CommandContext(ctx, cp.KubectlPath(), append([]string{"--kubeconfig", cp.KubeconfigPath()}, args...)...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.String(), errOut.String(), err
}

var _ = Describe("Field validation", func() {
	// signalWithUnknownField writes a signal with spec.target.colour, a
	// field the API does not have, about a target of its own.
	signalWithUnknownField := func() string {
		path := filepath.Join(GinkgoT().TempDir(), "signal.yaml")
		Expect(os.WriteFile(path, []byte(`apiVersion: signals.remediation.io/v1
kind: Signal
spec:
  source: manual
  name: HighMemoryUsage
  severity: warning
  target:
    apiVersion: apps/v1
    kind: Deployment
    namespace: default
    name: web-`+rand.String(8)+`
    colour: blue
`), 0o600)).To(Succeed())
		return path
	}

	It("rejects an unknown field under kubectl --validate=strict, naming it", func(ctx SpecContext) {
		_, stderr, err := kubectlStderr(ctx, "create", "--validate=strict", "-f", signalWithUnknownField())
		var exitErr *exec.ExitError
		Expect(errors.As(err, &exitErr)).To(BeTrue(), "got %v", err)
		// kubectl validates against the OpenAPI schema the server publishes
		// before it sends anything.
		Expect(stderr).To(ContainSubstring(`ValidationError(Signal.spec.target): unknown field "colour"`))
		Expect(stderr).NotTo(ContainSubstring("created"))
	})

	It("rejects an unknown field under fieldValidation=Strict on the server with an error naming it", func(ctx SpecContext) {
		rc, err := rest.RESTClientFor(restConfigFor(adminConf))
		Expect(err).NotTo(HaveOccurred())
		body, err := os.ReadFile(signalWithUnknownField())
		Expect(err).NotTo(HaveOccurred())
		err = rc.Post().AbsPath("/apis/signals.remediation.io/v1/signals").Param("fieldValidation", "Strict").
			SetHeader("Content-Type", "application/yaml").Body(body).Do(ctx).Error()
		Expect(apierrors.IsBadRequest(err) || apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring(`unknown field "spec.target.colour"`))
	})

	It("creates with a warning naming an unknown field under kubectl --validate=warn", func(ctx SpecContext) {
		stdout, stderr, err := kubectlStderr(ctx, "create", "--validate=warn", "-f", signalWithUnknownField())
		Expect(err).NotTo(HaveOccurred(), stderr)
		Expect(stderr).To(ContainSubstring(`unknown field "spec.target.colour"`))
		Expect(strings.TrimSpace(stdout)).To(MatchRegexp(`^remediationrequest\.remediation\.io/rr-[0-9a-f]{60} created$`))
	})

	It("rejects oversized labels with 422 naming spec.labels", func(ctx SpecContext) {
		s := newSignal("default")
		s.Spec.Labels = map[string]string{"huge": strings.Repeat("x", 70<<10)}
		_, err := admin.SignalsV1().Signals().Create(ctx, s, metav1.CreateOptions{})
		Expect(apierrors.IsInvalid(err)).To(BeTrue(), "got %v", err)
		Expect(err.Error()).To(ContainSubstring("spec.labels"))
		Expect(rrsOf(ctx, "default", fingerprintOf(s))).To(BeEmpty())
	})
})
