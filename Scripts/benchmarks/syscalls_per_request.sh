#!/bin/bash
# Syscalls the FHIR server makes per request under the overhead benchmark's load: what the
# capture ("every syscall to a recording") pays per request (BENCHMARKS.md, "Capture for under 5%").
#   Scripts/benchmarks/syscalls_per_request.sh [BIN]   (as root; BIN defaults to .build/release/caduceus)
# Runs the server image (rebuilt from BIN by `caduceus images`), traces every syscall of its
# container to a recording during 8 s of `caduceus bench load` at 8 connections, and prints
# the requests, the events per request and the recording's per-syscall counts.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${1:-.build/release/caduceus}
"$BIN" images >/dev/null
PORT=$((30000 + RANDOM % 10000)); URL=http://127.0.0.1:$PORT/fhir-server/api/v4
D=$(mktemp -d /tmp/caduceus-syscalls.XXXXXX); mkdir -p "$D/data"; chown 1000:1000 "$D/data"; chmod 755 "$D"
C=$(docker run -d --network host -v "$D/data:/data" caduceus-fhir:latest serve --host 127.0.0.1 --port "$PORT" --database /data/bench.sqlite --log-level warning)
cleanup() { docker rm -f "$C" >/dev/null 2>&1 || true; rm -rf "$D"; }
trap cleanup EXIT
for _ in $(seq 1 120); do curl -sf "$URL/metadata" >/dev/null && break; sleep 0.25; done
"$BIN" bench load --base-url "$URL" --seconds 0.5 --connections 2 >/dev/null
curl -s "$URL/Patient?_count=100&_elements=id" \
    | python3 -c 'import json,sys; print("\n".join(e["resource"]["id"] for e in json.load(sys.stdin)["entry"]))' >"$D/patients.txt"
"$BIN" trace --container "$C" --events all --format record --output "$D/events.rec" 2>"$D/trace.err" &
tracer=$!
while ! grep -q "Ctrl-C" "$D/trace.err" 2>/dev/null; do sleep 0.05; done
"$BIN" bench load --base-url "$URL" --seconds 8 --warmup 1 --connections 8 --patients-file "$D/patients.txt" >"$D/load.out"
kill -INT "$tracer"; wait "$tracer"
tail -n 1 "$D/trace.err"
python3 - "$D/load.out" "$D/trace.err" <<'PY'
import json, re, sys
load = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
events = int(re.search(r"(\d+) events written", open(sys.argv[2]).read()).group(1))
print(f"{load['requests']} requests, {events} events: {events / load['requests']:.1f} syscalls a request")
PY
"$BIN" summary "$D/events.rec"
