package integration

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"os"
	"path/filepath"
	"time"

	. "github.com/onsi/ginkgo/v2"
	. "github.com/onsi/gomega"
	certutil "k8s.io/client-go/util/cert"
)

// servedCertificate dials port and returns the DER of the leaf certificate
// it presents, or the handshake error.
func servedCertificate(port int, version uint16) ([]byte, error) {
	conn, err := tls.Dial("tcp", fmt.Sprintf("127.0.0.1:%d", port), &tls.Config{
		InsecureSkipVerify: true, // the spec compares the certificate itself
		MinVersion:         version,
		MaxVersion:         version,
	})
	if err != nil {
		return nil, err
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Raw, nil
}

var _ = Describe("Serving TLS", func() {
	It("refuses TLS 1.0 and 1.1 and speaks TLS 1.2 and 1.3", func() {
		for _, v := range []uint16{tls.VersionTLS10, tls.VersionTLS11} {
			_, err := servedCertificate(primary.Port, v)
			Expect(err).To(HaveOccurred(), tls.VersionName(v))
		}
		for _, v := range []uint16{tls.VersionTLS12, tls.VersionTLS13} {
			_, err := servedCertificate(primary.Port, v)
			Expect(err).NotTo(HaveOccurred(), tls.VersionName(v))
		}
	})

	It("serves a rotated certificate from its files without a restart", func(ctx SpecContext) {
		// A replica of its own, on copies of the harness's serving files.
		dir := GinkgoT().TempDir()
		certFile, keyFile := filepath.Join(dir, "serving.crt"), filepath.Join(dir, "serving.key")
		for src, dst := range map[string]string{"serving.crt": certFile, "serving.key": keyFile} {
			data, err := os.ReadFile(filepath.Join(cp.StateDir(), "pki", src))
			Expect(err).NotTo(HaveOccurred())
			Expect(os.WriteFile(dst, data, 0o600)).To(Succeed())
		}
		s, err := cp.StartServer(ctx, "signal-apiserver-rotation", "--tls-cert-file="+certFile, "--tls-private-key-file="+keyFile)
		Expect(err).NotTo(HaveOccurred())
		DeferCleanup(s.Stop)
		before, err := servedCertificate(s.Port, tls.VersionTLS13)
		Expect(err).NotTo(HaveOccurred())

		certPEM, keyPEM, err := certutil.GenerateSelfSignedCertKey("localhost", nil, []string{"localhost"})
		Expect(err).NotTo(HaveOccurred())
		rotated, err := certutil.ParseCertsPEM(certPEM)
		Expect(err).NotTo(HaveOccurred())
		Expect(rotated[0].Raw).NotTo(Equal(before))
		// Key first: a certificate is only used with a key that matches it.
		Expect(os.WriteFile(keyFile, keyPEM, 0o600)).To(Succeed())
		Expect(os.WriteFile(certFile, certPEM, 0o600)).To(Succeed())

		Eventually(func(g Gomega) {
			got, err := servedCertificate(s.Port, tls.VersionTLS13)
			g.Expect(err).NotTo(HaveOccurred())
			g.Expect(bytes.Equal(got, rotated[0].Raw)).To(BeTrue(), "still serving the old certificate")
		}).WithContext(ctx).WithTimeout(3 * time.Minute).Should(Succeed())
		Expect(s.Done()).NotTo(BeClosed(), "the server restarted")
	})
})
