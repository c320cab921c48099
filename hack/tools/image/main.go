// Command image packs one static Linux binary into an OCI image archive,
// offline and reproducibly: no base image, no shell, a non-root user, OCI
// labels, and every timestamp set to --created, so the same binary and flags
// give the same digest. hack/build-images.sh (`make image`) calls it.
//
// The archive is an OCI image layout in a tar (index.json, oci-layout,
// blobs/sha256/...) that also carries Docker's manifest.json, so
// `skopeo copy oci-archive:...`, `docker load`, `podman load`,
// `ctr images import` and `crane push` (of the unpacked layout) all read it.
package main

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

type options struct {
	binary      string
	name        string
	tag         string
	revision    string
	created     string
	description string
	source      string
	user        string
	output      string
}

func main() {
	var o options
	flag.StringVar(&o.binary, "binary", "", "the static Linux binary; it becomes /<its file name>, the entrypoint")
	flag.StringVar(&o.name, "name", "", "image name, e.g. signal-apiserver or ghcr.io/org/signal-apiserver")
	flag.StringVar(&o.tag, "tag", "", "image tag, also org.opencontainers.image.version")
	flag.StringVar(&o.revision, "revision", "", "source revision (org.opencontainers.image.revision)")
	flag.StringVar(&o.created, "created", "", "RFC 3339 time of every timestamp in the image (the commit's time, for reproducible digests)")
	flag.StringVar(&o.description, "description", "", "org.opencontainers.image.description")
	flag.StringVar(&o.source, "source", "", "org.opencontainers.image.source")
	flag.StringVar(&o.user, "user", "65532:65532", "numeric uid:gid the image runs as")
	flag.StringVar(&o.output, "output", "", "the archive to write")
	flag.Parse()
	ref, digest, err := build(o)
	if err != nil {
		fmt.Fprintln(os.Stderr, "image:", err)
		os.Exit(1)
	}
	fmt.Printf("%s %s %s\n", ref, digest, o.output)
}

func build(o options) (ref string, digest v1.Hash, err error) {
	if o.binary == "" || o.name == "" || o.tag == "" || o.output == "" || o.created == "" {
		return "", digest, errors.New("--binary, --name, --tag, --created and --output are required")
	}
	created, err := time.Parse(time.RFC3339, o.created)
	if err != nil {
		return "", digest, fmt.Errorf("--created: %w", err)
	}
	created = created.UTC()
	arch, err := staticBinaryArch(o.binary)
	if err != nil {
		return "", digest, err
	}
	binary, err := os.ReadFile(o.binary)
	if err != nil {
		return "", digest, err
	}
	entrypoint := filepath.Base(o.binary)
	layerTar, err := tarOf([]file{{name: entrypoint, mode: 0o555, data: binary}}, created)
	if err != nil {
		return "", digest, err
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(layerTar)), nil
	}, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return "", digest, err
	}

	labels := map[string]string{
		"org.opencontainers.image.title":   filepath.Base(o.name),
		"org.opencontainers.image.version": o.tag,
		"org.opencontainers.image.created": created.Format(time.RFC3339),
	}
	for k, v := range map[string]string{
		"org.opencontainers.image.revision":    o.revision,
		"org.opencontainers.image.description": o.description,
		"org.opencontainers.image.source":      o.source,
	} {
		if v != "" {
			labels[k] = v
		}
	}

	img := mutate.ConfigMediaType(mutate.MediaType(empty.Image, types.OCIManifestSchema1), types.OCIConfigJSON)
	img, err = mutate.Append(img, mutate.Addendum{
		Layer: layer,
		History: v1.History{
			Created:   v1.Time{Time: created},
			CreatedBy: "hack/tools/image --binary " + entrypoint,
		},
	})
	if err != nil {
		return "", digest, err
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return "", digest, err
	}
	cf = cf.DeepCopy()
	cf.Created = v1.Time{Time: created}
	cf.OS, cf.Architecture = "linux", arch
	cf.Config.Entrypoint = []string{"/" + entrypoint}
	cf.Config.User = o.user
	cf.Config.WorkingDir = "/"
	cf.Config.Labels = labels
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		return "", digest, err
	}
	img = mutate.Annotations(img, labels).(v1.Image)

	ref = o.name + ":" + o.tag
	if digest, err = writeArchive(o.output, img, ref, arch, created); err != nil {
		return "", digest, err
	}
	return ref, digest, nil
}

