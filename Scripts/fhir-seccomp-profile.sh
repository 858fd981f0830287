#!/usr/bin/env bash
# Regenerates the FHIR server's learned profile and the seccomp profile docker-compose.yml starts
# its container with:
#   profiles/caduceus-fhir.profile.yaml    what the server did (review it: it is the allow list)
#   profiles/caduceus-fhir.seccomp.json    its syscalls, a start-up baseline and a `docker exec`
#                                          shell's; anything else fails with EPERM
#
#   sudo Scripts/fhir-seccomp-profile.sh [CADUCEUS_BINARY]      (default .build/debug/caduceus)
#
# The deployment itself is recorded: `caduceus up` (the image built from CADUCEUS_BINARY, the
# server unconfined so that nothing it tries is refused while it is learned), `caduceus profile
# record --from-start` watching caduceus-fhir from its start, the clinical workload, then
# `caduceus down --volumes` (its shutdown is recorded too); the workload is `caduceus workload`
# (Synthea bundles when ../shared/fhir/synthea exists, generated patients, the mix) and `caduceus
# lab workload`. Once on SQLite and once on PostgreSQL (`up --postgres`), merged with `caduceus
# profile merge` (and with the profile already there, if any). Needs root, BPF and Docker, and no
# deployment running; takes about two minutes. Compose runs hold /tmp/caduceus-compose.lock.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="$(realpath "${1:-.build/debug/caduceus}")"
ROUNDS="${CADUCEUS_PROFILE_ROUNDS:-20}"
OUT=profiles
BASE="http://127.0.0.1:9080/fhir-server/api/v4"
SYNTHEA=()
[ -d ../shared/fhir/synthea ] && SYNTHEA=(--synthea ../shared/fhir/synthea --patients 5)
# Learned unconfined; and compose reads the profile even to stop, which may not exist yet.
export CADUCEUS_FHIR_SECCOMP=unconfined
[ -x "$BIN" ] || { echo "fhir-seccomp-profile.sh: no caduceus binary at $BIN (swift build first)" >&2; exit 1; }
[ "$(id -u)" = 0 ] || { echo "fhir-seccomp-profile.sh: needs root (BPF, Docker)" >&2; exit 1; }
if docker ps -a --format '{{.Names}}' | grep -qx caduceus-fhir; then
    echo "fhir-seccomp-profile.sh: a deployment is running: caduceus down first" >&2
    exit 1
fi

work="$(mktemp -d /tmp/caduceus-fhir-profile.XXXXXX)"
recorder=""
exec 9> /tmp/caduceus-compose.lock
cleanup() {
    [ -z "$recorder" ] || kill -INT "$recorder" 2>/dev/null || true
    if docker ps -a --format '{{.Names}}' | grep -qx caduceus-fhir; then
        flock 9 && "$BIN" down --volumes --results "$work/results" >/dev/null 2>&1 || true
    fi
    rm -rf "$work"
}
trap cleanup EXIT

# record NAME [up options]: one recording of the deployment's server, to $work/NAME.yaml.
record() {
    local name="$1"
    shift
    "$BIN" profile record --container caduceus-fhir --from-start --output "$work/$name.yaml" 2> "$work/$name.log" &
    recorder=$!
    for _ in $(seq 100); do grep -q "Ctrl-C to stop" "$work/$name.log" && break; sleep 0.2; done
    grep -q "Ctrl-C to stop" "$work/$name.log" || { cat "$work/$name.log" >&2; exit 1; }
    echo "fhir-seccomp-profile.sh: recording the deployment on $name" >&2
    flock 9
    "$BIN" up --results "$work/results" "$@" >/dev/null
    # What the demo and the deployment test send: Synthea bundles, generated patients and the
    # mix (`caduceus workload`), then the lab's clinical admissions.
    "$BIN" workload --base-url "$BASE" "${SYNTHEA[@]}" --generate 10 --count 300 --concurrency 4 >/dev/null
    "$BIN" lab workload --base-url "$BASE" --rounds "$ROUNDS" --concurrency 4 >/dev/null
    "$BIN" down --volumes --results "$work/results" >/dev/null
    flock -u 9
    sleep 1
    kill -INT "$recorder"
    wait "$recorder"
    recorder=""
    tail -n 1 "$work/$name.log" >&2
}

record sqlite
record postgres --postgres
mkdir -p "$OUT"
# What an earlier recording saw stays allowed: a syscall the server makes once in a while (a
# buffer grown past a size) may be missing from one recording. Delete the YAML to start over.
previous=()
[ -f "$OUT/caduceus-fhir.profile.yaml" ] && previous=("$OUT/caduceus-fhir.profile.yaml")
"$BIN" profile merge "$work/sqlite.yaml" "$work/postgres.yaml" "${previous[@]}" \
    --output "$OUT/caduceus-fhir.profile.yaml" --seccomp "$OUT/caduceus-fhir.seccomp.json"
