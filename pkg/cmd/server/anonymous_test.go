package server

import (
	"crypto/tls"
	"crypto/x509"
	"net/http/httptest"
	"testing"

	apiserverapis "k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/user"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
)

// delegatedAuthenticator is k8s.io/apiserver's delegated authenticator as
// the server builds it, anonymous authentication on, with client
// certificates of ca authenticated.
func delegatedAuthenticator(t *testing.T, ca *testCA) authenticator.Request {
	t.Helper()
	caContent, err := dynamiccertificates.NewStaticCAContent("client-ca", ca.pem)
	if err != nil {
		t.Fatal(err)
	}
	auth, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
		Anonymous:                          &apiserverapis.AnonymousAuthConfig{Enabled: true},
		ClientCertificateCAContentProvider: caContent,
	}.New()
	if err != nil {
		t.Fatal(err)
	}
	return auth
}

func TestHealthOnlyAnonymous(t *testing.T) {
	ca := newTestCA(t, "client-ca")
	certs := map[string]*x509.Certificate{
		"alice":   ca.clientCert(t, "alice"),
		"foreign": newTestCA(t, "another-ca").clientCert(t, "mallory"),
	}
	inner := delegatedAuthenticator(t, ca)
	auth := healthOnlyAnonymous(inner)

	// Without the wrapper, a request without credentials is anonymous
	// everywhere: k8s.io/apiserver's delegated authentication has no
	// per-path setting.
	req := httptest.NewRequest("POST", "https://signal-apiserver/apis/signals.remediation.io/v1/signals", nil)
	if resp, ok, err := inner.AuthenticateRequest(req); err != nil || !ok || resp.User.GetName() != user.Anonymous {
		t.Fatalf("unwrapped: %+v, %t, %v; want %s", resp, ok, err, user.Anonymous)
	}

	tests := []struct {
		target   string
		cert     string // a key of certs
		wantUser string // empty: not authenticated
		wantErr  bool
	}{
		// Kubelet probes carry no credentials.
		{target: "/healthz", wantUser: user.Anonymous},
		{target: "/livez", wantUser: user.Anonymous},
		{target: "/readyz", wantUser: user.Anonymous},
		{target: "/readyz?verbose", wantUser: user.Anonymous},
		// Only those three paths: not their checks one by one, nor paths
		// that merely begin alike, nor anything else.
		{target: "/readyz/informer-sync"},
		{target: "/livez/ping"},
		{target: "/healthz/"},
		{target: "/healthzz"},
		{target: "/readyz.json"},
		{target: "/"},
		{target: "/version"},
		{target: "/metrics"},
		{target: "/openapi/v2"},
		{target: "/apis/signals.remediation.io/v1/signals"},
		{target: "/apis/signals.remediation.io/v1/alertmanagernotifications"},
		// Authenticated users are unaffected, on every path.
		{target: "/apis/signals.remediation.io/v1/signals", cert: "alice", wantUser: "alice"},
		{target: "/metrics", cert: "alice", wantUser: "alice"},
		{target: "/healthz", cert: "alice", wantUser: "alice"},
		// A certificate that does not verify is an error, as without the
		// wrapper, on health paths too: not anonymous.
		{target: "/apis/signals.remediation.io/v1/signals", cert: "foreign", wantErr: true},
		{target: "/readyz", cert: "foreign", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.target+" "+tt.cert, func(t *testing.T) {
			req := httptest.NewRequest("GET", "https://signal-apiserver"+tt.target, nil)
			if tt.cert != "" {
				req.TLS = &tls.ConnectionState{PeerCertificates: []*x509.Certificate{certs[tt.cert]}}
			}
			resp, ok, err := auth.AuthenticateRequest(req)
			if (err != nil) != tt.wantErr {
				t.Fatalf("err = %v, want an error: %t", err, tt.wantErr)
			}
			if tt.wantUser == "" {
				if ok || resp != nil {
					t.Fatalf("authenticated as %+v, want not authenticated", resp)
				}
				return
			}
			if !ok {
				t.Fatalf("not authenticated, want %s", tt.wantUser)
			}
			if got := resp.User.GetName(); got != tt.wantUser {
				t.Errorf("user %q, want %q", got, tt.wantUser)
			}
			if tt.wantUser == user.Anonymous {
				if got := resp.User.GetGroups(); len(got) != 1 || got[0] != user.AllUnauthenticated {
					t.Errorf("groups %q, want [%s]", got, user.AllUnauthenticated)
				}
			}
		})
	}
}
