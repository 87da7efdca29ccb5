#!/usr/bin/env bash
# run.sh — drives Falco's event-generator (github.com/falcosecurity/event-generator)
# against the driftwatch agent and reports, per action, which rules alerted.
#
#   test/evgen/run.sh EVENT_GENERATOR [OUTDIR]
#
# EVENT_GENERATOR must be a statically linked build (CGO_ENABLED=0 go build .),
# because it runs inside a busybox runc container. Root only. Not run in CI:
# event-generator cannot be fetched there.
#
# What it does (docs/event-generator.md has the results):
#   1. test/e2e/infra.sh up: a busybox rootfs and an isolated network namespace
#      (no route off the machine); the binary is copied to /usr/local/bin, a
#      "daemon" user added, and one runc container started whose PID 1 is
#      event-generator itself (sleeping), so the generator's own "am I in a
#      container" test (/proc/1/cmdline) holds and container-only actions run.
#      The container gets the capability set Docker and containerd grant.
#   2. For each pass — "defaults" (built-in rules) and "falco" (built-in rules
#      plus Falco's falco_rules.yaml, falco-incubating_rules.yaml and
#      falco-sandbox_rules.yaml from $COMPAT) — starts `driftwatch agent
#      --default-mode off` (static rules only, no learned suppression) with a
#      JSON file output, runs every action of expected.tsv one at a time with
#      `runc exec ... event-generator run --all --loop=false ^syscall.<A>$`,
#      then stops the agent.
#   3. Attributes each alert of the container (by container.id) to the action
#      whose time window holds it, and writes OUTDIR/report.tsv and a summary.
#
# Alerts are attributed by container.id: Falco's outputs do not name the
# container (Falco's container plugin appends it), so a generated rules file
# appends "container_id=%container.id" to the output of every loaded rule
# (override: output: append) — conditions are untouched.
#
# Actions marked skip-net in expected.tsv send traffic beyond loopback
# (example.com, 169.254.169.254, 10.2.3.4, 192.168.1.0/24, ...) and are never run.
# Rows named loopback:<name> are run by this script itself as loopback
# equivalents of such actions.
#
# Environment: DRIFTWATCH (default bin/driftwatch, built with make build when
# absent), COMPAT (Falco's rule files; default ../shared/compat beside the
# clone), ACTIONS (regular expression selecting actions), PASSES ("defaults
# falco"), GAP (seconds between actions, default 1.5).
set -euo pipefail

