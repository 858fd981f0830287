#!/usr/bin/env bash
# Runs a benchmark of BENCHMARKS.md on a release build:
#   Scripts/bench.sh fhir      FHIR create/read/search vs the raw database (throwaway PostgreSQL)
#   Scripts/bench.sh synthea   Synthea ingest vs raw bulk insert, search latency at 1x and 10x
#   Scripts/bench.sh sensor    eBPF sensor overhead (vs untraced, auditd, strace) and lossless
#                              throughput (needs root; Docker, auditd and strace installed if missing)
# Extra arguments go to `caduceus bench NAME`, or for `sensor` to Scripts/sensor_bench.py.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: Scripts/bench.sh fhir|synthea|sensor [options]}"
shift
if [ "$name" = sensor ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    Scripts/setup.sh build >/dev/null
    Scripts/docker.sh start
    Scripts/docker.sh testbox >/dev/null
    if ! command -v auditctl >/dev/null || ! command -v strace >/dev/null || ! command -v nsenter >/dev/null; then
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends auditd strace util-linux
    fi
    swift build -c release --product caduceus
    exec $SUDO python3 Scripts/sensor_bench.py "$@"
fi
Scripts/setup.sh >/dev/null
swift build -c release --product caduceus
started_pg=""
if ! Scripts/postgres.sh status 2>/dev/null; then started_pg=1; fi
url="$(Scripts/postgres.sh start)"
cleanup() { [ -z "$started_pg" ] || Scripts/postgres.sh stop || true; }
trap cleanup EXIT
.build/release/caduceus bench "$name" --postgres "${url%/*}/postgres" "$@"
