package frontproxy

import (
	"crypto/tls"
	"crypto/x509"
	"net/http"
	"net/http/httptest"
	"reflect"
	"sync"
	"testing"
	"time"

	"k8s.io/apiserver/pkg/apis/apiserver"
	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
	"k8s.io/apiserver/pkg/authentication/user"
)

// server is the authentication of a server: k8s.io/apiserver's delegated
// authenticator as signal-apiserver configures it (request header, then
// anonymous; no token reviews here), alone (upstream) and wrapped in the
// cache (cached).
type server struct {
	ca       *fileCA
	upstream authenticator.Request
	cached   *Authenticator

	mu           sync.Mutex
	allowedNames []string
}

func newServer(t *testing.T, caBundle []byte, allowedNames ...string) *server {
	t.Helper()
	s := &server{ca: newFileCA(t, caBundle), allowedNames: allowedNames}
	rh := &authenticatorfactory.RequestHeaderConfig{
		UsernameHeaders:     headerrequest.StaticStringSlice{"X-Remote-User"},
		UIDHeaders:          headerrequest.StaticStringSlice{"X-Remote-Uid"},
		GroupHeaders:        headerrequest.StaticStringSlice{"X-Remote-Group"},
		ExtraHeaderPrefixes: headerrequest.StaticStringSlice{"X-Remote-Extra-"},
		CAContentProvider:   s.ca,
		AllowedClientNames: headerrequest.StringSliceProviderFunc(func() []string {
			s.mu.Lock()
			defer s.mu.Unlock()
			return s.allowedNames
		}),
	}
	newUpstream := func() authenticator.Request {
		a, _, err := authenticatorfactory.DelegatingAuthenticatorConfig{
			Anonymous:           &apiserver.AnonymousAuthConfig{Enabled: true},
			RequestHeaderConfig: rh,
		}.New()
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	s.upstream = newUpstream()
	s.cached = NewAuthenticator(newUpstream(), rh, DefaultCacheSize)
	return s
}

func (s *server) setAllowedNames(names ...string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.allowedNames = names
}

// request is what a client sends: its certificate chain and headers.
type request struct {
	chain   []*x509.Certificate
	headers map[string][]string
}

func (r request) build() *http.Request {
	req := httptest.NewRequest(http.MethodPost, "/apis/signals.remediation.io/v1/signals", nil)
	if len(r.chain) > 0 {
		req.TLS = &tls.ConnectionState{PeerCertificates: r.chain}
	}
	for k, vs := range r.headers {
		for _, v := range vs {
			req.Header.Add(k, v)
		}
	}
	return req
}

// answer is an authenticator's decision and what it left of the headers.
type answer struct {
	ok      bool
	err     bool
	user    *user.DefaultInfo
	headers http.Header
}

func decide(a authenticator.Request, r request) answer {
	req := r.build()
	resp, ok, err := a.AuthenticateRequest(req)
	ans := answer{ok: ok, err: err != nil, headers: req.Header}
	if resp != nil {
		ans.user = &user.DefaultInfo{Name: resp.User.GetName(), UID: resp.User.GetUID(), Groups: resp.User.GetGroups(), Extra: resp.User.GetExtra()}
	}
	return ans
}

// authenticate sends r to both and fails unless they decide alike; it
// returns the decision.
func (s *server) authenticate(t *testing.T, r request) answer {
	t.Helper()
	cached, upstream := decide(s.cached, r), decide(s.upstream, r)
	if !reflect.DeepEqual(cached, upstream) {
		t.Fatalf("cached authenticator answered %+v (user %+v), k8s.io/apiserver's %+v (user %+v)", cached, cached.user, upstream, upstream.user)
	}
	return cached
}

var alice = map[string][]string{
	"X-Remote-User":         {"alice"},
	"X-Remote-Uid":          {"a-1"},
	"X-Remote-Group":        {"devs", "oncall"},
	"X-Remote-Extra-Scopes": {"signals"},
}

func TestAuthenticatorAnswersAsUpstreamDoes(t *testing.T) {
	frontProxyCA := newRootCA(t, "front-proxy-ca")
	foreignCA := newRootCA(t, "front-proxy-ca")
	intermediate := frontProxyCA.issue(t, certSpec{commonName: "intermediate", isCA: true})
	proxy := frontProxyCA.issue(t, certSpec{commonName: "front-proxy-client"})
	now := time.Now()

	wantAlice := &user.DefaultInfo{Name: "alice", UID: "a-1", Groups: []string{"devs", "oncall", user.AllAuthenticated}, Extra: map[string][]string{"scopes": {"signals"}}}
	anonymous := &user.DefaultInfo{Name: user.Anonymous, Groups: []string{user.AllUnauthenticated}}
	tests := []struct {
		name    string
		request request
		// want is the user both decide on, nil for an error.
		want *user.DefaultInfo
	}{
		{"the front proxy", request{chain(proxy), alice}, wantAlice},
		{"the front proxy via an intermediate", request{chain(intermediate.issue(t, certSpec{commonName: "front-proxy-client"}), intermediate), alice}, wantAlice},
		{"forged headers without a certificate", request{nil, alice}, anonymous},
		{"a foreign CA", request{chain(foreignCA.issue(t, certSpec{commonName: "front-proxy-client"})), alice}, nil},
		{"an expired certificate", request{chain(frontProxyCA.issue(t, certSpec{commonName: "front-proxy-client", notBefore: now.Add(-2 * time.Hour), notAfter: now.Add(-time.Hour)})), alice}, nil},
		{"a certificate not valid yet", request{chain(frontProxyCA.issue(t, certSpec{commonName: "front-proxy-client", notBefore: now.Add(time.Hour)})), alice}, nil},
		{"a server certificate", request{chain(frontProxyCA.issue(t, certSpec{commonName: "front-proxy-client", usage: x509.ExtKeyUsageServerAuth})), alice}, nil},
		{"a name not allowed", request{chain(frontProxyCA.issue(t, certSpec{commonName: "kubelet"})), alice}, nil},
		{"the front proxy without an identity", request{chain(proxy), nil}, anonymous},
		{"the front proxy naming system:anonymous", request{chain(proxy), map[string][]string{"X-Remote-User": {user.Anonymous}}}, &user.DefaultInfo{Name: user.Anonymous, Groups: []string{}, Extra: map[string][]string{}}},
	}
	s := newServer(t, bundle(t, frontProxyCA), "front-proxy-client")
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Three times: the first verifies, the others may be answered
			// from the cache, and must not differ.
			for range 3 {
				got := s.authenticate(t, tt.request)
				switch {
				case tt.want == nil && (got.ok || !got.err):
					t.Fatalf("got ok=%v err=%v, want an error", got.ok, got.err)
				case tt.want != nil && (!got.ok || got.err || !reflect.DeepEqual(got.user, tt.want)):
					t.Fatalf("got ok=%v err=%v user %+v, want %+v", got.ok, got.err, got.user, tt.want)
				}
			}
		})
	}
}

