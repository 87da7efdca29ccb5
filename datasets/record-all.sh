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
#   OUT=datasets/containers-v1   suite directory
#   LONG_BENIGN=20m              length of the long benign capture (0 = none)
#   RECORDER_ARGS="-only web,cron" extra recorder flags (-train, -pre, -post, -only, -retries,
#                                -keep-train, -subnet); e.g. only the long benign capture, keeping
#                                the suite's training traces:
#                                RECORDER_ARGS="-keep-train -subnet 10.251.91 -only benign-long"
#   DRIFTWATCH=path              use this driftwatch binary instead of building bin/driftwatch
set -euo pipefail
cd "$(dirname "$0")/.."
GO=${GO:-go}
OUT=${OUT:-datasets/containers-v1}
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
"$work/recorder" -out "$OUT" -driftwatch "$DRIFTWATCH" -helper "$work/dwhelper" -long-benign "${LONG_BENIGN:-20m}" ${RECORDER_ARGS:-}
du -sh "$OUT"
