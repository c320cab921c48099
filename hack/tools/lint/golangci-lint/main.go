// Command golangci-lint is golangci-lint at the version pinned in go.mod with
// klog's logcheck compiled in as a module plugin: what `golangci-lint custom`
// would build, but from the Go module proxy alone (no git clone).
package main

import (
	"fmt"
	"os"
	"runtime/debug"
	"strings"

	"github.com/golangci/golangci-lint/v2/pkg/commands"
	"github.com/golangci/golangci-lint/v2/pkg/exitcodes"

	// Registers the "logcheck" module plugin named in .golangci.yaml.
	_ "sigs.k8s.io/logtools/logcheck/gclplugin"
)

func main() {
	info := commands.BuildInfo{Version: "unknown", Commit: "?", GoVersion: "unknown", Date: "(unknown)"}
	if bi, ok := debug.ReadBuildInfo(); ok {
		info.GoVersion = bi.GoVersion
		for _, dep := range bi.Deps {
			switch dep.Path {
			case "github.com/golangci/golangci-lint/v2":
				info.Version = strings.TrimPrefix(dep.Version, "v")
			case "sigs.k8s.io/logtools":
				info.Commit = "logcheck " + dep.Version
			}
		}
	}
	if err := commands.Execute(info); err != nil {
		_, _ = fmt.Fprintf(os.Stderr, "The command is terminated due to an error: %v\n", err)
		os.Exit(exitcodes.Failure)
	}
}
