#!/usr/bin/env bash
# The benign corpus: what operators, cron jobs and health checks do beside the FHIR server, none
# of it an attack. Detection must stay quiet on it (Tests/DetectionTests/LiveBenignCorpusTests.swift
# runs it live under the built-in rules and asserts zero alerts; README lists what Falco's stable
# file raises on it).
#
#   Scripts/benchmarks/benign-corpus.sh OPS_CONTAINER FHIR_BASE_URL
#
# OPS_CONTAINER is a running caduceus-testbox container (Scripts/docker.sh testbox) on the host
# network with the FHIR server's data volume mounted read-only at /data, as an operator's
# toolbox sidecar is:
#   docker volume create fhir-data
#   docker run -d --name fhir --network host -v fhir-data:/data caduceus-fhir:latest \
#       serve --host 127.0.0.1 --port 9080 --database /data/fhir.sqlite
#   docker run -d --name ops --network host -v fhir-data:/data:ro caduceus-testbox:latest sleep 3600
#   caduceus detect &            # in another terminal
#   Scripts/benchmarks/benign-corpus.sh ops http://127.0.0.1:9080/fhir-server/api/v4
# The FHIR image has no shell and no sqlite3, so the sidecar does the backups; the server's own
# start-up and shutdown are the caller's (the test starts and stops it under detection).
# Each step prints "benign: <step>"; a step whose command fails stops the corpus (exit 1).
set -euo pipefail

ops="${1:?usage: $0 OPS_CONTAINER FHIR_BASE_URL}"
base="${2:?usage: $0 OPS_CONTAINER FHIR_BASE_URL}"
steps=0

# One step: a name, then the command run in the ops container (docker exec, no tty).
step() {
    local name="$1"
    shift
    echo "benign: $name"
    docker exec "$ops" "$@" >/dev/null
    steps=$((steps + 1))
}

# One step with a terminal (docker exec -t), as an operator at a console runs it.
step_tty() {
    local name="$1"
    shift
    echo "benign: $name (tty)"
    timeout 20 docker exec -t "$ops" "$@" >/dev/null
    steps=$((steps + 1))
}

# --- Package and process listings --------------------------------------------------------
step "process listing" ps
step "process listing, chosen columns" ps -o pid,user,comm,args
step "one batch of top" top -b -n 1
step "file listing" ls -la / /usr/local/bin /etc /var/log
step "installed programs" sh -c 'ls /bin | wc -l; busybox --list | head -5'
# busybox's dpkg and rpm applets: the image has no package database, so they list nothing.
step "package listings" sh -c 'dpkg -l 2>&1 | head -3; rpm -qa 2>&1 | head -3; true'
step "disk, memory, uptime" sh -c 'df -h; free; uptime'
step "who am I" sh -c 'id; hostname; uname -a'
step "listening sockets" netstat -tln

# --- Logs: the syslog daemon's file rotated by renames (as busybox syslogd and logrotate's
# create mode do: the oldest is renamed over, never deleted, then the daemon reopens its file), an
# application log rotated by copy and truncate, old rotations compressed and pruned (logrotate's
# copytruncate, compress and rotate 2) ---------------------------------------------------
step "start syslogd" syslogd -O /var/log/messages
step "log lines" sh -c 'i=0; while [ $i -lt 60 ]; do logger -t fhir-ops "health check $i ok"; i=$((i+1)); done'
for round in 1 2 3; do
    # busybox syslogd reopens its file at the first message of a new second: log until it has.
    step "system log rotation $round (rename, reopen)" sh -ec "
        cd /var/log
        [ ! -f messages.0 ] || mv -f messages.0 messages.1
        mv messages messages.0
        i=0
        while [ ! -s messages ] && [ \$i -lt 20 ]; do sleep 0.5; logger -t fhir-ops 'rotated $round'; i=\$((i+1)); done
        test -s messages"
done
step "application log written" sh -c 'mkdir -p /srv/log; i=0; while [ $i -lt 200 ]; do echo "GET /metadata 200 $i" >>/srv/log/fhir.log; i=$((i+1)); done'
for round in 1 2 3; do
    step "application log rotation $round (copy, truncate, compress, prune)" sh -ec '
        cd /srv/log
        [ ! -f fhir.log.2.gz ] || mv -f fhir.log.2.gz fhir.log.3.gz
        [ ! -f fhir.log.1.gz ] || mv -f fhir.log.1.gz fhir.log.2.gz
        cp fhir.log fhir.log.1 && truncate -s 0 fhir.log && gzip -f fhir.log.1
        rm -f fhir.log.3.gz
        echo "GET /metadata 200 after rotation" >>fhir.log'
done
step "rotated logs listed" ls -la /var/log /srv/log

# --- Health checks against the server on loopback ----------------------------------------
for i in 1 2 3 4 5; do
    step "health check $i" wget -q -O /dev/null "$base/metadata"
done
step "health check with the body kept" sh -c "wget -q -O /tmp/metadata.json '$base/metadata' && grep -c CapabilityStatement /tmp/metadata.json && rm -f /tmp/metadata.json"

# --- Backups of the data directory -------------------------------------------------------
step "backup directory" mkdir -p /backup
step "tar backup of /data" sh -c 'tar -czf /backup/data-$(date +%Y%m%d%H%M%S).tar.gz -C /data .'
step "copy backup of /data" cp -a /data /backup/data-copy
step "backup checked" sh -c 'tar -tzf /backup/data-*.tar.gz | head -5; ls -la /backup/data-copy'
step "old backups pruned" sh -c 'rm -rf /backup/data-copy; ls /backup'

# --- An operator reading logs over docker exec, with and without a terminal ---------------
step "tail of the system log" tail -n 20 /var/log/messages
step_tty "tail of the system log" tail -n 20 /var/log/messages
step "errors in the system log" sh -c 'grep -i error /var/log/messages || true'
step_tty "grep of the application log" grep -c GET /srv/log/fhir.log
step "cat of the application log" cat /srv/log/fhir.log
step_tty "cat of the rotated system log" cat /var/log/messages.0
step "less of the application log" less /srv/log/fhir.log
step "compressed log read" sh -c 'zcat /srv/log/fhir.log.1.gz | tail -n 3'
step "log sizes" du -sh /var/log /srv/log

echo "benign-corpus: $steps steps ran in $ops"
