#!/usr/bin/env bash
# Builds the previous release's signal-apiserver (the commit in
# test/upgrade/PREVIOUS_RELEASE) into bin/signal-apiserver-<commit>, once:
# the source of that commit is taken with `git archive` into a temporary
# directory and built there with the Go module proxy, like any build. A clone
# without the commit (a shallow one) fetches it from origin first. Prints the
# binary's path.
set -o errexit
set -o nounset
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
commit=$(tr -d '[:space:]' <"${ROOT}/test/upgrade/PREVIOUS_RELEASE")
bin="${ROOT}/bin/signal-apiserver-${commit:0:7}"
if [[ ! -x "${bin}" ]]; then
	if ! git -C "${ROOT}" cat-file -e "${commit}^{commit}" 2>/dev/null; then
		git -C "${ROOT}" fetch --quiet --depth=1 origin "${commit}"
	fi
	src=$(mktemp -d)
	trap 'chmod -R u+w "${src}"; rm -rf "${src}"' EXIT
	git -C "${ROOT}" archive "${commit}" | tar -x -C "${src}"
	mkdir -p "${ROOT}/bin"
	(cd "${src}" && go build -o "${bin}.tmp" ./cmd/signal-apiserver)
	mv "${bin}.tmp" "${bin}"
fi
echo "${bin}"
