package server

import (
	"context"
	"net"
	"sync"
	"time"

	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/klog/v2"
)

// caGatedListener accepts no connection until a CA provider has content.
//
// Delegated authentication reads the front-proxy CA from a ConfigMap through
// an informer that starts with the server: for ~100 ms after it listens, the
// front-proxy certificate of kube-apiserver's aggregator cannot be verified,
// and every request in that window is anonymous and gets 401 — not an answer
// a client retries. Until the CAs are there, connections wait in the
// listen backlog instead, and are served once requests can be authenticated.
type caGatedListener struct {
	net.Listener
	ready  chan struct{}
	closed chan struct{}
	cancel context.CancelFunc
	once   sync.Once
}

// gateOnCA wraps l so that it accepts connections once ca has content.
func gateOnCA(l net.Listener, ca dynamiccertificates.CAContentProvider) net.Listener {
	ctx, cancel := context.WithCancel(context.Background())
	g := &caGatedListener{Listener: l, ready: make(chan struct{}), closed: make(chan struct{}), cancel: cancel}
	go func() {
		start := time.Now()
		err := wait.PollUntilContextCancel(ctx, 10*time.Millisecond, true, func(context.Context) (bool, error) {
			return len(ca.CurrentCABundleContent()) > 0, nil
		})
		if err == nil {
			klog.InfoS("Front-proxy CA loaded: accepting connections", "waited", time.Since(start))
			close(g.ready)
		}
	}()
	return g
}

func (g *caGatedListener) Accept() (net.Conn, error) {
	select {
	case <-g.ready:
	case <-g.closed:
		return nil, net.ErrClosed
	}
	return g.Listener.Accept()
}

func (g *caGatedListener) Close() error {
	g.once.Do(func() {
		g.cancel()
		close(g.closed)
	})
	return g.Listener.Close()
}