// staticBinaryArch returns the GOARCH name of a statically linked Linux ELF
// binary; an image without libc cannot run anything else.
func staticBinaryArch(path string) (string, error) {
	f, err := elf.Open(path)
	if err != nil {
		return "", fmt.Errorf("%s: %w", path, err)
	}
	defer f.Close()
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			return "", fmt.Errorf("%s is dynamically linked: build it with CGO_ENABLED=0", path)
		}
	}
	switch f.Machine {
	case elf.EM_X86_64:
		return "amd64", nil
	case elf.EM_AARCH64:
		return "arm64", nil
	default:
		return "", fmt.Errorf("%s: unsupported machine %s", path, f.Machine)
	}
}

type file struct {
	name string
	mode int64
	data []byte
}

// tarOf writes files (and the folders above them) into a tar in name order,
// owned by root, all with modification time mtime.
func tarOf(files []file, mtime time.Time) ([]byte, error) {
	dirs := map[string]bool{}
	for _, f := range files {
		for d := filepath.Dir(f.name); d != "."; d = filepath.Dir(d) {
			dirs[d+"/"] = true
		}
	}
	for d := range dirs {
		files = append(files, file{name: d, mode: 0o755})
	}
	sort.Slice(files, func(i, j int) bool { return files[i].name < files[j].name })

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		h := &tar.Header{
			Name:     f.name,
			Mode:     f.mode,
			Size:     int64(len(f.data)),
			ModTime:  mtime,
			Typeflag: tar.TypeReg,
			Format:   tar.FormatUSTAR,
		}
		if strings.HasSuffix(f.name, "/") {
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// writeArchive writes img as an OCI image layout in a tar, plus Docker's
// manifest.json, and returns the manifest's digest.
func writeArchive(path string, img v1.Image, ref, arch string, mtime time.Time) (v1.Hash, error) {
	manifest, err := img.RawManifest()
	if err != nil {
		return v1.Hash{}, err
	}
	digest, err := img.Digest()
	if err != nil {
		return v1.Hash{}, err
	}
	config, err := img.RawConfigFile()
	if err != nil {
		return v1.Hash{}, err
	}
	configName, err := img.ConfigName()
	if err != nil {
		return v1.Hash{}, err
	}
	files := []file{
		{name: blobPath(digest), mode: 0o444, data: manifest},
		{name: blobPath(configName), mode: 0o444, data: config},
	}
	layers, err := img.Layers()
	if err != nil {
		return v1.Hash{}, err
	}
	var layerPaths []string
	for _, l := range layers {
		d, err := l.Digest()
		if err != nil {
			return v1.Hash{}, err
		}
		rc, err := l.Compressed()
		if err != nil {
			return v1.Hash{}, err
		}
		data, err := io.ReadAll(rc)
		rc.Close()
		if err != nil {
			return v1.Hash{}, err
		}
		files = append(files, file{name: blobPath(d), mode: 0o444, data: data})
		layerPaths = append(layerPaths, blobPath(d))
	}

	tag := ref[strings.LastIndex(ref, ":")+1:]
	index := v1.IndexManifest{
		SchemaVersion: 2,
		MediaType:     types.OCIImageIndex,
		Manifests: []v1.Descriptor{{
			MediaType: types.OCIManifestSchema1,
			Digest:    digest,
			Size:      int64(len(manifest)),
			Platform:  &v1.Platform{OS: "linux", Architecture: arch},
			Annotations: map[string]string{
				// containerd names an imported image after this.
				"io.containerd.image.name":          containerdName(ref),
				"org.opencontainers.image.ref.name": tag,
			},
		}},
	}
	indexJSON, err := json.Marshal(index)
	if err != nil {
		return v1.Hash{}, err
	}
	dockerJSON, err := json.Marshal([]map[string]any{{
		"Config":   blobPath(configName),
		"RepoTags": []string{ref},
		"Layers":   layerPaths,
	}})
	if err != nil {
		return v1.Hash{}, err
	}
	files = append(files,
		file{name: "index.json", mode: 0o444, data: indexJSON},
		file{name: "oci-layout", mode: 0o444, data: []byte(`{"imageLayoutVersion":"1.0.0"}`)},
		file{name: "manifest.json", mode: 0o444, data: dockerJSON},
	)
	archive, err := tarOf(files, mtime)
	if err != nil {
		return v1.Hash{}, err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return v1.Hash{}, err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, archive, 0o644); err != nil {
		return v1.Hash{}, err
	}
	return digest, os.Rename(tmp, path)
}

func blobPath(h v1.Hash) string { return "blobs/" + h.Algorithm + "/" + h.Hex }

// containerdName is ref as containerd and the CRI spell it: a name without
// a registry is on docker.io, under library/ when it has no slash.
func containerdName(ref string) string {
	first, _, hasSlash := strings.Cut(ref, "/")
	if hasSlash && (strings.ContainsAny(first, ".:") || first == "localhost") {
		return ref
	}
	if !hasSlash {
		return "docker.io/library/" + ref
	}
	return "docker.io/" + ref
}
