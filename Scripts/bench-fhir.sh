#!/usr/bin/env bash
# The FHIR store benchmark of BENCHMARKS.md: release build, a throwaway PostgreSQL, and
# `caduceus bench fhir` on SQLite and PostgreSQL in one run. Extra arguments go to it.
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh >/dev/null
swift build -c release --product caduceus
started_pg=""
if ! Scripts/postgres.sh status 2>/dev/null; then started_pg=1; fi
url="$(Scripts/postgres.sh start)"
cleanup() { [ -z "$started_pg" ] || Scripts/postgres.sh stop || true; }
trap cleanup EXIT
.build/release/caduceus bench fhir --postgres "${url%/*}/postgres" "$@"
