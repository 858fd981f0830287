#!/usr/bin/env bash
# The test command: installs what a fresh machine lacks, starts a throwaway PostgreSQL,
# starts Docker and builds the test images, then runs every Swift test (on SQLite and
# PostgreSQL; the sensor's and the detection rules' against the real kernel and real
# containers) and the black-box client tests. With CI=true, tests that need PostgreSQL, root, BPF or Docker fail when it
# is missing instead of skipping.
set -euo pipefail
cd "$(dirname "$0")/.."

Scripts/setup.sh
status=0
# Conventions, before anything slow (under a second): README's layout map matches Sources/, no
# hand-written source file passes 600 lines.
Scripts/check-layout.py || status=1
# The checked-in .swift-format: swift format lint --strict over every hand-written Swift file (~10 s).
Scripts/format.sh --check || status=1
Scripts/docker.sh start
Scripts/docker.sh testbox
started_pg=""
if ! Scripts/postgres.sh status 2>/dev/null; then started_pg=1; fi
CADUCEUS_TEST_POSTGRES_URL="$(Scripts/postgres.sh start)"
export CADUCEUS_TEST_POSTGRES_URL
cleanup() { [ -z "$started_pg" ] || Scripts/postgres.sh stop || true; }
trap cleanup EXIT

# --explicit-target-dependency-import-check: a target importing another of this package's targets
# that it cannot reach through its dependencies fails the build. It skips test targets and targets
# using plugins, and counts indirect dependencies as declared; check-imports.py (4 s) checks every
# target's imports against its direct dependencies.
swift build --build-tests --explicit-target-dependency-import-check error
Scripts/check-imports.py || status=1
# The FHIR server's container image, from this build: the detection noise test and the lab run it.
.build/debug/caduceus images >/dev/null
# The live detection suites (real containers, storms, blocking waits) run after the others, not
# beside them: on two cores they starved the FHIR server's timing-sensitive connection tests.
swift test --skip-build --skip LiveDetectionSuites --skip PostgresPrimaryTests || status=1
swift test --skip-build --filter LiveDetectionSuites || status=1
# The store's waits for a PostgreSQL connection (about 35 s) alone: beside the parallel suites the
# test server's connections (300 then) ran out, and a pool that cannot connect is not what they measure
# (its busy pool waited 67 s once, and hung once, in the full parallel run).
swift test --skip-build --filter PostgresPrimaryTests || status=1
Scripts/blackbox.sh .build/debug/caduceus || status=1
# The sensor's command line as a user runs it (root, Docker): trace, summary, the jq pipeline,
# and the Kubernetes DaemonSet's capability set on this kernel (about 25 s).
CADUCEUS_BIN=.build/debug/caduceus .venv/bin/pytest -q Tests/sensor_cli || status=1
# The Kubernetes manifests, offline (no cluster runs here): kubernetes-validate's schemas of
# Kubernetes 1.30 and of its latest, strictly, then what README says of them (about 3 s).
{ .venv/bin/kubernetes-validate --strict --quiet -k 1.30.0 deploy/kubernetes/*.yaml \
    && .venv/bin/kubernetes-validate --strict --quiet deploy/kubernetes/*.yaml \
    && .venv/bin/pytest -q Tests/kubernetes; } || status=1
# `caduceus report` rendered by headless Chromium: every chart's pixels are there.
CADUCEUS_BIN=.build/debug/caduceus .venv/bin/pytest -q Tests/report || status=1
# The deployment (caduceus up, workload, three attacks, the deployed sensor's alerts, caduceus down
# leaving nothing), the cluster (up --postgres --replicas 3, a replica killed under writes: about
# 40 s) and the overhead benchmark's harness, briefly.
CADUCEUS_BIN=.build/debug/caduceus .venv/bin/pytest -q Tests/deployment || status=1
if [ "$status" = 0 ]; then echo "test.sh: all suites passed"; else echo "test.sh: FAILED" >&2; fi
exit "$status"
