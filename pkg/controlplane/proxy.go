package controlplane

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"path/filepath"
	"sync"

	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/sets"
	"k8s.io/apiserver/pkg/endpoints/request"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/client-go/util/cert"
)

// gatedResource is the resource whose watches a Proxy can pause.
const gatedResource = "remediationrequests"

// Proxy is a fault-injecting HTTPS proxy between signal-apiserver processes
// and kube-apiserver. A server started with ThroughProxy talks to
// kube-apiserver only through it: the proxy terminates TLS with a CA of its
// own and forwards every request with the server's own client certificate,
// so the server's identity and RBAC are what they would be without it.
//
// It holds requests a test chooses until the test releases them (a write
// that reaches kube-apiserver late), and pauses the watches of
// RemediationRequests (an informer that lags), buffering their events in
// order until they are resumed.
type Proxy struct {
	// Name names the proxy; its kubeconfig is <StateDir>/<Name>.kubeconfig.
	Name string

	kubeconfig string
	caPEM      []byte
	host       string
	server     *http.Server
	forward    *httputil.ReverseProxy
	infos      *request.RequestInfoFactory

	mu sync.Mutex
	// cond is broadcast on every change of the fields below and of the
	// streams' queues.
	cond    *sync.Cond
	closed  bool
	holds   []*Hold
	held    []*HeldRequest
	paused  bool
	trigger *pauseTrigger
}

// Request is what a Proxy knows of a request, as kube-apiserver's own
// request info names it.
type Request struct {
	// Method and Path are the HTTP method and URL path.
	Method, Path string
	// Verb is get, list, watch, create, update, patch, delete or
	// deletecollection for resource requests, the lowercased method otherwise.
	Verb string
	// APIGroup, Resource, Subresource, Namespace and Name are empty where
	// the request has none.
	APIGroup, Resource, Subresource, Namespace, Name string
}

// WatchEvent is what a Proxy knows of one event of a watch it forwards.
type WatchEvent struct {
	// Type is ADDED, MODIFIED, DELETED, BOOKMARK or ERROR.
	Type            string
	Namespace, Name string
	UID             types.UID
	ResourceVersion string
	raw             []byte
}

// pauseTrigger pauses the watches right after an event that matches.
type pauseTrigger struct {
	match func(WatchEvent) bool
	fired chan WatchEvent
}

// StartProxy starts a Proxy on a free loopback port, in front of this
// control plane's kube-apiserver, and writes its kubeconfig. Stop closes it;
// so does Close.
func (c *ControlPlane) StartProxy(name string) (*Proxy, error) {
	ca, err := newCA(name + "-ca")
	if err != nil {
		return nil, err
	}
	serving, err := ca.sign(cert.Config{
		CommonName: name,
		AltNames:   cert.AltNames{DNSNames: []string{"localhost"}, IPs: []net.IP{net.IPv4(127, 0, 0, 1)}},
		Usages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	servingCert, err := tls.X509KeyPair(serving.certPEM, serving.keyPEM)
	if err != nil {
		return nil, err
	}
	upstream, err := url.Parse(c.serverConfig.Host)
	if err != nil {
		return nil, err
	}
	// The server's own credentials: kube-apiserver sees the same user.
	rt, err := rest.TransportFor(c.serverConfig)
	if err != nil {
		return nil, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{
		Name:       name,
		kubeconfig: filepath.Join(c.opts.StateDir, name+".kubeconfig"),
		caPEM:      ca.certPEM,
		host:       "https://" + l.Addr().String(),
		infos: &request.RequestInfoFactory{
			APIPrefixes:          sets.NewString("api", "apis"),
			GrouplessAPIPrefixes: sets.NewString("api"),
		},
	}
	p.cond = sync.NewCond(&p.mu)
	p.forward = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(upstream)
			// Uncompressed answers: kube-apiserver may gzip a watch list,
			// and the gate reads the events.
			r.Out.Header.Set("Accept-Encoding", "identity")
		},
		Transport:      rt,
		FlushInterval:  -1,
		ModifyResponse: p.gateWatch,
		ErrorHandler: func(w http.ResponseWriter, _ *http.Request, err error) {
			http.Error(w, err.Error(), http.StatusBadGateway)
		},
	}
	p.server = &http.Server{
		Handler:   http.HandlerFunc(p.serveHTTP),
		TLSConfig: &tls.Config{Certificates: []tls.Certificate{servingCert}, MinVersion: tls.VersionTLS12},
	}
	if err := p.writeKubeconfig(); err != nil {
		l.Close()
		return nil, err
	}
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		l.Close()
		return nil, errors.New("controlplane: stopped")
	}
	c.proxies = append(c.proxies, p)
	c.mu.Unlock()
	go func() { _ = p.server.ServeTLS(l, "", "") }()
	return p, nil
}

// ThroughProxy is an extra argument of StartServer that makes the server
// reach kube-apiserver for everything but authentication and authorization
// through p: it points --kubeconfig at p (the later flag wins). A restarted
// server keeps it.
func ThroughProxy(p *Proxy) string { return "--kubeconfig=" + p.kubeconfig }

