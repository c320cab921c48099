package cluster

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"

	"k8s.io/klog/v2"
)

const cgroupRoot = "/sys/fs/cgroup"

// clusterCgroups are the top-level cgroups kubelet (cgroupfs driver) and
// containerd make in every hierarchy, whatever they are configured with.
var clusterCgroups = []string{"kubepods", "k8s.io"}

// cgroupSnapshot is the proof that no other cluster held the cluster
// cgroups when this one started: only then does Down remove them.
type cgroupSnapshot struct{}

// snapshotCgroups refuses to start when a cluster cgroup holds processes
// (another cluster runs) and removes empty ones an interrupted run left.
func snapshotCgroups() (*cgroupSnapshot, error) {
	paths, err := clusterCgroupPaths()
	if err != nil {
		return nil, err
	}
	for _, p := range paths {
		procs, err := cgroupHasProcesses(p)
		if err != nil {
			return nil, err
		}
		if procs {
			return nil, fmt.Errorf("cgroup %s has processes: another cluster (or its leftovers) runs on this machine", p)
		}
		klog.InfoS("Removing an empty cgroup an earlier cluster left", "cgroup", p)
		if err := removeCgroupTree(p); err != nil {
			return nil, err
		}
	}
	return &cgroupSnapshot{}, nil
}

// removeNew removes the cluster cgroups, which this cluster made, deepest
// first. They must be empty: the node's PID namespace has ended.
func (s *cgroupSnapshot) removeNew() error {
	paths, err := clusterCgroupPaths()
	if err != nil {
		return err
	}
	var errs []error
	for _, p := range paths {
		if err := removeCgroupTree(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// clusterCgroupPaths lists the cluster cgroups that exist now in every
// hierarchy.
func clusterCgroupPaths() ([]string, error) {
	hierarchies, err := os.ReadDir(cgroupRoot)
	if err != nil {
		return nil, err
	}
	var paths []string
	for _, h := range hierarchies {
		for _, name := range clusterCgroups {
			p := filepath.Join(cgroupRoot, h.Name(), name)
			if st, err := os.Stat(p); err == nil && st.IsDir() {
				paths = append(paths, p)
			}
		}
	}
	return paths, nil
}

func cgroupHasProcesses(root string) (bool, error) {
	found := false
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() || d.Name() != "cgroup.procs" {
			return nil
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if strings.TrimSpace(string(data)) != "" {
			found = true
			return filepath.SkipAll
		}
		return nil
	})
	return found, err
}

// removeCgroupTree removes a cgroup and its descendants with rmdir, deepest
// first (a cgroup's files cannot be removed, only the empty directory).
func removeCgroupTree(root string) error {
	var dirs []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	if err != nil {
		return err
	}
	sort.Slice(dirs, func(i, j int) bool { return strings.Count(dirs[i], "/") > strings.Count(dirs[j], "/") })
	var errs []error
	for _, d := range slices.Compact(dirs) {
		if err := syscall.Rmdir(d); err != nil && !errors.Is(err, syscall.ENOENT) {
			errs = append(errs, fmt.Errorf("removing cgroup %s: %w", d, err))
		}
	}
	return errors.Join(errs...)
}
