package server

import (
	"net/http"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/user"
)

// anonymousPaths are the only paths an unauthenticated request may reach:
// kubelet probes carry no credentials.
var anonymousPaths = map[string]bool{"/healthz": true, "/livez": true, "/readyz": true}

// healthOnlyAnonymous turns anonymous authentication off everywhere but the
// health endpoints, so a request without valid credentials gets 401 instead
// of being authorized as system:anonymous. k8s.io/apiserver's delegated
// authentication always enables anonymous authentication, whatever
// DelegatingAuthenticationOptions.Anonymous says.
func healthOnlyAnonymous(inner authenticator.Request) authenticator.Request {
	return authenticator.RequestFunc(func(req *http.Request) (*authenticator.Response, bool, error) {
		resp, ok, err := inner.AuthenticateRequest(req)
		if ok && resp.User.GetName() == user.Anonymous && !anonymousPaths[req.URL.Path] {
			return nil, false, nil
		}
		return resp, ok, err
	})
}
