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
// namespace's own, loopback and the machine's, before starting anything.
func TestRunRefusesEndpointsOutsideItsNamespace(t *testing.T) {
	candidates := []net.IP{netns.Address, net.IPv4(127, 0, 0, 1)}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipNet, ok := a.(*net.IPNet); ok && ipNet.IP.To4() != nil {
			candidates = append(candidates, ipNet.IP.To4())
		}
	}
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
