#!/usr/bin/env bash
# Runs golangci-lint, with klog's logcheck compiled in, under .golangci.yaml.
# Both are pinned in hack/tools/lint/go.mod and built once into bin/, keyed by
# their versions. Arguments go to `golangci-lint run` (default: every package).
set -o errexit
set -o nounset
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
versions=$(cd "${ROOT}/hack/tools/lint" && go list -m -f '{{.Version}}' github.com/golangci/golangci-lint/v2 sigs.k8s.io/logtools)
read -r -d '' lint_version logcheck_version <<<"${versions}" || true
bin="${ROOT}/bin/golangci-lint-${lint_version}-logcheck-${logcheck_version}"
if [[ ! -x "${bin}" ]]; then
	(cd "${ROOT}/hack/tools/lint" && go build -o "${bin}" ./golangci-lint)
fi
cd "${ROOT}"
if [[ $# -eq 0 ]]; then
	set -- ./...
fi
exec "${bin}" run "$@"