// RESTConfig returns a config that reaches kube-apiserver through p, as
// signal-apiserver's user.
func (p *Proxy) RESTConfig() *rest.Config {
	return &rest.Config{Host: p.host, TLSClientConfig: rest.TLSClientConfig{CAData: p.caPEM}, QPS: 1000, Burst: 2000}
}

func (p *Proxy) writeKubeconfig() error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["proxy"] = &clientcmdapi.Cluster{Server: p.host, CertificateAuthorityData: p.caPEM}
	// No credentials: the proxy authenticates upstream as the server.
	kc.AuthInfos["signal-apiserver"] = &clientcmdapi.AuthInfo{}
	kc.Contexts["proxy"] = &clientcmdapi.Context{Cluster: "proxy", AuthInfo: "signal-apiserver"}
	kc.CurrentContext = "proxy"
	return clientcmd.WriteToFile(*kc, p.kubeconfig)
}

// Unblock stops every hold, releases every held request and resumes the
// watches: the proxy forwards everything from now on. A spec that failed
// half-way calls it before stopping its server, so that the server's
// requests in flight end at once.
func (p *Proxy) Unblock() {
	p.mu.Lock()
	for _, h := range p.holds {
		h.stopped = true
	}
	held := p.held
	p.held = nil
	p.paused = false
	p.trigger = nil
	p.cond.Broadcast()
	p.mu.Unlock()
	for _, r := range held {
		r.Release()
	}
}

// Close unblocks the proxy and closes its listener and every connection.
// Calling it again does nothing.
func (p *Proxy) Close() error {
	p.Unblock()
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	p.cond.Broadcast()
	p.mu.Unlock()
	return p.server.Close()
}

func (p *Proxy) serveHTTP(w http.ResponseWriter, req *http.Request) {
	r := p.describe(req)
	if held := p.hold(r); held != nil {
		select {
		case <-held.released:
		case <-req.Context().Done():
			held.answer(0)
			return
		}
		rec := &statusRecorder{ResponseWriter: w}
		defer func() { held.answer(rec.code) }()
		w = rec
	}
	p.forward.ServeHTTP(w, req)
}

func (p *Proxy) describe(req *http.Request) Request {
	r := Request{Method: req.Method, Path: req.URL.Path}
	info, err := p.infos.NewRequestInfo(req)
	if err != nil {
		return r
	}
	r.Verb = info.Verb
	r.APIGroup, r.Resource, r.Subresource = info.APIGroup, info.Resource, info.Subresource
	r.Namespace, r.Name = info.Namespace, info.Name
	return r
}

// statusRecorder remembers the status code of an answer. It keeps Flush,
// which the reverse proxy needs for streams.
type statusRecorder struct {
	http.ResponseWriter
	code int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.code == 0 {
		r.code = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.code == 0 {
		r.code = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }

// Hold holds the requests that match, from now until Stop, each until it is
// released.
type Hold struct {
	p       *Proxy
	match   func(Request) bool
	next    chan *HeldRequest
	stopped bool
}

// HeldRequest is one request a Hold holds.
type HeldRequest struct {
	Request
	releaseOnce sync.Once
	released    chan struct{}
	answered    chan struct{}
	code        int
}

// Hold starts holding the requests that match: each waits at the proxy,
// not yet forwarded, until it is released (or its client gives up).
func (p *Proxy) Hold(match func(Request) bool) *Hold {
	h := &Hold{p: p, match: match, next: make(chan *HeldRequest, 1024)}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.closed {
		p.holds = append(p.holds, h)
	}
	return h
}

func (p *Proxy) hold(r Request) *HeldRequest {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, h := range p.holds {
		if h.stopped || !h.match(r) {
			continue
		}
		held := &HeldRequest{Request: r, released: make(chan struct{}), answered: make(chan struct{})}
		select {
		case h.next <- held:
		default:
			// Nobody is reading: never hold what no one can release.
			return nil
		}
		p.held = append(p.held, held)
		return held
	}
	return nil
}

// Next waits until the hold holds a request and returns it, in the order
// they arrived.
func (h *Hold) Next(ctx context.Context) (*HeldRequest, error) {
	select {
	case r := <-h.next:
		return r, nil
	case <-ctx.Done():
		return nil, fmt.Errorf("waiting for a held request at %s: %w", h.p.Name, ctx.Err())
	}
}

// Stop makes the hold hold no more requests. Requests it holds stay held
// until released.
func (h *Hold) Stop() {
	h.p.mu.Lock()
	defer h.p.mu.Unlock()
	h.stopped = true
}

// Release forwards the request to kube-apiserver. Releasing it again does
// nothing.
func (r *HeldRequest) Release() {
	r.releaseOnce.Do(func() { close(r.released) })
}

// Answer waits until kube-apiserver's answer to the released request was
// passed on and returns its HTTP status code; 0 means the client gave up
// before the request was released.
func (r *HeldRequest) Answer(ctx context.Context) (int, error) {
	select {
	case <-r.answered:
		return r.code, nil
	case <-ctx.Done():
		return 0, fmt.Errorf("waiting for the answer to %s %s: %w", r.Method, r.Path, ctx.Err())
	}
}

func (r *HeldRequest) answer(code int) {
	r.code = code
	close(r.answered)
}

// PauseWatches stops forwarding the events of RemediationRequest watches,
// including watches opened later; they are buffered in order until
// ResumeWatches.
func (p *Proxy) PauseWatches() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = true
	p.cond.Broadcast()
}

// ResumeWatches forwards the buffered events and every later one.
func (p *Proxy) ResumeWatches() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paused = false
	p.cond.Broadcast()
}

