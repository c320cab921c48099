package server

import (
	"slices"
	"testing"
	"time"

	genericapiserver "k8s.io/apiserver/pkg/server"
	"k8s.io/client-go/rest"

	"github.com/signal-apiserver/signal-apiserver/pkg/servingcert"
)

func TestServingCertDefaults(t *testing.T) {
	o := parse(t).ServingCert
	want := ServingCertOptions{
		Validity:          24 * time.Hour,
		CARotateBefore:    365 * 24 * time.Hour,
		CAActivationDelay: 10 * time.Minute,
		SyncPeriod:        time.Minute,
	}
	if *o != want {
		t.Errorf("defaults %+v, want %+v", *o, want)
	}
	if o.Enabled() {
		t.Error("enabled by default, want off (the generic --tls-cert-file and --cert-dir apply)")
	}
}

func TestServingCertValidate(t *testing.T) {
	const notLabel = "a lowercase RFC 1123 label must consist of lower case alphanumeric characters or '-', and must start and end with an alphanumeric character (e.g. 'my-name',  or '123-abc', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?')"
	const notSubdomain = "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', and must start and end with an alphanumeric character (e.g. 'example.com', regex used for validation is '[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*')"
	tests := []struct {
		name        string
		args        []string
		tlsCertFile string
		want        []string
	}{
		{name: "off"},
		{
			name: "off, bad durations ignored",
			args: []string{"--serving-cert-validity=1s", "--serving-ca-sync-period=0"},
		},
		{name: "on", args: []string{"--serving-ca-secret=signal-apiserver/serving-ca"}},
		{name: "on, dotted name", args: []string{"--serving-ca-secret=signal-apiserver/serving.ca"}},
		{
			name: "no slash",
			args: []string{"--serving-ca-secret=serving-ca"},
			want: []string{`--serving-ca-secret: want namespace/name, got "serving-ca"`},
		},
		{
			name: "bad namespace",
			args: []string{"--serving-ca-secret=Signal_APIServer/serving-ca"},
			want: []string{"--serving-ca-secret: namespace: " + notLabel},
		},
		{
			name: "empty name",
			args: []string{"--serving-ca-secret=signal-apiserver/"},
			want: []string{"--serving-ca-secret: name: " + notSubdomain},
		},
		{
			name: "two slashes",
			args: []string{"--serving-ca-secret=signal-apiserver/serving/ca"},
			want: []string{"--serving-ca-secret: name: " + notSubdomain},
		},
		{
			name:        "with --tls-cert-file",
			args:        []string{"--serving-ca-secret=signal-apiserver/serving-ca"},
			tlsCertFile: "/etc/tls/tls.crt",
			want:        []string{"--serving-ca-secret and --tls-cert-file exclude each other"},
		},
		{
			name: "validity under a minute",
			args: []string{"--serving-ca-secret=signal-apiserver/serving-ca", "--serving-cert-validity=59s"},
			want: []string{"--serving-cert-validity must be at least 1m"},
		},
		{name: "validity of a minute", args: []string{"--serving-ca-secret=signal-apiserver/serving-ca", "--serving-cert-validity=1m"}},
		{
			name: "zero rotate-before",
			args: []string{"--serving-ca-secret=signal-apiserver/serving-ca", "--serving-ca-rotate-before=0"},
			want: []string{"--serving-ca-rotate-before, --serving-ca-activation-delay and --serving-ca-sync-period must be positive"},
		},
		{
			name: "negative activation delay",
			args: []string{"--serving-ca-secret=signal-apiserver/serving-ca", "--serving-ca-activation-delay=-1s"},
			want: []string{"--serving-ca-rotate-before, --serving-ca-activation-delay and --serving-ca-sync-period must be positive"},
		},
		{
			name: "zero sync period",
			args: []string{"--serving-ca-secret=signal-apiserver/serving-ca", "--serving-ca-sync-period=0"},
			want: []string{"--serving-ca-rotate-before, --serving-ca-activation-delay and --serving-ca-sync-period must be positive"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []string
			for _, err := range parse(t, tt.args...).ServingCert.Validate(tt.tlsCertFile) {
				got = append(got, err.Error())
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("Validate:\n got %q\nwant %q", got, tt.want)
			}
		})
	}
}

// TestServingCertValidateThroughOptions proves Options.Validate passes
// --tls-cert-file on.
func TestServingCertValidateThroughOptions(t *testing.T) {
	o := parse(t, "--serving-ca-secret=signal-apiserver/serving-ca", "--tls-cert-file=/etc/tls/tls.crt", "--tls-private-key-file=/etc/tls/tls.key")
	if err := o.Complete(); err != nil {
		t.Fatal(err)
	}
	want := []string{"--serving-ca-secret and --tls-cert-file exclude each other"}
	if got := messages(o.Validate()); !slices.Equal(got, want) {
		t.Errorf("Validate:\n got %q\nwant %q", got, want)
	}
}

func TestServingCertApplyTo(t *testing.T) {
	tests := []struct {
		name     string
		args     []string
		serving  bool
		wantCert string // the provider's name; empty: left alone
	}{
		{name: "off", serving: true},
		{name: "on, not serving", args: []string{"--serving-ca-secret=signal-apiserver/serving-ca"}},
		{name: "on", args: []string{"--serving-ca-secret=signal-apiserver/serving-ca"}, serving: true, wantCert: "secret/signal-apiserver/serving-ca"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			config := &genericapiserver.RecommendedConfig{}
			config.ClientConfig = &rest.Config{Host: "https://127.0.0.1:1"}
			if tt.serving {
				config.SecureServing = &genericapiserver.SecureServingInfo{}
			}
			if err := parse(t, tt.args...).ServingCert.ApplyTo(config); err != nil {
				t.Fatalf("ApplyTo: %v", err)
			}
			if config.SecureServing == nil {
				if tt.serving {
					t.Fatal("SecureServing was removed")
				}
				return
			}
			if tt.wantCert == "" {
				if config.SecureServing.Cert != nil {
					t.Errorf("Cert = %v, want it left alone", config.SecureServing.Cert)
				}
				return
			}
			controller, ok := config.SecureServing.Cert.(*servingcert.Controller)
			if !ok {
				t.Fatalf("Cert is a %T, want the serving certificate controller", config.SecureServing.Cert)
			}
			if got := controller.Name(); got != tt.wantCert {
				t.Errorf("controller %q, want %q", got, tt.wantCert)
			}
		})
	}
}
