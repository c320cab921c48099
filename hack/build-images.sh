#!/usr/bin/env bash
# Builds the OCI image archives of signal-apiserver and signal-event-source
# from this checkout, offline (`make image`): static binaries (CGO_ENABLED=0,
# -trimpath) stamped with hack/version.sh, packed by hack/tools/image with no
# base image, no shell, user 65532 and OCI labels. Every timestamp is the
# commit's time, so building the same commit twice gives the same digests.
#
#   bin/images/<name>.tar    the archives
#   bin/images/images.txt    one line per image: reference, digest, archive
#
# IMAGE_REGISTRY=ghcr.io/you names the images ghcr.io/you/<name>:<version>.
# With --e2e it also builds the images the end-to-end suite runs (the pause
# image, a container that exits 1, Alertmanager) into bin/images/e2e/.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "${ROOT}"

VERSION=${VERSION:-$(hack/version.sh)}
COMMIT=$(git rev-parse HEAD)
CREATED=$(git log -1 --format=%cI)
GOARCH=${GOARCH:-$(go env GOARCH)}
OUT=${IMAGE_DIR:-"${ROOT}/bin/images"}
PREFIX=${IMAGE_REGISTRY:+${IMAGE_REGISTRY%/}/}
SOURCE=https://github.com/signal-apiserver/signal-apiserver
BUILD="${OUT}/build/linux-${GOARCH}"
mkdir -p "${BUILD}"

pkg=github.com/signal-apiserver/signal-apiserver/pkg/version
ldflags="-s -w -X ${pkg}.version=${VERSION} -X ${pkg}.commit=${COMMIT} -X ${pkg}.buildDate=${CREATED}"
static() { # output package
	CGO_ENABLED=0 GOOS=linux GOARCH="${GOARCH}" go build -trimpath -buildvcs=false -ldflags "${ldflags}" -o "$1" "$2"
}

(cd hack/tools/image && go build -trimpath -o "${BUILD}/image-tool" .)
image() { # name tag binary description output
	"${BUILD}/image-tool" --name "$1" --tag "$2" --binary "$3" --description "$4" --output "$5" \
		--revision "${COMMIT}" --created "${CREATED}" --source "${SOURCE}"
}

list="${OUT}/images.txt.tmp"
: >"${list}"
for name in signal-apiserver signal-event-source; do
	static "${BUILD}/${name}" "./cmd/${name}"
done
image "${PREFIX}signal-apiserver" "${VERSION}" "${BUILD}/signal-apiserver" \
	"Kubernetes aggregated API server that deduplicates signals into RemediationRequests" \
	"${OUT}/signal-apiserver.tar" >>"${list}"
image "${PREFIX}signal-event-source" "${VERSION}" "${BUILD}/signal-event-source" \
	"Submits Kubernetes Warning Events to signal-apiserver as Signals" \
	"${OUT}/signal-event-source.tar" >>"${list}"
mv "${list}" "${OUT}/images.txt"

if [[ "${1:-}" == "--e2e" ]]; then
	E2E="${OUT}/e2e"
	mkdir -p "${E2E}"
	list="${E2E}/images.txt.tmp"
	: >"${list}"
	for name in pause crashloop; do
		static "${BUILD}/e2e-${name}" "./test/e2e/images/${name}"
	done
	image e2e-pause e2e "${BUILD}/e2e-pause" "The pod sandbox image of the e2e cluster" "${E2E}/pause.tar" >>"${list}"
	image e2e-crashloop e2e "${BUILD}/e2e-crashloop" "Exits 1: a crash-looping container for the e2e suite" "${E2E}/crashloop.tar" >>"${list}"
	alertmanager=$(hack/build-alertmanager.sh)
	image e2e-alertmanager "${ALERTMANAGER_VERSION:-v0.35.0}" "${alertmanager}" "Alertmanager, built by hack/build-alertmanager.sh" "${E2E}/alertmanager.tar" >>"${list}"
	mv "${list}" "${E2E}/images.txt"
fi
cat "${OUT}/images.txt"
