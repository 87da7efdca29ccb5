#!/usr/bin/env bash
# infra.sh — shell form of internal/testinfra for scripts (root only).
#
#   infra.sh up DIR                 two test hosts (network namespaces joined by a
#                                   veth pair in a private 10.251.X.0/24), a busybox
#                                   rootfs and a runc root under DIR; writes DIR/env
#   infra.sh run DIR NAME CMD...    starts a runc container NAME on test host A with
#                                   cgroup /test-kubepods/pod<uid>/<64-hex id>; prints
#                                   the id (also in DIR/containers/NAME.id)
#   infra.sh exec DIR NAME CMD...   runc exec in container NAME
#   infra.sh down DIR               kills and deletes the containers, removes their pod
#                                   cgroups in every hierarchy, deletes the namespaces,
#                                   unmounts /run/netns when empty, removes DIR
#
# A caller tears down in a trap:
#   dir=$(mktemp -d); trap 'test/e2e/infra.sh down "$dir"' EXIT; test/e2e/infra.sh up "$dir"
# `up` undoes its own partial work when a step fails. Traffic only ever goes
# between the two namespaces; nothing is routed to the host's interfaces.
set -euo pipefail

die() { echo "infra.sh: $*" >&2; exit 1; }
need() { command -v "$1" >/dev/null || die "$1 not found (apt-get install -y --no-install-recommends runc busybox-static iproute2 jq)"; }
[[ $(id -u) == 0 ]] || die "must run as root"

cgroup2_mount() { awk '$3=="cgroup2"{print $2; exit}' /proc/mounts; }
rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }

up() {
	local dir=$1
	need ip; need runc; need busybox; need jq
	mkdir -p "$dir"/{runc,containers,bundles}
	dir=$(cd "$dir" && pwd)
	trap 'echo "infra.sh: up failed; tearing down" >&2; down "$dir" keep' ERR
	local sfx subnet a b
	sfx=$(rand_hex 3)
	subnet="10.251.$((0x$(rand_hex 1)))"
	a="dwt-$sfx-a"; b="dwt-$sfx-b"
	{
		echo "NETNS_A=$a"; echo "NETNS_B=$b"
		echo "IP_A=$subnet.1"; echo "IP_B=$subnet.2"
		echo "ROOTFS=$dir/rootfs"; echo "RUNC_ROOT=$dir/runc"
	} > "$dir/env"
	ip netns add "$a"
	ip netns add "$b"
	ip link add "dw${sfx}a" netns "$a" type veth peer name "dw${sfx}b" netns "$b"
	ip -n "$a" link set lo up; ip -n "$a" addr add "$subnet.1/24" dev "dw${sfx}a"; ip -n "$a" link set "dw${sfx}a" up
	ip -n "$b" link set lo up; ip -n "$b" addr add "$subnet.2/24" dev "dw${sfx}b"; ip -n "$b" link set "dw${sfx}b" up
	local r="$dir/rootfs"
	mkdir -p "$r"/{bin,sbin,usr/bin,proc,sys,dev,etc,tmp,var/www,root/.ssh,home/app}
	chmod 1777 "$r/tmp"; chmod 700 "$r/root"
	cp /bin/busybox "$r/bin/busybox"
	for applet in $(busybox --list); do
		[[ $applet == busybox ]] || ln -sf busybox "$r/bin/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n' > "$r/etc/passwd"
	printf 'root:x:0:\napp:x:1000:\n' > "$r/etc/group"
	printf 'root:$6$driftwatch$fakefakefakefake:19000:0:99999:7:::\n' > "$r/etc/shadow"; chmod 600 "$r/etc/shadow"
	printf 'fake key for driftwatch tests\n' > "$r/root/.ssh/id_rsa"; chmod 600 "$r/root/.ssh/id_rsa"
	chown 1000:1000 "$r/home/app"
	trap - ERR
	echo "$dir/env"
}

run_container() {
	local dir=$1 name=$2; shift 2
	# shellcheck source=/dev/null
	source "$dir/env"
	local id pod bundle
	id=$(rand_hex 32)
	pod=$(rand_hex 4)-$(rand_hex 2)-$(rand_hex 2)-$(rand_hex 2)-$(rand_hex 6)
	bundle="$dir/bundles/$name"
	mkdir -p "$bundle"
	runc spec --bundle "$bundle"
	jq --arg rootfs "$ROOTFS" --arg cg "/test-kubepods/pod$pod/$id" --arg ns "/run/netns/$NETNS_A" \
		--argjson args "$(printf '%s\n' "$@" | jq -R . | jq -s .)" '
		.process.terminal = false | .process.args = $args | .process.noNewPrivileges = false |
		.root.path = $rootfs | .root.readonly = false | .hostname = "workload" |
		.linux.cgroupsPath = $cg |
		.linux.namespaces = [.linux.namespaces[] | if .type == "network" then {type: "network", path: $ns} else . end]
	' "$bundle/config.json" > "$bundle/config.json.new"
	mv "$bundle/config.json.new" "$bundle/config.json"
	echo "$pod" > "$dir/containers/$name.pod"
	echo "$id" > "$dir/containers/$name.id"
	runc --root "$RUNC_ROOT" run -d --pid-file "$dir/containers/$name.pid" --bundle "$bundle" "$id" \
		>"$dir/containers/$name.log" 2>&1 </dev/null
	echo "$id"
}

exec_container() {
	local dir=$1 name=$2; shift 2
	# shellcheck source=/dev/null
	source "$dir/env"
	runc --root "$RUNC_ROOT" exec "$(cat "$dir/containers/$name.id")" "$@"
}

down() {
	local dir=$1 keep=${2:-}
	[[ -f $dir/env ]] || { [[ -n $keep ]] || rm -rf "$dir"; return 0; }
	# shellcheck source=/dev/null
	source "$dir/env"
	local f id pod m
	for f in "$dir"/containers/*.id; do
		[[ -e $f ]] || continue
		id=$(cat "$f")
		runc --root "$RUNC_ROOT" kill --all "$id" KILL 2>/dev/null || true
		for _ in $(seq 50); do
			runc --root "$RUNC_ROOT" delete --force "$id" 2>/dev/null && break
			sleep 0.1
		done
		pod=$(cat "${f%.id}.pod")
		while read -r m; do
			[[ -d $m/test-kubepods/pod$pod ]] || continue
			find "$m/test-kubepods/pod$pod" -depth -type d -exec rmdir {} \; 2>/dev/null || true
			rmdir "$m/test-kubepods" 2>/dev/null || true
		done < <(awk '$3=="cgroup"||$3=="cgroup2"{print $2}' /proc/mounts)
	done
	ip netns del "$NETNS_A" 2>/dev/null || true
	ip netns del "$NETNS_B" 2>/dev/null || true
	if [[ -d /run/netns && -z $(ls -A /run/netns) ]] && grep -q ' /run/netns ' /proc/self/mountinfo; then
		umount /run/netns 2>/dev/null || true
	fi
	[[ -n $keep ]] || rm -rf "$dir"
}

cmd=${1:-}; [[ $# -ge 2 ]] || die "usage: $0 up|down|run|exec DIR ..."
case $cmd in
	up) up "$2" ;;
	down) down "$2" ;;
	run) [[ $# -ge 4 ]] || die "usage: $0 run DIR NAME CMD..."; run_container "${@:2}" ;;
	exec) [[ $# -ge 4 ]] || die "usage: $0 exec DIR NAME CMD..."; exec_container "${@:2}" ;;
	*) die "unknown command $cmd (want up, down, run or exec)" ;;
esac
