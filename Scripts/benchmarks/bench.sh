#!/usr/bin/env bash
# Runs a benchmark of BENCHMARKS.md on a release build:
#   Scripts/benchmarks/bench.sh fhir      FHIR create/read/search vs the raw database (throwaway PostgreSQL)
#   Scripts/benchmarks/bench.sh synthea   Synthea ingest vs raw bulk insert, clinical searches beside a raw indexed select at 1x and 10x
#   Scripts/benchmarks/bench.sh soak      reads, searches and creates for 5 minutes at 8 connections on SQLite: first vs last 30 s
#                              (--minutes, --connections, --database sqlite|postgres://...)
#   Scripts/benchmarks/bench.sh sensor    eBPF sensor overhead (vs untraced, auditd, strace) and lossless
#                              throughput (needs root; Docker, auditd and strace installed if missing)
#   Scripts/benchmarks/bench.sh detect    rule engine throughput on a recorded trace of the FHIR container under its
#                              clinical workload (vs reading the file alone), and the live event-to-alert
#                              delay (needs root and Docker)
# Extra arguments go to `caduceus bench NAME`, or for `sensor` to Scripts/benchmarks/sensor_bench.py.
set -euo pipefail
cd "$(dirname "$0")/../.."
name="${1:?usage: Scripts/benchmarks/bench.sh fhir|synthea|soak|sensor|detect [options]}"
shift
if [ "$name" = sensor ] || [ "$name" = detect ]; then
    SUDO=""
    [ "$(id -u)" = 0 ] || SUDO=sudo
    Scripts/setup.sh build >/dev/null
    Scripts/docker.sh start
    Scripts/docker.sh testbox >/dev/null
fi
if [ "$name" = sensor ]; then
    if ! command -v auditctl >/dev/null || ! command -v strace >/dev/null || ! command -v nsenter >/dev/null; then
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends auditd strace util-linux
    fi
    swift build -c release --product caduceus
    exec $SUDO python3 Scripts/benchmarks/sensor_bench.py "$@"
fi
if [ "$name" = detect ]; then
    swift build -c release --product caduceus
    image="$(.build/release/caduceus images)"
    rounds="${ROUNDS:-100}"
    work="$(mktemp -d /tmp/caduceus-bench-detect.XXXXXX)"
    container="caduceus-bench-fhir-$$"
    port=$((20000 + RANDOM % 10000))
    cleanup() { docker rm -f "$container" >/dev/null 2>&1 || true; rm -rf "$work"; }
    trap cleanup EXIT
    # The recording: the FHIR server's container serving the clinical workload, traced with Tracee's
    # default events, as the graduation project recorded its deployment.
    docker run -d --name "$container" --network host "$image" \
        serve --host 127.0.0.1 --port "$port" --database /data/fhir.sqlite >/dev/null
    base="http://127.0.0.1:$port/fhir-server/api/v4"
    for _ in $(seq 60); do curl -fs "$base/metadata" >/dev/null && break; sleep 0.5; done
    $SUDO .build/release/caduceus trace --container "$container" --output "$work/events.json" 2>"$work/trace.log" &
    tracer=$!
    sleep 2
    .build/release/caduceus lab workload --base-url "$base" --rounds "$rounds" --concurrency 4 | tail -n 3
    sleep 1
    $SUDO kill -INT "$tracer"
    wait "$tracer" || true
    tail -n 1 "$work/trace.log"
    docker rm -f "$container" >/dev/null
    $SUDO .build/release/caduceus bench detect --events "$work/events.json" --live "$@"
    exit
fi
Scripts/setup.sh >/dev/null
swift build -c release --product caduceus
if [ "$name" = soak ]; then
    exec .build/release/caduceus bench soak "$@"
fi
started_pg=""
if ! Scripts/postgres.sh status 2>/dev/null; then started_pg=1; fi
url="$(Scripts/postgres.sh start)"
cleanup() { [ -z "$started_pg" ] || Scripts/postgres.sh stop || true; }
trap cleanup EXIT
.build/release/caduceus bench "$name" --postgres "${url%/*}/postgres" "$@"
