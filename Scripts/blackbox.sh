#!/usr/bin/env bash
# Runs the black-box pytest suite (Tests/blackbox) against a built caduceus binary,
# once on SQLite and once on PostgreSQL. Builds nothing.
#   Scripts/blackbox.sh [path/to/caduceus] [extra pytest args...]
# With CI=true a PostgreSQL that cannot be started fails the run instead of skipping it.
set -euo pipefail
cd "$(dirname "$0")/.."

BIN="${1:-.build/debug/caduceus}"
shift || true
BASE_PATH=/fhir-server/api/v4
[ -x "$BIN" ] || { echo "blackbox: no executable $BIN (swift build first)" >&2; exit 1; }
[ -x .venv/bin/pytest ] || Scripts/setup.sh

work="$(mktemp -d /tmp/caduceus-blackbox.XXXXXX)"
server_pid=""
pg_started=""
cleanup() {
    stop_server
    [ -z "$pg_started" ] || Scripts/postgres.sh stop || true
    rm -rf "$work"
}
trap cleanup EXIT

free_port() {
    .venv/bin/python -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

stop_server() {
    [ -n "$server_pid" ] || return 0
    kill "$server_pid" 2>/dev/null || true
    for _ in $(seq 50); do kill -0 "$server_pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$server_pid" 2>/dev/null || true
    wait "$server_pid" 2>/dev/null || true
    server_pid=""
}

# run_suite NAME DATABASE: start the server on DATABASE, run pytest against it, stop it.
run_suite() {
    local name="$1" database="$2" port log base rc=0
    port="$(free_port)"  # a small race with other processes, acceptable for tests
    log="$work/server-$name.log"
    base="http://127.0.0.1:$port$BASE_PATH"
    echo "blackbox[$name]: starting $BIN on port $port"
    # The tenants test_rest.py uses: tenants exist only when declared.
    "$BIN" serve --host 127.0.0.1 --port "$port" --base-path "$BASE_PATH" --database "$database" \
        --tenant blackbox_tenant --tenant another_tenant >"$log" 2>&1 &
    server_pid=$!
    for _ in $(seq 600); do  # up to 60 s
        curl -sf -o /dev/null "$base/metadata" && break
        kill -0 "$server_pid" 2>/dev/null || break
        sleep 0.1
    done
    if ! curl -sf -o /dev/null "$base/metadata"; then
        echo "blackbox[$name]: server did not answer $base/metadata; its log:" >&2
        tail -n 40 "$log" >&2
        stop_server
        return 1
    fi
    # Replicas share a PostgreSQL database: test_replicas.py belongs to that pass only.
    local only_postgres=()
    [ "$name" = postgres ] || only_postgres=(--ignore=Tests/blackbox/test_replicas.py)
    CADUCEUS_BASE_URL="$base" CADUCEUS_BIN="$BIN" CADUCEUS_DATABASE="$database" .venv/bin/python -m pytest -q Tests/blackbox \
        "${only_postgres[@]}" "${PYTEST_ARGS[@]}" || rc=$?
    stop_server
    if [ "$rc" != 0 ]; then
        echo "blackbox[$name]: FAILED (pytest exit $rc); last server log lines:" >&2
        tail -n 40 "$log" >&2
    fi
    return "$rc"
}

PYTEST_ARGS=("$@")
failed=()

run_suite sqlite "$work/caduceus.sqlite" || failed+=(sqlite)

if ! Scripts/postgres.sh status 2>/dev/null; then
    if Scripts/postgres.sh start >/dev/null; then pg_started=1; fi
fi
if Scripts/postgres.sh status 2>/dev/null; then
    Scripts/postgres.sh reset  # a fresh, empty database
    run_suite postgres "$(Scripts/postgres.sh url)" || failed+=(postgres)
elif [ "${CI:-}" = true ]; then
    echo "blackbox: PostgreSQL could not be started; CI requires it" >&2
    failed+=(postgres)
else
    echo "blackbox: SKIPPED PostgreSQL run (could not start it; run Scripts/setup.sh)" >&2
fi

if [ ${#failed[@]} -gt 0 ]; then
    echo "blackbox: failed: ${failed[*]}" >&2
    exit 1
fi
echo "blackbox: all runs passed"