// PauseWatchesAfter pauses the RemediationRequest watches right after the
// first event that matches has been forwarded, from whichever state they
// are in now (a paused watch first needs ResumeWatches). The channel
// receives that event when the pause has taken effect: every later event of
// its stream is buffered.
func (p *Proxy) PauseWatchesAfter(match func(WatchEvent) bool) <-chan WatchEvent {
	t := &pauseTrigger{match: match, fired: make(chan WatchEvent, 1)}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trigger = t
	return t.fired
}

// gateWatch replaces the body of a RemediationRequest watch by one that
// forwards its events only while the watches are not paused.
func (p *Proxy) gateWatch(resp *http.Response) error {
	r := p.describe(resp.Request)
	if r.Verb != "watch" || r.Resource != gatedResource || resp.StatusCode != http.StatusOK {
		return nil
	}
	s := &watchStream{p: p, upstream: resp.Body}
	pr, pw := io.Pipe()
	resp.Body = &gatedBody{PipeReader: pr, s: s}
	go s.read()
	go s.write(pw)
	return nil
}

// watchStream is one watch's events, read from kube-apiserver as they come
// and forwarded as the gate allows.
type watchStream struct {
	p        *Proxy
	upstream io.ReadCloser

	// Guarded by p.mu.
	queue []WatchEvent
	// end is why kube-apiserver's stream ended, once it has.
	end    error
	closed bool
}

// read decodes the stream of JSON watch events (custom resources are JSON
// unless a client negotiates CBOR, which client-go does not by default).
func (s *watchStream) read() {
	dec := json.NewDecoder(s.upstream)
	for {
		var raw json.RawMessage
		err := dec.Decode(&raw)
		s.p.mu.Lock()
		if err != nil {
			s.end = err
			s.p.cond.Broadcast()
			s.p.mu.Unlock()
			return
		}
		s.queue = append(s.queue, decodeEvent(raw))
		s.p.cond.Broadcast()
		s.p.mu.Unlock()
	}
}

func decodeEvent(raw []byte) WatchEvent {
	var ev struct {
		Type   string `json:"type"`
		Object struct {
			Metadata struct {
				Namespace       string    `json:"namespace"`
				Name            string    `json:"name"`
				UID             types.UID `json:"uid"`
				ResourceVersion string    `json:"resourceVersion"`
			} `json:"metadata"`
		} `json:"object"`
	}
	_ = json.Unmarshal(raw, &ev)
	m := ev.Object.Metadata
	return WatchEvent{Type: ev.Type, Namespace: m.Namespace, Name: m.Name, UID: m.UID, ResourceVersion: m.ResourceVersion, raw: raw}
}

// write forwards events while the watches are not paused, and ends the
// stream after the last one once kube-apiserver ended it.
func (s *watchStream) write(pw *io.PipeWriter) {
	p := s.p
	for {
		p.mu.Lock()
		for !s.closed && !p.closed && (p.paused || (len(s.queue) == 0 && s.end == nil)) {
			p.cond.Wait()
		}
		if s.closed || p.closed {
			p.mu.Unlock()
			pw.CloseWithError(errors.New("proxy closed"))
			return
		}
		if len(s.queue) == 0 {
			end := s.end
			p.mu.Unlock()
			if errors.Is(end, io.EOF) {
				end = nil
			}
			pw.CloseWithError(end)
			return
		}
		ev := s.queue[0]
		s.queue = s.queue[1:]
		p.mu.Unlock()

		if _, err := pw.Write(append(ev.raw, '\n')); err != nil {
			return
		}

		p.mu.Lock()
		if t := p.trigger; t != nil && t.match(ev) {
			p.trigger = nil
			p.paused = true
			t.fired <- ev
		}
		p.mu.Unlock()
	}
}

// gatedBody is the body the client reads; closing it (the client went
// away) stops the stream.
type gatedBody struct {
	*io.PipeReader
	s *watchStream
}

func (b *gatedBody) Close() error {
	b.s.p.mu.Lock()
	b.s.closed = true
	b.s.p.cond.Broadcast()
	b.s.p.mu.Unlock()
	b.s.upstream.Close()
	return b.PipeReader.Close()
}
