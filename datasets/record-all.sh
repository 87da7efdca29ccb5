#!/usr/bin/env bash
# record-all.sh reproduces the labelled container suite (datasets/containers-v1):
# it builds driftwatch and the static attack helper, then runs the recorder,
# which starts the workloads in runc containers on a private test host, makes
# a benign training capture, one test capture per scenario and one long
# benign capture of all workloads at once with `driftwatch record`, and
# writes the traces, labels and manifest.
# Needs root, runc, busybox-static and iproute2 (see ../shared/INFRA.md);
# takes about 35 minutes with the default durations (15 + LONG_BENIGN).
#
#   SUITE=containers-v1          suite to record: containers-v1 (busybox loops) or
#                                containers-v2 (nginx, postgres, redis, Python and Node.js
#                                apps from Debian packages; needs mmdebstrap, the Debian
#                                mirror, python3, psql, pgbench and curl on the host; about
#                                95 minutes with TRAIN=30m LONG_BENIGN=36m)
#   OUT=datasets/$SUITE          suite directory
#   TRAIN=3m                     length of the training capture (30m for containers-v2)
#   LONG_BENIGN=20m              length of the long benign capture (0 = none)
#   RECORDER_ARGS="-only web,cron" extra recorder flags (-train, -pre, -post, -only, -retries,
#                                -keep-train, -subnet); e.g. only the long benign capture, keeping
#                                the suite's training traces:
#                                RECORDER_ARGS="-keep-train -subnet 10.251.91 -only benign-long"
#   DRIFTWATCH=path              use this driftwatch binary instead of building bin/driftwatch
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
SUITE=${SUITE:-containers-v1}
OUT=${OUT:-datasets/$SUITE}
if [[ $SUITE == containers-v2 ]]; then
	TRAIN=${TRAIN:-30m}
	LONG_BENIGN=${LONG_BENIGN:-36m}
fi
[[ $(id -u) == 0 ]] || { echo "record-all.sh: must run as root (BPF, runc, network namespaces)" >&2; exit 1; }
for tool in runc ip busybox; do
	command -v "$tool" >/dev/null || { echo "record-all.sh: $tool not found (apt-get install -y --no-install-recommends runc busybox-static iproute2)" >&2; exit 1; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/driftwatch-datasets.XXXXXX")
trap 'rm -rf "$work"' EXIT
if [[ -z ${DRIFTWATCH:-} ]]; then
	"$GO" build -o bin/driftwatch ./cmd/driftwatch
	DRIFTWATCH=bin/driftwatch
fi
CGO_ENABLED=0 "$GO" build -trimpath -o "$work/dwhelper" ./datasets/helpers/dwhelper
"$GO" build -o "$work/recorder" ./datasets/recorder
# shellcheck disable=SC2086
"$work/recorder" -name "$SUITE" -out "$OUT" -driftwatch "$DRIFTWATCH" -helper "$work/dwhelper" -train "${TRAIN:-3m}" -long-benign "${LONG_BENIGN:-20m}" ${RECORDER_ARGS:-}
du -sh "$OUT"
