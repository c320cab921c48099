#!/usr/bin/env bash
# Builds Alertmanager from its Go module (hack/tools/alertmanager/go.mod) into
# bin/alertmanager-<version>/, once; later calls reuse the binary.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
ALERTMANAGER_VERSION=${ALERTMANAGER_VERSION:-v0.35.0}
OUT="${ROOT}/bin/alertmanager-${ALERTMANAGER_VERSION}"

# Static (CGO_ENABLED=0): the same binary runs here and in the e2e suite's
# Alertmanager image, which has no libc. An older dynamic build is replaced.
if [[ -x "${OUT}/alertmanager" ]] && go version -m "${OUT}/alertmanager" | grep -q 'CGO_ENABLED=0'; then
	echo "${OUT}/alertmanager"
	exit 0
fi

cd "${ROOT}/hack/tools/alertmanager"
have=$(go list -m -f '{{.Version}}' github.com/prometheus/alertmanager)
if [[ "${have}" != "${ALERTMANAGER_VERSION}" ]]; then
	echo "hack/tools/alertmanager/go.mod pins alertmanager ${have}, not ${ALERTMANAGER_VERSION}" >&2
	exit 1
fi

echo "building alertmanager ${ALERTMANAGER_VERSION} (cold: minutes)" >&2
rm -rf "${OUT}.tmp"
mkdir -p "${OUT}.tmp"
# The module zip lacks the compiled web UI (ui/app/dist) that package ui
# embeds. Build from a scratch copy of the module with a placeholder UI: the
# tests need the API, not the UI. The copy builds with Alertmanager's own
# go.mod and go.sum, as its releases do.
go mod download github.com/prometheus/alertmanager
src=$(go list -m -f '{{.Dir}}' github.com/prometheus/alertmanager)
work="${OUT}.tmp/src"
cp -R "${src}" "${work}"
chmod -R u+w "${work}"
mkdir -p "${work}/ui/app/dist/elm" "${work}/ui/app/dist/mantine"
echo 'The web UI is not built into this binary.' >"${work}/ui/app/dist/elm/index.html"
cp "${work}/ui/app/dist/elm/index.html" "${work}/ui/app/dist/mantine/index.html"
(cd "${work}" && CGO_ENABLED=0 go build -trimpath -ldflags "-s -w" -o "${OUT}.tmp/alertmanager" ./cmd/alertmanager)
rm -rf "${work}"
rm -rf "${OUT}"
mv "${OUT}.tmp" "${OUT}"
echo "${OUT}/alertmanager"