func TestAuthenticatorUsesTheCache(t *testing.T) {
	frontProxyCA := newRootCA(t, "front-proxy-ca")
	proxy := frontProxyCA.issue(t, certSpec{commonName: "front-proxy-client"})
	s := newServer(t, bundle(t, frontProxyCA), "front-proxy-client")

	before := snapshot(t)
	bob := map[string][]string{"X-Remote-User": {"bob"}}
	for i := range 10 {
		headers := alice
		if i%2 == 1 {
			headers = bob
		}
		got := decide(s.cached, request{chain(proxy), headers})
		// The identity comes from each request's own headers, and they are
		// cleared as k8s.io/apiserver clears them.
		if !got.ok || got.user.Name != headers["X-Remote-User"][0] || len(got.headers) != 0 {
			t.Fatalf("request %d: got ok=%v user %+v headers %v", i, got.ok, got.user, got.headers)
		}
	}
	expectResults(t, before, map[string]float64{resultVerified: 1, resultCached: 9})
}

func TestAuthenticatorReadsAllowedNamesOnEveryRequest(t *testing.T) {
	frontProxyCA := newRootCA(t, "front-proxy-ca")
	proxy := frontProxyCA.issue(t, certSpec{commonName: "front-proxy-client"})
	other := frontProxyCA.issue(t, certSpec{commonName: "other-proxy"})
	s := newServer(t, bundle(t, frontProxyCA), "front-proxy-client", "other-proxy")
	for range 2 {
		if got := s.authenticate(t, request{chain(other), alice}); !got.ok {
			t.Fatal("other-proxy refused while allowed")
		}
	}

	// Its chain stays verified; its name is no longer allowed.
	s.setAllowedNames("front-proxy-client")
	if got := s.authenticate(t, request{chain(other), alice}); got.ok || !got.err {
		t.Fatalf("other-proxy got ok=%v err=%v after its name was removed, want an error", got.ok, got.err)
	}
	if got := s.authenticate(t, request{chain(proxy), alice}); !got.ok {
		t.Fatal("front-proxy-client refused")
	}
	// An empty list allows every name, in both.
	s.setAllowedNames()
	if got := s.authenticate(t, request{chain(other), alice}); !got.ok {
		t.Fatal("other-proxy refused with an empty list of allowed names")
	}
}

