#!/usr/bin/env bash
# Prints the version of this checkout: its v* tag (git describe), else a Go
# pseudo-version of the commit (v0.0.0-<commit time>-<12 hex>), with -dirty
# when the tree has uncommitted changes. Images are tagged with it.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

dirty=""
if [[ -n "$(git status --porcelain --untracked-files=no)" ]]; then
	dirty="-dirty"
fi
if tag=$(git describe --tags --exact-match --match 'v[0-9]*' 2>/dev/null); then
	echo "${tag}${dirty}"
	exit 0
fi
when=$(TZ=UTC git log -1 --format=%cd --date=format-local:%Y%m%d%H%M%S)
echo "v0.0.0-${when}-$(git rev-parse --short=12 HEAD)${dirty}"
