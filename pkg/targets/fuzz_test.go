package targets

import (
	"context"
	"strings"
	"testing"
	"unicode"

	"k8s.io/apimachinery/pkg/runtime/schema"

	remediationv1alpha1 "github.com/signal-apiserver/signal-apiserver/apis/remediation/v1alpha1"
	"github.com/signal-apiserver/signal-apiserver/pkg/fingerprint"
)

// FuzzResolveSpellings: every spelling of a kind that kubectl accepts (the
// Kind, its resource name singular or plural, a short name, in any case)
// resolves to the canonical kind, so its signals get the fingerprint of the
// canonical spelling; any other string resolves to a served kind or to an
// error, never to something discovery does not list.
func FuzzResolveSpellings(f *testing.F) {
	f.Add(uint8(0), uint8(0), uint64(0), "Deploymnet")
	f.Add(uint8(5), uint8(3), uint64(0xff), "deploy")
	f.Add(uint8(3), uint8(2), uint64(0x5555), "DeploymentList")
	f.Add(uint8(7), uint8(1), uint64(1), "")

	r, _, _ := newTestResolver(f)
	served := map[schema.GroupKind]bool{}
	type form struct {
		gv                     schema.GroupVersion
		kind, plural, singular string
		shortNames             []string
	}
	var forms []form
	for _, list := range clusterResources() {
		gv, _ := schema.ParseGroupVersion(list.GroupVersion)
		for _, res := range list.APIResources {
			if strings.Contains(res.Name, "/") {
				continue
			}
			served[gv.WithKind(res.Kind).GroupKind()] = true
			forms = append(forms, form{gv, res.Kind, res.Name, res.SingularName, res.ShortNames})
		}
	}

	f.Fuzz(func(t *testing.T, resource, spellingForm uint8, caseMask uint64, other string) {
		ctx := context.Background()
		fm := forms[int(resource)%len(forms)]
		spellings := append([]string{fm.kind, fm.plural, fm.singular}, fm.shortNames...)
		spelled := mixCase(spellings[int(spellingForm)%len(spellings)], caseMask)
		got, err := r.Resolve(ctx, fm.gv.String(), spelled)
		if err != nil {
			t.Fatalf("%s %q: %v", fm.gv, spelled, err)
		}
		canonical, err := r.Resolve(ctx, fm.gv.String(), fm.kind)
		if err != nil {
			t.Fatalf("%s %q: %v", fm.gv, fm.kind, err)
		}
		if got != canonical {
			t.Fatalf("%s %q resolved to %+v, its Kind to %+v", fm.gv, spelled, got, canonical)
		}
		ref := func(k Kind) remediationv1alpha1.ResourceReference {
			return remediationv1alpha1.ResourceReference{APIVersion: k.GroupVersion().String(), Kind: k.Kind, Namespace: "default", Name: "web"}
		}
		if fingerprint.ForObject("", ref(got)) != fingerprint.ForObject("", ref(canonical)) {
			t.Fatalf("%s %q has another fingerprint than %s", fm.gv, spelled, fm.kind)
		}

		if k, err := r.Resolve(ctx, fm.gv.String(), other); err == nil && !served[k.GroupKind()] {
			t.Fatalf("%s %q resolved to %v, which discovery does not serve", fm.gv, other, k.GroupVersionKind)
		}
	})
}

// mixCase upper-cases the letters of s whose bit is set in mask.
func mixCase(s string, mask uint64) string {
	b := []rune(s)
	for i := range b {
		if mask&(1<<(uint(i)%64)) != 0 {
			b[i] = unicode.ToUpper(b[i])
		} else {
			b[i] = unicode.ToLower(b[i])
		}
	}
	return string(b)
}