die() { echo "run.sh: $*" >&2; exit 1; }
[[ $(id -u) == 0 ]] || die "must run as root"
[[ $# -ge 1 ]] || die "usage: $0 EVENT_GENERATOR [OUTDIR]"
for t in jq runc busybox ip awk; do command -v "$t" >/dev/null || die "$t not found"; done

repo=$(cd "$(dirname "$0")/../.." && pwd)
evgen=$(readlink -f "$1")
[[ -x $evgen ]] || die "$1 is not an executable"
if readelf -l "$evgen" 2>/dev/null | grep -q 'program interpreter'; then
	die "$1 is dynamically linked; build it with CGO_ENABLED=0 go build ."
fi
out=${2:-$(mktemp -d /tmp/driftwatch-evgen.XXXXXX)}
mkdir -p "$out/logs"
out=$(cd "$out" && pwd)
dw=${DRIFTWATCH:-$repo/bin/driftwatch}
if [[ ! -x $dw ]]; then make -C "$repo" build >/dev/null; dw=$repo/bin/driftwatch; fi
compat=${COMPAT:-}
if [[ -z $compat ]]; then
	for c in "$repo/../shared/compat" "$repo/../../shared/compat"; do
		[[ -f $c/falco_rules.yaml ]] && { compat=$(cd "$c" && pwd); break; }
	done
fi
passes=${PASSES:-defaults falco}
[[ $passes != *falco* || -f $compat/falco_rules.yaml ]] || die "Falco's rule files not found; set COMPAT"
gap=${GAP:-1.5}
select_re=${ACTIONS:-.}
infra=$repo/test/e2e/infra.sh
expected=$repo/test/evgen/expected.tsv

work=$(mktemp -d /tmp/driftwatch-evgen-work.XXXXXX)
agent_pid=""
cleanup() {
	[[ -n $agent_pid ]] && kill -TERM "$agent_pid" 2>/dev/null && wait "$agent_pid" 2>/dev/null || true
	"$infra" down "$work/infra" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT

# --- the container -----------------------------------------------------------
"$infra" up "$work/infra" >/dev/null
# shellcheck source=/dev/null
source "$work/infra/env"
mkdir -p "$ROOTFS/usr/local/bin" "$ROOTFS/var/log" "$ROOTFS/home"
cp "$evgen" "$ROOTFS/usr/local/bin/event-generator"
echo 'daemon:x:1:1:daemon:/usr/sbin:/bin/false' >> "$ROOTFS/etc/passwd"
echo 'daemon:x:1:' >> "$ROOTFS/etc/group"
printf '127.0.0.1 localhost\n::1 localhost\n' > "$ROOTFS/etc/hosts"
rand_hex() { od -An -N"$1" -tx1 /dev/urandom | tr -d ' \n'; }
cid=$(rand_hex 32)
pod=$(rand_hex 4)-$(rand_hex 2)-$(rand_hex 2)-$(rand_hex 2)-$(rand_hex 6)
bundle=$work/infra/bundles/evgen
mkdir -p "$bundle"
runc spec --bundle "$bundle"
caps='["CAP_CHOWN","CAP_DAC_OVERRIDE","CAP_FSETID","CAP_FOWNER","CAP_MKNOD","CAP_NET_RAW","CAP_SETGID","CAP_SETUID","CAP_SETFCAP","CAP_SETPCAP","CAP_NET_BIND_SERVICE","CAP_SYS_CHROOT","CAP_KILL","CAP_AUDIT_WRITE"]'
jq --arg rootfs "$ROOTFS" --arg cg "/test-kubepods/pod$pod/$cid" --arg ns "/run/netns/$NETNS_A" --argjson caps "$caps" '
	.process.terminal = false | .process.noNewPrivileges = false |
	.process.args = ["/usr/local/bin/event-generator", "run", "^helper\\.DoNothing$", "--loop", "--sleep", "100000h"] |
	.process.capabilities = {bounding: $caps, effective: $caps, permitted: $caps, inheritable: $caps} |
	.root.path = $rootfs | .root.readonly = false | .hostname = "workload" |
	.linux.cgroupsPath = $cg |
	.linux.namespaces = [.linux.namespaces[] | if .type == "network" then {type: "network", path: $ns} else . end]
' "$bundle/config.json" > "$bundle/config.json.new"
mv "$bundle/config.json.new" "$bundle/config.json"
echo "$pod" > "$work/infra/containers/evgen.pod"
echo "$cid" > "$work/infra/containers/evgen.id"
runc --root "$RUNC_ROOT" run -d --bundle "$bundle" "$cid" >"$work/runc.log" 2>&1 </dev/null ||
	die "runc run: $(cat "$work/runc.log")"
echo "container $cid" >&2

# --- rule files ----------------------------------------------------------------
# attribution_rules FILE... prints a rules file appending the container id to
# the output of every rule the files define.
attribution_rules() {
	awk '/^- rule:/ { sub(/^- rule:[ \t]*/, ""); gsub(/^["\047]|["\047][ \t]*$/, ""); print }' "$@" | sort -u |
		while IFS= read -r name; do
			printf -- "- rule: '%s'\n  output: 'container_id=%%container.id'\n  override:\n    output: append\n\n" "${name//\'/\'\'}"
		done
}

# --- one pass ----------------------------------------------------------------------
run_action() { # name -> prints status
	local a=$1 log=$out/logs/$2-$1.log rc=0
	case $a in
	loopback:NetcatRemoteCodeExecution)
		timeout 5 runc --root "$RUNC_ROOT" exec "$cid" nc -w 1 -e /bin/sh 127.0.0.1 9 </dev/null >"$log" 2>&1 || true
		echo executed ;;
	*)
		timeout 60 runc --root "$RUNC_ROOT" exec "$cid" /usr/local/bin/event-generator run --all --loop=false --sleep 0 "^syscall\\.$a\$" </dev/null >"$log" 2>&1 || rc=$?
		sed -i 's/\x1b\[[0-9;]*m//g' "$log" # logrus colours
		if grep -q 'action skipped' "$log"; then
			echo "skipped: $(sed -n 's/.*action skipped.*reason="\{0,1\}\([^"]*\)"\{0,1\}.*/\1/p' "$log" | head -1)"
		elif grep -q 'action error' "$log"; then
			echo "error: $(sed -n 's/.*action error.*error="\{0,1\}\([^"]*\)"\{0,1\}.*/\1/p' "$log" | head -1 | cut -c1-100)"
		elif [[ $rc != 0 ]]; then
			echo "error: exit $rc"
		else
			echo executed
		fi ;;
	esac
}

run_pass() {
	local pass=$1 rules=() files=()
	files=("$repo/rules/default/driftwatch_rules.yaml")
	if [[ $pass == falco ]]; then
		rules=(--rules "$compat/falco_rules.yaml" --rules "$compat/falco-incubating_rules.yaml" --rules "$compat/falco-sandbox_rules.yaml")
		files+=("$compat/falco_rules.yaml" "$compat/falco-incubating_rules.yaml" "$compat/falco-sandbox_rules.yaml")
	fi
	attribution_rules "${files[@]}" > "$work/attrib-$pass.yaml"
	: > "$out/alerts-$pass.json"
	"$dw" agent --db "$work/$pass.db" --metrics-addr "" --default-mode off --cri-endpoint none \
		--output "file:$out/alerts-$pass.json" "${rules[@]}" --rules "$work/attrib-$pass.yaml" \
		>"$out/agent-$pass.log" 2>&1 &
	agent_pid=$!
	for _ in $(seq 300); do
		grep -q 'agent running' "$out/agent-$pass.log" && break
		kill -0 "$agent_pid" 2>/dev/null || die "agent ($pass) exited: $(tail -5 "$out/agent-$pass.log")"
		sleep 0.1
	done
	grep -q 'agent running' "$out/agent-$pass.log" || die "agent ($pass) did not start"
	sleep 1
	: > "$out/windows-$pass.tsv"
	local a t0 t1 status
	while IFS=$'\t' read -r a _ _ note; do
		[[ -z $a || $a == \#* ]] && continue
		[[ $a =~ $select_re ]] || continue
		if [[ " $note " == *" skip-net "* ]]; then
			printf '%s\t0\t0\t%s\n' "$a" "not run: traffic beyond loopback" >> "$out/windows-$pass.tsv"
			continue
		fi
		t0=$(date +%s.%N)
		status=$(run_action "$a" "$pass")
		sleep "$gap"
		t1=$(date +%s.%N)
		printf '%s\t%s\t%s\t%s\n' "$a" "$t0" "$t1" "$status" >> "$out/windows-$pass.tsv"
		echo "$pass $a: $status" >&2
	done < "$expected"
	sleep 2
	kill -TERM "$agent_pid"; wait "$agent_pid" || true; agent_pid=""
	# alert time (RFC 3339, ns) -> seconds; keep this container's alerts only.
	jq -r --arg cid "$cid" 'select(.output_fields["container.id"] == $cid) |
		(.time | capture("^(?<s>[^.]+)(?<f>\\.[0-9]+)?Z$")) as $t |
		"\(($t.s + "Z" | fromdateiso8601))\($t.f // "")\t\(.rule)"' "$out/alerts-$pass.json" > "$work/hits-$pass.tsv"
	# hits-PASS.tsv: action \t rule \t count
	awk -F'\t' 'NR==FNR { if ($2 > 0) { a[++n] = $1; s[n] = $2; e[n] = $3 }; next }
		{ for (i = 1; i <= n; i++) if ($1 >= s[i] && $1 < e[i]) { c[a[i] "\t" $2]++; break } }
		END { for (k in c) print k "\t" c[k] }' "$out/windows-$pass.tsv" "$work/hits-$pass.tsv" | sort > "$out/hits-$pass.tsv"
}

for p in $passes; do run_pass "$p"; done

# --- report ----------------------------------------------------------------------
# report.tsv: action, status, falco_rule, falco_pass_hit, default_rule, defaults_pass_hit, other rules (falco pass | defaults pass)
{
	printf 'action\tstatus\tfalco_rule\tfalco_rule_alerted\tdefault_rule\tdefault_rule_alerted\tfalco_pass_rules\tdefaults_pass_rules\tnote\n'
	while IFS=$'\t' read -r a fr dr note; do
		[[ -z $a || $a == \#* ]] && continue
		[[ $a =~ $select_re ]] || continue
		status=$(awk -F'\t' -v a="$a" '$1 == a { print $4; exit }' "$out/windows-${passes%% *}.tsv")
		fhit=-; dhit=-; fall=""; dall=""
		if [[ -f $out/hits-falco.tsv ]]; then
			fall=$(awk -F'\t' -v a="$a" '$1 == a { printf "%s%s", sep, $2; sep = "; " }' "$out/hits-falco.tsv")
			fhit=no; awk -F'\t' -v a="$a" -v r="$fr" '$1 == a && $2 == r { f = 1 } END { exit !f }' "$out/hits-falco.tsv" && fhit=yes
		fi
		if [[ -f $out/hits-defaults.tsv ]]; then
			dall=$(awk -F'\t' -v a="$a" '$1 == a { printf "%s%s", sep, $2; sep = "; " }' "$out/hits-defaults.tsv")
			dhit=no
			if [[ $dr == - ]]; then dhit=n/a
			elif awk -F'\t' -v a="$a" -v r="$dr" '$1 == a && $2 == r { f = 1 } END { exit !f }' "$out/hits-defaults.tsv"; then dhit=yes; fi
		fi
		printf '%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n' "$a" "$status" "$fr" "$fhit" "$dr" "$dhit" "$fall" "$dall" "$note"
	done < "$expected"
} > "$out/report.tsv"

# The Falco figure counts the executed actions whose rule Falco enables by
# default; the defaults figure those with a default rule meant to catch them.
awk -F'\t' 'NR > 1 && $2 == "executed" { m++; if ($9 !~ /falco-disabled/) { fm++; if ($4 == "yes") f++ } else if ($4 == "yes") fd++
		if ($6 != "n/a") { dm++; if ($6 == "yes") d++ } }
	END { printf "executed actions: %d\nexpected Falco rule alerted (falco pass): %d of %d whose Falco rule is enabled (+%d of %d disabled in Falco)\nexpected default rule alerted (defaults pass): %d of %d with a default rule\n", m, f, fm, fd, m - fm, d, dm }' "$out/report.tsv" | tee "$out/summary.txt"
echo "report: $out/report.tsv" >&2
