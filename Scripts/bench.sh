#!/usr/bin/env bash
# Runs a benchmark of BENCHMARKS.md on a release build, with a throwaway PostgreSQL:
#   Scripts/bench.sh fhir      FHIR create/read/search vs the raw database
#   Scripts/bench.sh synthea   Synthea ingest vs raw bulk insert, search latency at 1x and 10x
# Extra arguments go to `caduceus bench NAME`.
set -euo pipefail
cd "$(dirname "$0")/.."
name="${1:?usage: Scripts/bench.sh fhir|synthea [options]}"
shift
Scripts/setup.sh >/dev/null
swift build -c release --product caduceus
started_pg=""
if ! Scripts/postgres.sh status 2>/dev/null; then started_pg=1; fi
url="$(Scripts/postgres.sh start)"
cleanup() { [ -z "$started_pg" ] || Scripts/postgres.sh stop || true; }
trap cleanup EXIT
.build/release/caduceus bench "$name" --postgres "${url%/*}/postgres" "$@"
