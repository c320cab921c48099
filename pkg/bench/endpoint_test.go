package bench

import (
	"context"
	"io"
	"net"
	"strings"
	"testing"

	"github.com/signal-apiserver/signal-apiserver/pkg/bench/netns"
)

// TestRunRefusesEndpointsOutsideItsNamespace: Run registers EndpointSlices
// only at the address of its own network namespace, and only from inside
// it; from the machine's namespace it refuses every address, the
// namespace's own, loopback and any other (192.0.2.1, RFC 5737's
// documentation range: whether an address is the machine's is the netns
// package's business, tested there), before starting anything.
func TestRunRefusesEndpointsOutsideItsNamespace(t *testing.T) {
	candidates := []net.IP{netns.Address, net.IPv4(127, 0, 0, 1), net.IPv4(192, 0, 2, 1)}
	for _, ip := range candidates {
		t.Run(ip.String(), func(t *testing.T) {
			err := Run(context.Background(), Options{
				EndpointIP: ip, StateDir: t.TempDir(), Scale: 1, Sender: SenderSignalSender, Out: io.Discard, Log: io.Discard,
			})
			if err == nil || !strings.HasPrefix(err.Error(), "netns: ") {
				t.Fatalf("Run with EndpointIP %v outside its namespace = %v, want a netns refusal", ip, err)
			}
		})
	}
}
