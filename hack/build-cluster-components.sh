#!/usr/bin/env bash
# Builds kubelet, kube-controller-manager, kube-scheduler and kube-proxy from
# the same Go module as kube-apiserver (hack/tools/go.mod) into
# bin/cluster/kube-<version>/, once; later calls reuse the binaries. Prints
# the folder. A cold kubelet build is long (up to half an hour on 2 busy
# cores): each binary is kept as soon as it is built, so an interrupted build
# resumes where it stopped.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
OUT=${CLUSTER_COMPONENTS_DIR:-"${ROOT}/bin/cluster/kube-${KUBE_VERSION}"}

# shellcheck source=hack/lib-versions.sh
source "${ROOT}/hack/lib-versions.sh"
require_pinned KUBE_VERSION "${KUBE_VERSION}" k8s.io/kubernetes
COMPONENTS=(kubelet kube-controller-manager kube-scheduler kube-proxy)

mkdir -p "${OUT}"
cd "${ROOT}/hack/tools"

major=${KUBE_VERSION#v}; major=${major%%.*}
minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"

for c in "${COMPONENTS[@]}"; do
	if [[ -x "${OUT}/${c}" ]]; then
		continue
	fi
	# One at a time: each links most of k8s.io/kubernetes.
	echo "building ${c} ${KUBE_VERSION}" >&2
	start=${SECONDS}
	go build -trimpath -ldflags "${ldflags}" -o "${OUT}/${c}.tmp" "k8s.io/kubernetes/cmd/${c}"
	mv "${OUT}/${c}.tmp" "${OUT}/${c}"
	echo "built ${c} in $((SECONDS - start))s" >&2
done
echo "${OUT}"
