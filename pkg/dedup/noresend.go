package dedup

import (
	"net/http"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/rest"
)

// WithoutResend returns c with client-go's automatic resend switched off for
// every request that writes. client-go sends a request again by itself when
// kube-apiserver answers 429 or 5xx with Retry-After, and a 504 can come
// after the write was stored: a status write sent again would then conflict
// with its own first copy, and the engine, taking the conflict for a lost
// race, would read the RemediationRequest and add the batch a second time
// while its senders get 2xx. Without the resend the engine sees the error,
// answers it to the senders (acknowledged <= count <= sent) and reads before
// its next write. Reads keep client-go's retries. Build the engine's client
// on it: remediationclient.New(WithoutResend(rest)).
func WithoutResend(c rest.Interface) rest.Interface {
	return noResend{Interface: c}
}

type noResend struct {
	rest.Interface
}

func (c noResend) Verb(verb string) *rest.Request {
	if verb == http.MethodGet {
		return c.Interface.Verb(verb)
	}
	return c.Interface.Verb(verb).MaxRetries(0)
}

func (c noResend) Post() *rest.Request   { return c.Interface.Post().MaxRetries(0) }
func (c noResend) Put() *rest.Request    { return c.Interface.Put().MaxRetries(0) }
func (c noResend) Delete() *rest.Request { return c.Interface.Delete().MaxRetries(0) }
func (c noResend) Patch(pt types.PatchType) *rest.Request {
	return c.Interface.Patch(pt).MaxRetries(0)
}
