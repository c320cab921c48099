// Package frontproxy authenticates the requests kube-apiserver's aggregator
// proxies to this server without verifying its front-proxy client
// certificate afresh on every request.
//
// k8s.io/apiserver's request-header authenticator verifies the presented
// chain against the request-header CA (an ECDSA or RSA signature check and
// chain building) on every request, although the aggregator presents the
// same long-lived certificate each time (kubernetes/kubernetes#90533). This
// package remembers successful verifications (Verifications) and answers
// those requests itself, exactly as the request-header authenticator would;
// everything else goes to the server's authenticator, unchanged.
// docs/security.md argues why it accepts nothing that the uncached path
// refuses.
package frontproxy

import (
	"net/http"
	"slices"

	"k8s.io/apiserver/pkg/authentication/authenticator"
	"k8s.io/apiserver/pkg/authentication/authenticatorfactory"
	"k8s.io/apiserver/pkg/authentication/group"
	"k8s.io/apiserver/pkg/authentication/request/headerrequest"
)

// Authenticator answers requests whose client certificate chain verified
// against the current request-header CA, whose leaf has an allowed common
// name and which name a user in the identity headers; it hands every other
// request to the authenticator it wraps.
type Authenticator struct {
	// inner is the server's own authenticator, request-header
	// authentication included: the authority for everything not answered
	// here.
	inner authenticator.Request
	// headers reads the identity headers as the request-header
	// authenticator does, and adds system:authenticated as the server's
	// authenticator does.
	headers       authenticator.Request
	allowedNames  headerrequest.StringSliceProvider
	verifications *Verifications
}

// NewAuthenticator wraps inner, the authenticator that k8s.io/apiserver's
// delegated authentication built with request-header configuration rh
// (front-proxy first, then client certificates, then tokens, then
// anonymous). It remembers up to cacheSize verified chains.
func NewAuthenticator(inner authenticator.Request, rh *authenticatorfactory.RequestHeaderConfig, cacheSize int) *Authenticator {
	return &Authenticator{
		inner:         inner,
		headers:       group.NewAuthenticatedGroupAdder(headerrequest.NewDynamic(rh.UsernameHeaders, rh.UIDHeaders, rh.GroupHeaders, rh.ExtraHeaderPrefixes)),
		allowedNames:  rh.AllowedClientNames,
		verifications: NewVerifications(rh.CAContentProvider, cacheSize),
	}
}

// AuthenticateRequest implements authenticator.Request.
//
// The answer given here is the one inner would give: inner asks its
// request-header authenticator first, which verifies the chain, then checks
// the leaf's common name against the allowed names, then reads the identity
// headers; if all three succeed, that is inner's answer, with
// system:authenticated added. Here the same three checks run in the same
// order, only the first one from the cache; the allowed names and the
// headers are read afresh on every request. Whenever a check fails, inner
// decides (the headers are only cleared on success, so inner sees them).
func (a *Authenticator) AuthenticateRequest(req *http.Request) (*authenticator.Response, bool, error) {
	if req.TLS != nil && len(req.TLS.PeerCertificates) > 0 &&
		a.verifications.Verify(req.TLS.PeerCertificates) &&
		allowed(a.allowedNames.Value(), req.TLS.PeerCertificates[0].Subject.CommonName) {
		if resp, ok, err := a.headers.AuthenticateRequest(req); ok && err == nil {
			return resp, true, nil
		}
	}
	return a.inner.AuthenticateRequest(req)
}

// allowed is x509.Verifier's subject check: an empty list allows every
// common name.
func allowed(names []string, commonName string) bool {
	return len(names) == 0 || slices.Contains(names, commonName)
}
