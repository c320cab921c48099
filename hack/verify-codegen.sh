#!/usr/bin/env bash
# Fails when generated code or the CRD YAML is not what hack/update-codegen.sh
# makes from the current types: it regenerates into a temp copy and diffs.
set -o errexit
set -o nounset
set -o pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
TMP=$(mktemp -d)
trap 'rm -rf "${TMP}"' EXIT

cd "${ROOT}"
# The tree as it is on disk: tracked and untracked files, less those deleted
# but not yet committed. A copy that fails fails the check.
git ls-files --cached --others --exclude-standard --deduplicate -z |
	while IFS= read -r -d '' f; do [[ -e "${f}" ]] && printf '%s\0' "${f}"; done |
	xargs -0 cp --parents -t "${TMP}"
"${ROOT}/hack/update-codegen.sh" "${TMP}" >/dev/null

status=0
for dir in apis generated artifacts/crd; do
	if ! diff -Naupr "${ROOT}/${dir}" "${TMP}/${dir}"; then
		status=1
	fi
done
if [[ ${status} -ne 0 ]]; then
	echo "generated code is out of date: run 'make generate'" >&2
fi
exit ${status}
