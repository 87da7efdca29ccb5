#!/usr/bin/env bash
# install-tools.sh installs, from Debian's packages, the tools the
# end-to-end tests run when they are missing: runc, containerd,
# busybox-static, iproute2, jq and the CNI plugins of the single-node
# cluster test (containernetworking-plugins: bridge, host-local, loopback in
# /usr/lib/cni). It needs root (apt-get); without root it installs nothing
# and says which tests will skip.
set -euo pipefail
need=()
for pair in runc:runc containerd:containerd busybox:busybox-static ip:iproute2 jq:jq; do
	command -v "${pair%%:*}" >/dev/null || need+=("${pair#*:}")
done
[ -x /usr/lib/cni/bridge ] || need+=(containernetworking-plugins)
[ ${#need[@]} -eq 0 ] && exit 0
if [ "$(id -u)" != 0 ]; then
	echo "test tools missing (${need[*]}): not root, so not installed; the tests that need root skip" >&2
	exit 0
fi
if ! command -v apt-get >/dev/null; then
	echo "test tools missing (${need[*]}) and no apt-get: install them, or the end-to-end tests fail" >&2
	exit 1
fi
echo "installing test tools from Debian: ${need[*]}" >&2
apt-get update -qq
DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${need[@]}"
