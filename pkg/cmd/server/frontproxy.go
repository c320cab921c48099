package server

import (
	"k8s.io/apiserver/pkg/authentication/authenticator"
	genericapiserver "k8s.io/apiserver/pkg/server"

	"github.com/signal-apiserver/signal-apiserver/pkg/frontproxy"
)

// cacheFrontProxyVerifications returns the server's authenticator with the
// verification of kube-apiserver's front-proxy client certificate cached
// (pkg/frontproxy, docs/security.md): the aggregator presents the same
// certificate on every request it proxies. Without request-header
// configuration there is nothing to cache.
func cacheFrontProxyVerifications(info genericapiserver.AuthenticationInfo) authenticator.Request {
	if info.RequestHeaderConfig == nil {
		return info.Authenticator
	}
	return frontproxy.NewAuthenticator(info.Authenticator, info.RequestHeaderConfig, frontproxy.DefaultCacheSize)
}
