#!/usr/bin/env bash
# The main command: builds Caduceus (release) and starts the FHIR R4 server on
# http://localhost:9080/fhir-server/api/v4, storing resources in ./data/caduceus.sqlite.
# Extra arguments go to `caduceus serve` (try --help).
set -euo pipefail
cd "$(dirname "$0")/.."
Scripts/setup.sh build
swift build -c release --product caduceus
exec .build/release/caduceus serve "$@"
