#!/usr/bin/env bash
# Regenerates everything generated: deepcopy, conversion and defaulting
# helpers beside the types, clientset/listers/informers/applyconfigurations
# and OpenAPI definitions under generated/, and the CRD YAML under
# artifacts/crd/. Run through `make generate`.
set -o errexit
set -o nounset
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# Generate into another tree (hack/verify-codegen.sh uses a temp copy).
OUT=${1:-"${ROOT}"}
cd "${OUT}"

MODULE=github.com/signal-apiserver/signal-apiserver
BOILERPLATE="${ROOT}/hack/boilerplate.go.txt"
CODEGEN_PKG=$(go list -m -f '{{.Dir}}' k8s.io/code-generator)

# shellcheck source=/dev/null
source "${CODEGEN_PKG}/kube_codegen.sh"

kube::codegen::gen_helpers \
	--boilerplate "${BOILERPLATE}" \
	"${OUT}/apis"

kube::codegen::gen_openapi \
	--output-dir "${OUT}/generated/openapi" \
	--output-pkg "${MODULE}/generated/openapi" \
	--report-filename "${OUT}/generated/openapi/api_violations.list" \
	--update-report \
	--output-model-name-file zz_generated.model_name.go \
	--boilerplate "${BOILERPLATE}" \
	"${OUT}/apis"

kube::codegen::gen_client \
	--with-watch \
	--with-applyconfig \
	--output-dir "${OUT}/generated" \
	--output-pkg "${MODULE}/generated" \
	--boilerplate "${BOILERPLATE}" \
	"${OUT}/apis"

"${ROOT}/hack/controller-gen.sh" \
	crd paths=./apis/remediation/... output:crd:artifacts:config="${OUT}/artifacts/crd"
