#!/bin/bash
# Two or more builds of caduceus side by side on the FHIR store's write paths, in rounds whose
# order reverses every other round: per round and build, `bench fhir` (creates at 4 clients on
# PostgreSQL, each beside the raw insert of the same run) and `bench synthea --scale 1` (the
# SQLite ingest of the Synthea bundles). Then, per build, min / median / max of each figure, and
# per later build its ratio to the first build's figure of the same round.
#
# Usage:
#   Scripts/benchmarks/store_ab.sh [--rounds N] [--resources N] POSTGRES_URL BINARY BINARY...
# POSTGRES_URL as for `bench fhir --postgres` (Scripts/postgres.sh gives one); BINARY a release
# build of caduceus (copy each build's .build/release/caduceus aside first).
set -euo pipefail
ROUNDS=6; RESOURCES=4000
while [[ $# -gt 0 && $1 == --* ]]; do
  case $1 in
    --rounds) ROUNDS=$2; shift 2 ;;
    --resources) RESOURCES=$2; shift 2 ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
done
[[ $# -ge 3 ]] || { echo "usage: $0 [--rounds N] [--resources N] POSTGRES_URL BINARY BINARY..." >&2; exit 2; }
URL=$1; shift; BINARIES=("$@")
SYNTHEA=${SYNTHEA:-$(cd "$(dirname "$0")/../.." && pwd)/../shared/fhir/synthea}
OUT=$(mktemp /tmp/store-ab.XXXXXX)
for round in $(seq 1 "$ROUNDS"); do
  order=("${BINARIES[@]}")
  if (( round % 2 == 0 )); then
    order=(); for (( i=${#BINARIES[@]}-1; i>=0; i-- )); do order+=("${BINARIES[$i]}"); done
  fi
  for binary in "${order[@]}"; do
    # "postgres  create  FHIR/s  raw/s  FHIR:raw" and "sqlite  resources  FHIR/s  raw bulk/s  FHIR:raw"
    create=$("$binary" bench fhir --postgres "$URL" --resources "$RESOURCES" --searches 5 --synthea "$SYNTHEA" \
      | awk '$1 == "postgres" && $2 == "create" {print $3, $5}')
    ingest=$("$binary" bench synthea --synthea "$SYNTHEA" --scale 1 --queries 1 --rounds 1 \
      | awk '$1 == "sqlite" && $2 ~ /^[0-9]+$/ && NF == 5 {print $3; exit}')
    [[ -n $create && -n $ingest ]] || { echo "no figures from $binary" >&2; exit 1; }
    echo "$round $binary $create $ingest" | tee -a "$OUT"
  done
done
python3 - "$OUT" "${BINARIES[@]}" <<'EOF'
import statistics, sys
rows = [line.split() for line in open(sys.argv[1])]
binaries = sys.argv[2:]
figures = {(r[0], r[1]): [float(x) for x in r[2:5]] for r in rows}
names = ["PostgreSQL creates/s", "PostgreSQL create FHIR:raw", "SQLite ingest resources/s"]
rounds = sorted({r[0] for r in rows}, key=int)
def spread(values):
    return f"{min(values):g} / {statistics.median(values):g} / {max(values):g}"
for column, name in enumerate(names):
    print(f"{name} (min / median / max)")
    for binary in binaries:
        values = [figures[(r, binary)][column] for r in rounds]
        line = f"  {binary}: {spread(values)}"
        if binary != binaries[0]:
            ratios = [round(figures[(r, binary)][column] / figures[(r, binaries[0])][column], 2) for r in rounds]
            line += f"; per round over {binaries[0]}: {spread(ratios)}"
        print(line)
EOF
