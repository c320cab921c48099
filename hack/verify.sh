#!/usr/bin/env bash
# The checks of `make verify`: gofmt, go vet, go.mod/go.sum tidy (every
# module), generated code fresh, and golangci-lint (hack/lint.sh).
set -o errexit
set -o nounset
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${ROOT}"
status=0

echo "gofmt"
unformatted=$(git ls-files --cached --others --exclude-standard '*.go' | xargs gofmt -l)
if [[ -n "${unformatted}" ]]; then
	echo "gofmt would change:" >&2
	echo "${unformatted}" >&2
	status=1
fi

echo "go vet"
go vet ./... || status=1
(cd hack/tools/image && go vet ./...) || status=1
(cd hack/tools/lint && go vet ./...) || status=1

echo "go mod tidy"
for dir in . hack/tools hack/tools/alertmanager hack/tools/image hack/tools/lint; do
	(cd "${dir}" && go mod tidy)
done
if ! git diff --exit-code -- go.mod go.sum hack/tools/go.mod hack/tools/go.sum hack/tools/alertmanager/go.mod hack/tools/alertmanager/go.sum hack/tools/image/go.mod hack/tools/image/go.sum hack/tools/lint/go.mod hack/tools/lint/go.sum; then
	echo "go.mod or go.sum was not tidy: commit the result of 'go mod tidy'" >&2
	status=1
fi

echo "generated code"
hack/verify-codegen.sh || status=1

echo "golangci-lint"
hack/lint.sh || status=1

exit ${status}
