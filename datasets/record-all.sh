#!/usr/bin/env bash
# record-all.sh reproduces the labelled container suite (datasets/containers-v1):
# it builds driftwatch and the static attack helper, then runs the recorder,
# which starts the workloads in runc containers on a private test host, makes
# a benign training capture and one test capture per scenario with
# `driftwatch record`, and writes the traces, labels and manifest.
# Needs root, runc, busybox-static and iproute2 (see ../shared/INFRA.md);
# takes about 15 minutes with the default durations.
#
#   OUT=datasets/containers-v1   suite directory
#   RECORDER_ARGS="-only web,cron" extra recorder flags (-train, -pre, -post, -only, -retries)
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
"$work/recorder" -out "$OUT" -driftwatch "$DRIFTWATCH" -helper "$work/dwhelper" ${RECORDER_ARGS:-}
du -sh "$OUT"
