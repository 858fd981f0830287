#!/usr/bin/env bash
# A throwaway PostgreSQL 15 cluster for tests, on 127.0.0.1 only, trust auth.
#   start   init (if needed) and start the cluster, create database caduceus, print its URL
#   stop    stop the cluster and delete its data directory
#   status  exit 0 if the cluster is running
#   reset   drop and recreate database caduceus, and drop its tenants' databases (cluster must be running)
#   url     print the URL
# CADUCEUS_PG_PORT overrides the port (default 55432).
set -euo pipefail

PORT="${CADUCEUS_PG_PORT:-55432}"
BIN=/usr/lib/postgresql/15/bin
DATA="/tmp/caduceus-pg-$PORT"
DB=caduceus
URL="postgres://postgres@127.0.0.1:$PORT/$DB"

# initdb and postgres refuse to run as root: run them as the postgres user the Debian package creates.
as_pg() {
    if [ "$(id -u)" = 0 ]; then (cd / && runuser -u postgres -- "$@"); else "$@"; fi
}
psql_admin() { as_pg "$BIN/psql" -X -q -h 127.0.0.1 -p "$PORT" -U postgres -d postgres -v ON_ERROR_STOP=1 "$@"; }
running() { [ -f "$DATA/PG_VERSION" ] && as_pg "$BIN/pg_ctl" -D "$DATA" status >/dev/null 2>&1; }

case "${1:-}" in
start)
    [ -x "$BIN/initdb" ] || { echo "postgres.sh: PostgreSQL 15 is not installed (run Scripts/setup.sh)" >&2; exit 1; }
    if running; then
        echo "postgres.sh: already running on port $PORT" >&2
    else
        if [ ! -f "$DATA/PG_VERSION" ]; then
            rm -rf "$DATA"
            mkdir -p "$DATA"
            [ "$(id -u)" = 0 ] && chown postgres: "$DATA"
            as_pg "$BIN/initdb" -D "$DATA" -U postgres -A trust -E UTF8 --no-sync >/dev/null
        fi
        # Socket in the data dir: /var/run/postgresql may not exist on a fresh machine.
        # fsync off: the data is thrown away, speed matters more. 1000 connections: the test
        # suites run in parallel, each store with a pool of up to 8 (100 ran out; 300 did too
        # in a CI run; sampled each second, the Swift suite held up to 313 at once).
        as_pg "$BIN/pg_ctl" -D "$DATA" -l "$DATA/server.log" -w -t 60 \
            -o "-c listen_addresses=127.0.0.1 -p $PORT -c unix_socket_directories=$DATA -c fsync=off -c max_connections=1000" \
            start >/dev/null || { tail -n 20 "$DATA/server.log" >&2; exit 1; }
        echo "postgres.sh: started on 127.0.0.1:$PORT (data in $DATA)" >&2
    fi
    if [ -z "$(psql_admin -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB'")" ]; then
        psql_admin -c "CREATE DATABASE $DB"
    fi
    echo "$URL"
    ;;
stop)
    if running; then as_pg "$BIN/pg_ctl" -D "$DATA" -m fast -w stop >/dev/null; fi
    rm -rf "$DATA"
    echo "postgres.sh: stopped" >&2
    ;;
status) running ;;
reset)
    # The tenants' databases (<db>_tenant_<id>) go too: an empty server, as a fresh machine has.
    for tenant_db in $(psql_admin -tAc "SELECT datname FROM pg_database WHERE datname LIKE '${DB}_tenant_%'"); do
        psql_admin -c "DROP DATABASE IF EXISTS $tenant_db WITH (FORCE)"
    done
    psql_admin -c "DROP DATABASE IF EXISTS $DB WITH (FORCE)" -c "CREATE DATABASE $DB"
    ;;
url) echo "$URL" ;;
*) echo "usage: $0 start|stop|status|reset|url" >&2; exit 2 ;;
esac
