#!/usr/bin/env bash
# build-kube.sh builds kube-apiserver and etcd from the Go module proxy into a
# cache outside the clone, keyed by version, and prints the directory holding
# the binaries. It is idempotent: when the binaries exist it only prints.
#
#   build-kube.sh            kube-apiserver and etcd (the API-server tests)
#   build-kube.sh cluster    also kube-controller-manager, kube-scheduler,
#                            kubelet and kubectl (make test-cluster)
#
#   KUBE_VERSION (default v1.37.2)  k8s.io/kubernetes release to build
#   DRIFTWATCH_E2E_CACHE (default /var/cache/driftwatch-e2e)
#
# The kubernetes module replaces its ./staging modules with local paths, so a
# scratch module requires k8s.io/kubernetes and replaces each staging module
# with its matching v0.x.y release. etcd is built at the version that
# kubernetes' go.mod requires for go.etcd.io/etcd/server/v3.
set -euo pipefail

KUBE_VERSION=${KUBE_VERSION:-v1.37.2}
CACHE=${DRIFTWATCH_E2E_CACHE:-/var/cache/driftwatch-e2e}
GO=${GO:-go}
OUT="$CACHE/$KUBE_VERSION"

# The k8s.io/kubernetes/cmd/* commands to build besides etcd.
cmds=(kube-apiserver)
case "${1:-}" in
"") ;;
cluster) cmds+=(kube-controller-manager kube-scheduler kubelet kubectl) ;;
*) echo "build-kube: unknown argument '$1' (want nothing or 'cluster')" >&2; exit 2 ;;
esac

# missing lists the wanted binaries not yet in the cache.
missing() {
	local c
	for c in etcd "${cmds[@]}"; do
		[[ -x "$OUT/$c" ]] || echo "$c"
	done
}

if [[ -z "$(missing)" ]]; then
	echo "$OUT"
	exit 0
fi

mkdir -p "$OUT"
exec 9>"$OUT/.lock"
flock 9
if [[ -z "$(missing)" ]]; then
	echo "$OUT"
	exit 0
fi

staging_version="v0.${KUBE_VERSION#v1.}"
work=$(mktemp -d "${TMPDIR:-/tmp}/driftwatch-kube-build.XXXXXX")
trap 'rm -rf "$work"' EXIT
cd "$work"

export GOFLAGS=-mod=mod
export GOTOOLCHAIN=${GOTOOLCHAIN:-local}
gomod=$("$GO" mod download -json "k8s.io/kubernetes@$KUBE_VERSION" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
[[ -f "$gomod" ]] || { echo "build-kube: go.mod of k8s.io/kubernetes@$KUBE_VERSION not found" >&2; exit 1; }
etcd_version=$(awk '$1=="go.etcd.io/etcd/server/v3"{print $2; exit}' "$gomod")
[[ -n "$etcd_version" ]] || { echo "build-kube: $gomod does not require go.etcd.io/etcd/server/v3" >&2; exit 1; }

{
	echo "module driftwatch.invalid/kubebuild"
	echo
	echo "go $(awk '$1=="go"{print $2; exit}' "$gomod")"
	echo
	echo "require ("
	echo "	k8s.io/kubernetes $KUBE_VERSION"
	echo "	go.etcd.io/etcd/server/v3 $etcd_version"
	echo ")"
	echo
	echo "replace ("
	awk '$2=="=>" && $3 ~ /^\.\/staging\// {print $1}' "$gomod" | while read -r mod; do
		echo "	$mod => $mod $staging_version"
	done
	echo ")"
} > go.mod

mkdir -p cmd/etcd
cat > cmd/etcd/main.go <<'GO'
// Command etcd runs etcd's server main.
package main

import (
	"os"

	"go.etcd.io/etcd/server/v3/etcdmain"
)

func main() { etcdmain.Main(os.Args) }
GO

# Staging modules that were never published at this version are not needed by
# the commands built here; drop their replace lines so resolution does not fail on them.
for mod in $(awk '$2=="=>"{print $1}' go.mod); do
	if ! "$GO" mod download "$mod@$staging_version" >/dev/null 2>&1; then
		echo "build-kube: $mod@$staging_version not published; not replacing it" >&2
		sed -i "\#^\t$mod => #d" go.mod
	fi
done

todo=$(missing | tr '\n' ' ')
echo "build-kube: building ${todo}at $KUBE_VERSION (etcd $etcd_version; cold: several minutes each)" >&2
{
	echo "//go:build tools"
	echo
	echo "package kubebuild"
	echo
	echo "import ("
	for c in "${cmds[@]}"; do
		echo "	_ \"k8s.io/kubernetes/cmd/$c\""
	done
	echo ")"
} > tools.go
# A cold build prints nothing for minutes: say what it is doing every 30 s.
ticker=
progress() {
	local what=$1 start=$SECONDS
	while sleep 30; do
		local s=$((SECONDS - start))
		echo "build-kube: still building $what ($((s / 60))m$((s % 60))s)" >&2
	done
}
trap 'rm -rf "$work"; [ -n "$ticker" ] && kill "$ticker" 2>/dev/null || true' EXIT
"$GO" mod tidy >/dev/null 2>&1 || true
for c in $todo; do
	pkg=k8s.io/kubernetes/cmd/$c
	[[ $c == etcd ]] && pkg=./cmd/etcd
	start=$SECONDS
	progress "$c" & ticker=$!
	"$GO" build -trimpath -o "$OUT/$c.tmp" "$pkg"
	kill "$ticker"; ticker=
	echo "build-kube: $c built in $(((SECONDS - start) / 60))m$(((SECONDS - start) % 60))s" >&2
	mv "$OUT/$c.tmp" "$OUT/$c"
done
echo "build-kube: built in $((SECONDS / 60))m$((SECONDS % 60))s" >&2
echo "$etcd_version" > "$OUT/etcd.version"
echo "$OUT"
