#!/usr/bin/env bash
# Regenerates bpf/vmlinux.h from this machine's kernel BTF and the committed
# bpf2go objects. Installs clang, llvm, bpftool and libbpf-dev from Debian's
# packages when missing. Called by `make generate`.
set -euo pipefail
cd "$(dirname "$0")"

need=()
command -v clang >/dev/null || need+=(clang)
command -v llvm-strip >/dev/null || need+=(llvm)
command -v bpftool >/dev/null || need+=(bpftool)
[ -f /usr/include/bpf/bpf_helpers.h ] || need+=(libbpf-dev)
if [ ${#need[@]} -gt 0 ]; then
	SUDO=
	[ "$(id -u)" = 0 ] || SUDO=sudo
	$SUDO apt-get update -qq
	DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends clang llvm bpftool libbpf-dev
fi

if [ -r /sys/kernel/btf/vmlinux ]; then
	bpftool btf dump file /sys/kernel/btf/vmlinux format c > vmlinux.h.tmp
	mv vmlinux.h.tmp vmlinux.h
else
	echo "generate.sh: /sys/kernel/btf/vmlinux is missing; keeping the committed vmlinux.h" >&2
fi

GO=${GO:-go}
$GO generate ./
