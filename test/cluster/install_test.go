package cluster

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestSplitReference(t *testing.T) {
	for ref, want := range map[string][2]string{
		"signal-apiserver:v0.0.0-1-abc":            {"signal-apiserver", "v0.0.0-1-abc"},
		"registry:5000/team/signal-apiserver:v1.2": {"registry:5000/team/signal-apiserver", "v1.2"},
		"registry:5000/team/signal-apiserver":      {"registry:5000/team/signal-apiserver", ""},
		"signal-apiserver":                         {"signal-apiserver", ""},
	} {
		repo, tag := splitReference(ref)
		if repo != want[0] || tag != want[1] {
			t.Errorf("splitReference(%q) = %q, %q; want %q, %q", ref, repo, tag, want[0], want[1])
		}
	}
}

func TestReadImageList(t *testing.T) {
	dir := t.TempDir()
	product := filepath.Join(dir, "images.txt")
	e2e := filepath.Join(dir, "e2e.txt")
	write := func(path string, lines ...string) {
		if err := os.WriteFile(path, []byte(strings.Join(lines, "\n")+"\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(product,
		"ghcr.io/x/signal-apiserver:v1 sha256:aa /b/signal-apiserver.tar",
		"ghcr.io/x/signal-event-source:v1 sha256:bb /b/signal-event-source.tar")
	write(e2e,
		"e2e-pause:e2e sha256:cc /b/e2e/pause.tar",
		"e2e-crashloop:e2e sha256:dd /b/e2e/crashloop.tar",
		"e2e-alertmanager:v0.35.0 sha256:ee /b/e2e/alertmanager.tar")
	images, err := readImageList(product, e2e)
	if err != nil {
		t.Fatal(err)
	}
	if got := images[ServerImage]; got != "ghcr.io/x/signal-apiserver:v1" {
		t.Errorf("server image %q", got)
	}
	if got := images[AlertmanagerImage]; got != "e2e-alertmanager:v0.35.0" {
		t.Errorf("alertmanager image %q", got)
	}

	write(e2e, "e2e-pause:e2e sha256:cc /b/e2e/pause.tar")
	if _, err := readImageList(product, e2e); err == nil || !strings.Contains(err.Error(), CrashLoopImage) {
		t.Errorf("a missing image: got %v, want an error naming %s", err, CrashLoopImage)
	}
}
