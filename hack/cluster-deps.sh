#!/usr/bin/env bash
# Installs the Debian packages the single-node cluster of `make cluster` and
# `make e2e` needs, if missing: containerd, runc, the CNI plugins, iptables
# and conntrack. Installing them starts no service. Needs root and apt.
set -euo pipefail

missing=()
for pkg in containerd runc containernetworking-plugins iptables conntrack; do
	if ! dpkg-query -W -f='${Status}' "${pkg}" 2>/dev/null | grep -q "install ok installed"; then
		missing+=("${pkg}")
	fi
done
if ((${#missing[@]} == 0)); then
	exit 0
fi
echo "installing ${missing[*]} (apt-get)" >&2
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
