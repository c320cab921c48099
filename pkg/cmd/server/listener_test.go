package server

import (
	"context"
	"errors"
	"net"
	"sync/atomic"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apiserver/pkg/server/dynamiccertificates"
	"k8s.io/client-go/kubernetes/fake"
)

// countingCA counts the reads of a CA provider's content, so that a test
// knows the gate has looked at it.
type countingCA struct {
	dynamiccertificates.CAContentProvider
	reads atomic.Int64
}

func (c *countingCA) CurrentCABundleContent() []byte {
	defer c.reads.Add(1)
	return c.CAContentProvider.CurrentCABundleContent()
}

// waitForReads returns once the gate has read c n more times.
func (c *countingCA) waitForReads(t *testing.T, n int64) {
	t.Helper()
	c.waitForTotalReads(t, c.reads.Load()+n)
}

// waitForTotalReads returns once the gate has read c target times.
func (c *countingCA) waitForTotalReads(t *testing.T, target int64) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for c.reads.Load() < target {
		if time.Now().After(deadline) {
			t.Fatalf("the gate read the CA %d times in 30s, want %d", c.reads.Load(), target)
		}
		time.Sleep(time.Millisecond)
	}
}

// countingListener counts the Accept calls that reach a listener.
type countingListener struct {
	net.Listener
	accepts atomic.Int64
}

func (l *countingListener) Accept() (net.Conn, error) {
	l.accepts.Add(1)
	return l.Listener.Accept()
}

type accepted struct {
	conn net.Conn
	err  error
}

func acceptInBackground(l net.Listener) <-chan accepted {
	ch := make(chan accepted, 1)
	go func() {
		conn, err := l.Accept()
		ch <- accepted{conn, err}
	}()
	return ch
}

func receive(t *testing.T, ch <-chan accepted) accepted {
	t.Helper()
	select {
	case a := <-ch:
		return a
	case <-time.After(30 * time.Second):
		t.Fatal("Accept has not returned in 30s")
		return accepted{}
	}
}

func listen(t *testing.T) *countingListener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return &countingListener{Listener: l}
}

// frontProxyCA is the front-proxy CA as delegated authentication reads it:
// from kube-system/extension-apiserver-authentication, through an informer,
// empty until the ConfigMap has a CA that parses.
func frontProxyCA(ctx context.Context, t *testing.T) (*countingCA, *fake.Clientset) {
	t.Helper()
	client := fake.NewClientset()
	ca, err := dynamiccertificates.NewDynamicCAFromConfigMapController("request-header",
		metav1.NamespaceSystem, "extension-apiserver-authentication", "requestheader-client-ca-file", client)
	if err != nil {
		t.Fatal(err)
	}
	go ca.Run(ctx, 1)
	return &countingCA{CAContentProvider: ca}, client
}

func TestCAGatedListenerAcceptsOnceTheCAIsLoaded(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	ca, client := frontProxyCA(ctx, t)
	inner := listen(t)
	gated := gateOnCA(inner, ca)
	defer gated.Close()

	got := acceptInBackground(gated)
	// The kernel completes the handshake: the client waits in the backlog.
	client1, err := net.Dial("tcp", inner.Addr().String())
	if err != nil {
		t.Fatalf("dialling before the CA is loaded: %v", err)
	}
	defer client1.Close()

	assertWaiting := func(when string) {
		t.Helper()
		ca.waitForReads(t, 5)
		if n := inner.accepts.Load(); n != 0 {
			t.Fatalf("%s: %d Accept calls reached the listener, want 0", when, n)
		}
		select {
		case a := <-got:
			t.Fatalf("%s: Accept returned %v, %v; want it to wait", when, a.conn, a.err)
		default:
		}
	}
	assertWaiting("no ConfigMap")

	cm := &corev1.ConfigMap{
		ObjectMeta: metav1.ObjectMeta{Namespace: metav1.NamespaceSystem, Name: "extension-apiserver-authentication"},
		Data:       map[string]string{"requestheader-client-ca-file": "not a certificate"},
	}
	if _, err := client.CoreV1().ConfigMaps(cm.Namespace).Create(ctx, cm, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	// A CA that does not parse is not loaded: nothing could be verified.
	assertWaiting("a ConfigMap without a valid CA")

	cm.Data["requestheader-client-ca-file"] = string(newTestCA(t, "front-proxy-ca").pem)
	if _, err := client.CoreV1().ConfigMaps(cm.Namespace).Update(ctx, cm, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
	a := receive(t, got)
	if a.err != nil {
		t.Fatalf("Accept: %v", a.err)
	}
	defer a.conn.Close()
	if a.conn.RemoteAddr().String() != client1.LocalAddr().String() {
		t.Errorf("accepted %v, want the client that waited, %v", a.conn.RemoteAddr(), client1.LocalAddr())
	}
	if n := inner.accepts.Load(); n != 1 {
		t.Errorf("%d Accept calls reached the listener, want 1", n)
	}
}

func TestCAGatedListenerClose(t *testing.T) {
	validCA := newTestCA(t, "front-proxy-ca").pem
	tests := []struct {
		name string
		ca   []byte // the CA's content; empty: never loaded
	}{
		{name: "before the CA is loaded"},
		{name: "after the CA is loaded", ca: validCA},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			provider := dynamiccertificates.NewUnionCAContentProvider()
			if tt.ca != nil {
				var err error
				if provider, err = dynamiccertificates.NewStaticCAContent("front-proxy-ca", tt.ca); err != nil {
					t.Fatal(err)
				}
			}
			ca := &countingCA{CAContentProvider: provider}
			inner := listen(t)
			gated := gateOnCA(inner, ca)
			// The gate has looked at the CA: a loaded one opened it.
			ca.waitForTotalReads(t, 1)
			got := acceptInBackground(gated)

			if err := gated.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
			if a := receive(t, got); !errors.Is(a.err, net.ErrClosed) {
				t.Errorf("a waiting Accept returned %v, %v; want net.ErrClosed", a.conn, a.err)
			}
			if conn, err := gated.Accept(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("Accept after Close returned %v, %v; want net.ErrClosed", conn, err)
			}
			// The listener itself is closed.
			if conn, err := net.Dial("tcp", inner.Addr().String()); err == nil {
				conn.Close()
				t.Error("dialled the listener after Close")
			}
			// Closing twice is the inner listener's answer, not a panic.
			if err := gated.Close(); !errors.Is(err, net.ErrClosed) {
				t.Errorf("second Close: %v, want net.ErrClosed", err)
			}
			if tt.ca == nil {
				// The gate stops reading the CA (every 10 ms until then):
				// at most one read was under way when Close returned.
				reads := ca.reads.Load()
				time.Sleep(100 * time.Millisecond)
				if n := ca.reads.Load(); n > reads+1 {
					t.Errorf("the gate read the CA %d more times after Close, want at most 1", n-reads)
				}
			}
		})
	}
}
