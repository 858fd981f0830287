#!/bin/bash
# What the capture's kernel side costs a FHIR request, for two or more builds of caduceus side by
# side: one server container (the benchmark's image) under `caduceus bench load` (8 connections),
# traced in turn by each build's `trace --container C --events all --format record`, the order
# rotating every round. For each run: requests/s, the server container's CPU per request
# (cpuacct), and the BPF programs' run time per request (the sum of every on_* program's
# run_time_ns over the measured window, kernel.bpf_stats_enabled=1 for the run; the statistics
# add two clock reads to every program run, so compare builds, not absolute figures).
#
# Usage (root, Docker, a server image from `caduceus images` or `bench overhead`):
#   Scripts/benchmarks/capture_ab.sh [--rounds N] [--seconds S] LOAD_BINARY TRACE_BINARY...
#   TRACE_BINARY "none" measures the server with no trace.
# Run it under the bench lock: flock /work/coord/bench.lock Scripts/benchmarks/capture_ab.sh ...
set -euo pipefail
ROUNDS=4; SECS=5
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --seconds) SECS=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -ge 2 ]] || { echo "usage: $0 [--rounds N] [--seconds S] LOAD_BINARY TRACE_BINARY..." >&2; exit 2; }
LOAD=$1; shift; TRACES=("$@")
IMAGE=${IMAGE:-caduceus-fhir:latest}
PORT=$((30000 + RANDOM % 10000)); URL=http://127.0.0.1:$PORT/fhir-server/api/v4
DIR=$(mktemp -d /tmp/capture-ab.XXXXXX); mkdir -p "$DIR/data"; chown 1000:1000 "$DIR/data"; chmod 755 "$DIR"
STATS_BEFORE=$(sysctl -n kernel.bpf_stats_enabled)
CONTAINER=$(docker run -d --network host -v "$DIR/data:/data" "$IMAGE" \
  serve --host 127.0.0.1 --port $PORT --database /data/bench.sqlite --log-level warning)
TRACE_PID=
cleanup() {
  if [[ -n $TRACE_PID ]]; then kill -INT "$TRACE_PID" 2>/dev/null || true; wait "$TRACE_PID" 2>/dev/null || true; fi
  docker rm -f "$CONTAINER" >/dev/null || true
  rm -rf "$DIR"; sysctl -q kernel.bpf_stats_enabled="$STATS_BEFORE" || true
}
trap cleanup EXIT
CPUACCT=/sys/fs/cgroup/cpuacct/docker/$CONTAINER/cpuacct.usage
[[ -r $CPUACCT ]] || CPUACCT=/sys/fs/cgroup/system.slice/docker-$CONTAINER.scope/cpu.stat
for _ in $(seq 120); do curl -sf "$URL/metadata" >/dev/null && break; sleep 0.25; done
"$LOAD" bench load --base-url "$URL" --seconds 0.5 --connections 2 >/dev/null   # seeds 20 patients
curl -s "$URL/Patient?_count=100&_elements=id" \
  | python3 -c 'import json,sys; print("\n".join(e["resource"]["id"] for e in json.load(sys.stdin)["entry"]))' > "$DIR/patients.txt"
cpu_ns() {  # the container's CPU time so far, in ns (cgroup v1 cpuacct, or v2 cpu.stat's usage_usec)
  if [[ $CPUACCT == *cpuacct.usage ]]; then cat "$CPUACCT"; else awk '/^usage_usec/ {print $2 * 1000}' "$CPUACCT"; fi
}
bpf_ns() { bpftool -j prog show | python3 -c '
import json,sys; print(sum(p.get("run_time_ns",0) for p in json.load(sys.stdin) if p.get("name","").startswith("on_")))'; }
sysctl -q kernel.bpf_stats_enabled=1
echo "commit $(git rev-parse --short HEAD 2>/dev/null || echo ?), $(date -u '+%F %H:%M') UTC, load average $(cut -d' ' -f1 /proc/loadavg), $ROUNDS rounds x $SECS s"
WINDOW=$(python3 -c "print($SECS - 0.4)")
for round in $(seq 0 $((ROUNDS - 1))); do
  for k in $(seq 0 $((${#TRACES[@]} - 1))); do
    trace=${TRACES[$(( (k + round) % ${#TRACES[@]} ))]}
    if [[ $trace != none ]]; then
      # The previous trace's log must be gone before waiting for this one's ready line: the
      # background job truncates it only when it gets to run, and a stale "Ctrl-C" let the load
      # run while the new trace still loaded (BPF 0, almost no events, twice under load 10).
      rm -f "$DIR/trace.err"
      "$trace" trace --container "$CONTAINER" --events all --format record --output "$DIR/events.rec" 2> "$DIR/trace.err" &
      TRACE_PID=$!
      until grep -q "Ctrl-C" "$DIR/trace.err" 2>/dev/null; do sleep 0.05; kill -0 $TRACE_PID; done
      sleep 0.3
    fi
    "$LOAD" bench load --base-url "$URL" --seconds "$SECS" --warmup 1 --connections 8 --patients-file "$DIR/patients.txt" > "$DIR/load.out" &
    LOAD_PID=$!
    sleep 1.2   # past the warm-up
    b0=$(bpf_ns); c0=$(cpu_ns); sleep "$WINDOW"; c1=$(cpu_ns); b1=$(bpf_ns)
    wait $LOAD_PID
    rate=$(tail -1 "$DIR/load.out" | python3 -c 'import json,sys; print(json.load(sys.stdin)["throughput"])')
    events=""
    if [[ -n $TRACE_PID ]]; then
      kill -INT $TRACE_PID
      for _ in $(seq 600); do kill -0 $TRACE_PID 2>/dev/null || break; sleep 0.1; done
      if kill -0 $TRACE_PID 2>/dev/null; then echo "trace $TRACE_PID did not stop within 60 s of SIGINT" >&2; kill -9 $TRACE_PID; fi
      wait $TRACE_PID || true; TRACE_PID=
      events=", $(tail -1 "$DIR/trace.err" | grep -oE '[0-9]+ events written, [0-9]+ lost')"
    fi
    python3 -c "
r, w = $rate, $WINDOW
print(f'round {$round}: {\"$trace\"[-40:]:40} {r:7.0f} requests/s, server {($c1 - $c0) / 1e3 / (r * w):6.1f} us CPU a request, BPF {($b1 - $b0) / 1e3 / (r * w):5.1f} us a request$events')"
  done
done
echo "load average at the end $(cut -d' ' -f1 /proc/loadavg)"
