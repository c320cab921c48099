// Command stub-apiserver stands in for signal-apiserver in the harness's own
// test. It takes signal-apiserver's command line and does the parts that
// prove the harness right: it reads the front-proxy CA and allowed names from
// kube-system/extension-apiserver-authentication and lists RemediationRequests
// with --kubeconfig (so RBAC must allow both), trusts only front-proxy
// clients, serves discovery and an empty OpenAPI v3 document for
// signals.remediation.io/v1, and answers
// GET /apis/signals.remediation.io/v1/whoami with the proxied user.
package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"syscall"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/clientcmd"
)

func main() {
	port := flag.Int("secure-port", 0, "")
	bind := flag.String("bind-address", "", "")
	certFile := flag.String("tls-cert-file", "", "")
	keyFile := flag.String("tls-private-key-file", "", "")
	kubeconfig := flag.String("kubeconfig", "", "")
	flag.String("authentication-kubeconfig", "", "")
	flag.String("authorization-kubeconfig", "", "")
	flag.String("cluster-scoped-namespace", "", "")
	flag.Int("v", 0, "")
	flag.Parse()

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	if err := run(ctx, net.JoinHostPort(*bind, strconv.Itoa(*port)), *certFile, *keyFile, *kubeconfig); err != nil {
		log.Fatal(err)
	}
}

func run(ctx context.Context, addr, certFile, keyFile, kubeconfig string) error {
	cfg, err := clientcmd.BuildConfigFromFlags("", kubeconfig)
	if err != nil {
		return err
	}
	core, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	var clientCAs *x509.CertPool
	var allowedNames []string
	err = wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 30*time.Second, true, func(ctx context.Context) (bool, error) {
		cm, err := core.CoreV1().ConfigMaps("kube-system").Get(ctx, "extension-apiserver-authentication", metav1.GetOptions{})
		if err != nil {
			log.Printf("reading extension-apiserver-authentication: %v", err)
			return false, nil
		}
		clientCAs = x509.NewCertPool()
		if !clientCAs.AppendCertsFromPEM([]byte(cm.Data["requestheader-client-ca-file"])) {
			return false, errors.New("no requestheader-client-ca-file")
		}
		return true, json.Unmarshal([]byte(cm.Data["requestheader-allowed-names"]), &allowedNames)
	})
	if err != nil {
		return err
	}

	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		return err
	}
	rrs := schema.GroupVersionResource{Group: "remediation.io", Version: "v1alpha1", Resource: "remediationrequests"}
	ready := make(chan struct{})
	go func() {
		_ = wait.PollUntilContextCancel(ctx, 100*time.Millisecond, true, func(ctx context.Context) (bool, error) {
			if _, err := dyn.Resource(rrs).List(ctx, metav1.ListOptions{}); err != nil {
				log.Printf("listing remediationrequests: %v", err)
				return false, nil
			}
			close(ready)
			return true, nil
		})
	}()

	mux := http.NewServeMux()
	mux.HandleFunc("/readyz", func(w http.ResponseWriter, _ *http.Request) {
		select {
		case <-ready:
			fmt.Fprint(w, "ok")
		default:
			http.Error(w, "remediationrequests not listed yet", http.StatusServiceUnavailable)
		}
	})
	mux.HandleFunc("/livez", func(w http.ResponseWriter, _ *http.Request) { fmt.Fprint(w, "ok") })
	mux.HandleFunc("/apis", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, metav1.APIGroupList{
			TypeMeta: metav1.TypeMeta{Kind: "APIGroupList", APIVersion: "v1"},
			Groups:   []metav1.APIGroup{group},
		})
	})
	mux.HandleFunc("/apis/signals.remediation.io", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, group)
	})
	mux.HandleFunc("/apis/signals.remediation.io/v1", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, metav1.APIResourceList{
			TypeMeta:     metav1.TypeMeta{Kind: "APIResourceList", APIVersion: "v1"},
			GroupVersion: "signals.remediation.io/v1",
			APIResources: []metav1.APIResource{{Name: "signals", Kind: "Signal", Verbs: metav1.Verbs{"create"}}},
		})
	})
	mux.HandleFunc("/openapi/v3", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"paths": map[string]any{
			"apis/signals.remediation.io/v1": map[string]string{"serverRelativeURL": "/openapi/v3/apis/signals.remediation.io/v1?hash=stub"},
		}})
	})
	mux.HandleFunc("/openapi/v3/apis/signals.remediation.io/v1", func(w http.ResponseWriter, _ *http.Request) {
		writeJSON(w, map[string]any{"openapi": "3.0.0", "info": map[string]string{"title": "stub-apiserver", "version": "v1"}, "paths": map[string]any{}})
	})
	mux.HandleFunc("/apis/signals.remediation.io/v1/whoami", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, map[string]any{"user": r.Header.Get("X-Remote-User"), "groups": r.Header.Values("X-Remote-Group")})
	})

	srv := &http.Server{
		Addr:              addr,
		Handler:           frontProxyOnly(allowedNames, mux),
		ReadHeaderTimeout: 10 * time.Second,
		TLSConfig:         &tls.Config{ClientAuth: tls.VerifyClientCertIfGiven, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12},
	}
	go func() {
		<-ctx.Done()
		shutdownCtx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(shutdownCtx)
	}()
	if err := srv.ListenAndServeTLS(certFile, keyFile); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

var group = metav1.APIGroup{
	TypeMeta:         metav1.TypeMeta{Kind: "APIGroup", APIVersion: "v1"},
	Name:             "signals.remediation.io",
	Versions:         []metav1.GroupVersionForDiscovery{{GroupVersion: "signals.remediation.io/v1", Version: "v1"}},
	PreferredVersion: metav1.GroupVersionForDiscovery{GroupVersion: "signals.remediation.io/v1", Version: "v1"},
}

// frontProxyOnly answers 401 unless the client presented a certificate from
// the front-proxy CA with an allowed name and named a user.
func frontProxyOnly(allowedNames []string, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.TLS.VerifiedChains) == 0 {
			http.Error(w, "no front-proxy client certificate", http.StatusUnauthorized)
			return
		}
		cn := r.TLS.VerifiedChains[0][0].Subject.CommonName
		if len(allowedNames) > 0 && !slices.Contains(allowedNames, cn) {
			http.Error(w, "client certificate "+cn+" is not an allowed name", http.StatusUnauthorized)
			return
		}
		if r.Header.Get("X-Remote-User") == "" {
			http.Error(w, "no X-Remote-User", http.StatusUnauthorized)
			return
		}
		next.ServeHTTP(w, r)
	})
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	if err := json.NewEncoder(w).Encode(v); err != nil {
		fmt.Fprintln(os.Stderr, err)
	}
}
