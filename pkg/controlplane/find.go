package controlplane

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// FindRepoRoot returns the nearest folder at or above the working directory
// that holds a go.mod: the repository's root from any of its packages.
func FindRepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("controlplane: no go.mod at or above the working directory")
		}
		dir = parent
	}
}

// FindBinDir returns the folder with kube-apiserver, etcd and kubectl:
// $KUBEBUILDER_ASSETS if set, else the one folder hack/build-control-plane.sh
// made under <repoRoot>/bin/control-plane.
func FindBinDir(repoRoot string) (string, error) {
	if dir := os.Getenv("KUBEBUILDER_ASSETS"); dir != "" {
		return dir, checkBinDir(dir)
	}
	dirs, err := filepath.Glob(filepath.Join(repoRoot, "bin", "control-plane", "kube-*-etcd-*"))
	if err != nil {
		return "", err
	}
	var complete []string
	for _, dir := range dirs {
		if checkBinDir(dir) == nil {
			complete = append(complete, dir)
		}
	}
	switch len(complete) {
	case 0:
		return "", fmt.Errorf("controlplane: no kube-apiserver, etcd and kubectl under %s: run `make control-plane`",
			filepath.Join(repoRoot, "bin", "control-plane"))
	case 1:
		return complete[0], nil
	default:
		return "", fmt.Errorf("controlplane: several control planes under %s: set KUBEBUILDER_ASSETS to the one to use",
			filepath.Join(repoRoot, "bin", "control-plane"))
	}
}
