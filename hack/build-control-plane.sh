#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from Go modules (hack/tools/go.mod)
# into bin/control-plane/<version>/, once; later calls reuse the binaries.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
ETCD_VERSION=${ETCD_VERSION:-v3.7.0}
OUT=${CONTROL_PLANE_DIR:-"${ROOT}/bin/control-plane/kube-${KUBE_VERSION}-etcd-${ETCD_VERSION}"}

# shellcheck source=hack/lib-versions.sh
source "${ROOT}/hack/lib-versions.sh"
require_pinned KUBE_VERSION "${KUBE_VERSION}" k8s.io/kubernetes
require_pinned ETCD_VERSION "${ETCD_VERSION}" go.etcd.io/etcd/server/v3

if [[ -x "${OUT}/kube-apiserver" && -x "${OUT}/kubectl" && -x "${OUT}/etcd" ]]; then
	echo "${OUT}"
	exit 0
fi

mkdir -p "${OUT}.tmp"
cd "${ROOT}/hack/tools"

major=${KUBE_VERSION#v}; major=${major%%.*}
minor=${KUBE_VERSION#v*.}; minor=${minor%%.*}
pkg=k8s.io/component-base/version
ldflags="-s -w -X ${pkg}.gitVersion=${KUBE_VERSION} -X ${pkg}.gitMajor=${major} -X ${pkg}.gitMinor=${minor} -X ${pkg}.gitTreeState=clean"

# One package at a time: a cold kube-apiserver build alone peaks near 3 GB.
echo "building kube-apiserver ${KUBE_VERSION} (cold: ~4 min)" >&2
go build -trimpath -ldflags "${ldflags}" -o "${OUT}.tmp/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
echo "building kubectl ${KUBE_VERSION}" >&2
go build -trimpath -ldflags "${ldflags}" -o "${OUT}.tmp/kubectl" k8s.io/kubernetes/cmd/kubectl
echo "building etcd ${ETCD_VERSION}" >&2
go build -trimpath -ldflags "-s -w" -o "${OUT}.tmp/etcd" ./etcd

rm -rf "${OUT}"
mv "${OUT}.tmp" "${OUT}"
echo "${OUT}"