func TestAuthenticatorFollowsTheCA(t *testing.T) {
	frontProxyCA := newRootCA(t, "front-proxy-ca")
	addedCA := newRootCA(t, "added-front-proxy-ca")
	proxy := frontProxyCA.issue(t, certSpec{commonName: "front-proxy-client"})
	added := addedCA.issue(t, certSpec{commonName: "front-proxy-client"})
	s := newServer(t, bundle(t, frontProxyCA), "front-proxy-client")

	if got := s.authenticate(t, request{chain(added), alice}); got.ok {
		t.Fatal("a chain of a CA not in the bundle was accepted")
	}
	s.ca.reload(t, bundle(t, frontProxyCA, addedCA))
	for range 3 {
		if got := s.authenticate(t, request{chain(added), alice}); !got.ok {
			t.Fatal("a chain of the added CA was refused")
		}
	}
	// Removed: refused by the first request after the reload.
	s.ca.reload(t, bundle(t, frontProxyCA))
	if got := s.authenticate(t, request{chain(added), alice}); got.ok || !got.err {
		t.Fatalf("a chain of the removed CA got ok=%v err=%v, want an error", got.ok, got.err)
	}
	if got := s.authenticate(t, request{chain(proxy), alice}); !got.ok {
		t.Fatal("the front proxy was refused")
	}
}

func TestAuthenticatorFollowsExpiry(t *testing.T) {
	// k8s.io/apiserver reads the real clock, so this certificate really
	// expires: a second after it verified.
	frontProxyCA := newRootCA(t, "front-proxy-ca")
	notAfter := time.Now().Add(time.Second).Truncate(time.Second).Add(time.Second)
	shortLived := frontProxyCA.issue(t, certSpec{commonName: "front-proxy-client", notAfter: notAfter})
	s := newServer(t, bundle(t, frontProxyCA), "front-proxy-client")
	for range 2 {
		if got := s.authenticate(t, request{chain(shortLived), alice}); !got.ok {
			t.Fatal("refused before it expired")
		}
	}
	time.Sleep(time.Until(notAfter) + 10*time.Millisecond)
	if got := s.authenticate(t, request{chain(shortLived), alice}); got.ok || !got.err {
		t.Fatalf("got ok=%v err=%v after it expired, want an error", got.ok, got.err)
	}
}
