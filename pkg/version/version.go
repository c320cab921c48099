// Package version is the version of this project's binaries, stamped by
// `make image` (hack/build-images.sh) with -ldflags -X.
//
// It is not k8s.io/component-base/version: that one holds the Kubernetes
// version whose API behaviour the generic server emulates, derived from the
// libraries it is built from, and must not carry this project's version.
package version

// Set by -ldflags "-X github.com/signal-apiserver/signal-apiserver/pkg/version.version=...".
var (
	version   = "v0.0.0-dev"
	commit    = ""
	buildDate = ""
)

// Info describes a build.
type Info struct {
	// Version is the release tag, or a pseudo-version for untagged commits.
	Version string `json:"version"`
	// Commit is the source commit.
	Commit string `json:"commit,omitempty"`
	// BuildDate is the commit's time, RFC 3339: builds are reproducible.
	BuildDate string `json:"buildDate,omitempty"`
}

// Get returns the version this binary was built as.
func Get() Info {
	return Info{Version: version, Commit: commit, BuildDate: buildDate}
}
