#!/usr/bin/env bash
# Runs controller-gen at the version pinned in hack/tools/go.mod, built once
# into bin/.
set -o errexit
set -o nounset
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
version=$(cd "${ROOT}/hack/tools" && go list -m -f '{{.Version}}' sigs.k8s.io/controller-tools)
bin="${ROOT}/bin/controller-gen-${version}"
if [[ ! -x "${bin}" ]]; then
	(cd "${ROOT}/hack/tools" && go build -o "${bin}" sigs.k8s.io/controller-tools/cmd/controller-gen)
fi
exec "${bin}" "$@"
