#!/usr/bin/env bash
# The main command: everything Caduceus does, on one machine, in one run (its time: BENCHMARKS.md, "The demo"):
# installs what is missing (libbpf-dev, Docker, docker-compose, auditd, strace), builds the release
# binary with the Swift runtime linked in statically (--static-swift-stdlib, the FHIR image's binary),
# then `caduceus demo`: builds the images without a registry, starts the deployment
# (docker-compose.yml: FHIR server, sensor, recorder), loads patients and runs the clinical workload,
# plays the attack lab under detection, measures the overhead (5 runs x 6 configurations of 8 s of load,
# with the capture goal's verdict), prints the event summary, the alerts
# and the matrix, and writes caduceus-results/report.html. Needs root.
# Extra arguments go to `caduceus demo` (--postgres, --workload-seconds, --bench-runs 0, --keep-running, --help).
set -euo pipefail
cd "$(dirname "$0")/.."
SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
Scripts/setup.sh build
Scripts/docker.sh start
Scripts/docker.sh testbox >/dev/null   # the lab's toolkit (static busybox) comes from it
# A build folder of its own: the static runtime is a different link, and tests' debug builds keep theirs.
swift build -c release --static-swift-stdlib --product caduceus --scratch-path .build-static
exec $SUDO .build-static/release/caduceus demo "$@"
