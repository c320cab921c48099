package integration

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/tools/clientcmd"

	"github.com/signal-apiserver/signal-apiserver/generated/clientset/versioned"
	"github.com/signal-apiserver/signal-apiserver/pkg/controlplane"
)

// unmaskedBearer is a bearer token as client-go would log it unmasked.
var unmaskedBearer = regexp.MustCompile(`Bearer [A-Za-z0-9\-_.]{8,}`)

var _ = Describe("Server logs", func() {
	It("hold no certificate, private key or token at --v=2 and --v=7", func(ctx SpecContext) {
		// --v=7 is the highest level at which client-go does not log
		// request and response bodies: from --v=8 on it logs the server's
		// TokenReviews, and with them the bearer tokens of its clients
		// (docs/reliability.md, Security).
		verbose, err := cp.StartServer(ctx, "signal-apiserver-v7", "--v=7")
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(verbose.Stop)

		// Successes, client errors and rejected credentials, on both.
		for _, server := range []*controlplane.Server{primary, verbose} {
			client := versioned.NewForConfigOrDie(cp.FrontProxyClientConfig(server, "system:admin", []string{"system:masters"}))
			_, err := client.SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{})
			Expect(err).NotTo(HaveOccurred())
			invalid := newSignal("default")
			invalid.Spec.Target.Kind = "not a kind"
			_, err = client.SignalsV1().Signals().Create(ctx, invalid, metav1.CreateOptions{})
			Expect(err).To(HaveOccurred())
			forged := direct(foreignClientCert())
			forged.Host = fmt.Sprintf("https://127.0.0.1:%d", server.Port)
			forged.BearerToken = "forged-token-0123456789abcdef"
			_, err = versioned.NewForConfigOrDie(forged).SignalsV1().Signals().Create(ctx, newSignal("default"), metav1.CreateOptions{})
			Expect(err).To(HaveOccurred())
		}

		// The server's own credentials, as its kubeconfig holds them.
		kubeconfig, err := clientcmd.LoadFromFile(filepath.Join(cp.StateDir(), "signal-apiserver.kubeconfig"))
		Expect(err).NotTo(HaveOccurred())
		var secrets []string
		for _, a := range kubeconfig.AuthInfos {
			for _, b := range [][]byte{a.ClientKeyData, a.ClientCertificateData} {
				if len(b) > 0 {
					secrets = append(secrets, string(b[40:80]), base64.StdEncoding.EncodeToString(b)[40:80])
				}
			}
			if a.Token != "" {
				secrets = append(secrets, a.Token)
			}
		}
		Expect(secrets).NotTo(BeEmpty())

		for _, path := range []string{primary.LogPath, verbose.LogPath} {
			data, err := os.ReadFile(path)
			Expect(err).NotTo(HaveOccurred())
			Expect(leaks(string(data), secrets)).To(BeEmpty(), path)
		}
	})

	// The positive control: the check above finds each kind of secret it
	// looks for, so its passing means something.
	It("finds a certificate, a private key, a token or the server's credentials in a log that holds one", func() {
		clean := `I1129 12:00:00.000000  1 handler.go:1] "Signal counted" rr="default/rr-0a1b"`
		Expect(leaks(clean, []string{"s3cr3t-credential"})).To(BeEmpty())
		for what, line := range map[string]string{
			"certificate":        "-----BEGIN CERTIFICATE-----",
			"private key":        "-----BEGIN EC PRIVATE KEY-----",
			"the forged token":   `body: {"spec":{"token":"forged-token-0123456789abcdef"}}`,
			"a bearer token":     "Authorization: Bearer eyJhbGciOiJSUzI1NiIsImtpZCI6",
			"server credentials": "loaded client key s3cr3t-credential",
		} {
			Expect(leaks(clean+"\n"+line, []string{"s3cr3t-credential"})).NotTo(BeEmpty(), what)
		}
	})
})

// leaks returns what of a certificate, a private key, a bearer token, the
// forged token of the spec above or secrets the log holds.
func leaks(log string, secrets []string) []string {
	var found []string
	for _, s := range append([]string{"-----BEGIN", "PRIVATE KEY", "forged-token"}, secrets...) {
		if strings.Contains(log, s) {
			found = append(found, s)
		}
	}
	if bearer := unmaskedBearer.FindString(log); bearer != "" {
		found = append(found, bearer)
	}
	return found
}
