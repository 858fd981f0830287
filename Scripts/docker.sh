#!/usr/bin/env bash
# Docker for the sensor tests: Debian's docker.io, no bridge networking (containers use --network host).
#   start    install docker.io, docker-compose and busybox-static if missing, start dockerd if it is not answering
#   status   exit 0 if dockerd answers
#   testbox  build caduceus-testbox:latest if missing or stale, print its name
# Images are made without a registry: `docker import` of a tarball.
# testbox: a static busybox (sh, cat, nc, ...), /etc/{hostname,passwd,group}, /tmp (1777),
# /usr/local/bin/storm (Scripts/sensor/storm.c), /usr/local/bin/behave (Scripts/sensor/behave.c and
# behave_primitives.c), and
# fake but real-looking files the live rule tests (rules/*.test.yaml) read, write or remove:
# /etc/shadow, /etc/sudoers, /etc/ssl/private, /root/.ssh, /root/.aws, /var/log, /etc/cron.d, ...
# The FHIR server's image (caduceus-fhir:latest) is built by `caduceus images` (Sources/Lab/Deployment).
set -euo pipefail

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE=caduceus-testbox:latest
LABEL=caduceus.testbox.inputs
LOG=/tmp/caduceus-dockerd.log
BUSYBOX=/usr/bin/busybox
STORM_C="$SCRIPTS/sensor/storm.c"
BEHAVE_C="$SCRIPTS/sensor/behave.c"
BEHAVE_PRIMITIVES_C="$SCRIPTS/sensor/behave_primitives.c"
BEHAVE_H="$SCRIPTS/sensor/behave.h"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
answering() { docker info >/dev/null 2>&1; }
# Serialise start/testbox: two concurrent starts would race two dockerds for /var/run/docker.pid.
lock() { exec 9>/tmp/caduceus-docker.lock; flock 9; }
# import_image IMAGE OLD_ID TARBALL [--change ...]: docker import the tarball as IMAGE, then drop the
# image the tag pointed to before (fails harmlessly if a container still uses it).
import_image() {
    local image="$1" old_id="$2" tarball="$3"
    shift 3
    docker import "$@" "$tarball" "$image" >/dev/null
    local new_id
    new_id="$(docker image inspect -f '{{.Id}}' "$image")"
    if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then docker rmi "$old_id" >/dev/null 2>&1 || true; fi
}

case "${1:-}" in
start)
    lock
    if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null || ! command -v docker-compose >/dev/null \
        || [ ! -x "$BUSYBOX" ]; then
        echo "docker.sh: apt-get install docker.io docker-compose busybox-static" >&2
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io docker-compose busybox-static
    fi
    if answering; then
        echo "docker.sh: dockerd already running" >&2
        exit 0
    fi
    # No bridge/iptables here: the default bridge cannot be set up on this kernel, and tests use loopback only.
    # 9>&-: dockerd must not inherit the lock, or every later start/testbox would wait for it forever.
    $SUDO setsid nohup dockerd --bridge=none --iptables=false >"$LOG" 2>&1 </dev/null 9>&- &
    for _ in $(seq 60); do
        answering && { echo "docker.sh: dockerd started (log in $LOG)" >&2; exit 0; }
        sleep 1
    done
    echo "docker.sh: dockerd did not answer within 60 s; last lines of $LOG:" >&2
    tail -n 20 "$LOG" >&2
    exit 1
    ;;
status) answering ;;
testbox)
    lock
    answering || { echo "docker.sh: dockerd is not running (run $0 start)" >&2; exit 1; }
    [ -x "$BUSYBOX" ] || { echo "docker.sh: $BUSYBOX missing (run $0 start)" >&2; exit 1; }
    command -v cc >/dev/null || { echo "docker.sh: no C compiler (apt-get install gcc libc6-dev)" >&2; exit 1; }
    # Inputs: storm's and behave's sources, the busybox binary, and this script (it defines the image's layout).
    hash="$(cat "$STORM_C" "$BEHAVE_C" "$BEHAVE_PRIMITIVES_C" "$BEHAVE_H" "$BUSYBOX" "$SCRIPTS/docker.sh" | sha256sum | cut -c1-64)"
    old_id="$(docker image inspect -f '{{.Id}}' "$IMAGE" 2>/dev/null || true)"
    if [ -n "$old_id" ] && [ "$(docker image inspect -f "{{index .Config.Labels \"$LABEL\"}}" "$IMAGE")" = "$hash" ]; then
        echo "$IMAGE"
        exit 0
    fi
    tmp="$(mktemp -d /tmp/caduceus-testbox.XXXXXX)"
    trap 'rm -rf "$tmp"' EXIT
    root="$tmp/rootfs"
    mkdir -p "$root"/{bin,etc,root,proc,sys,dev,usr/local/bin,tmp}
    chmod 1777 "$root/tmp"
    chmod 700 "$root/root"
    cp "$BUSYBOX" "$root/bin/busybox"
    for applet in $("$BUSYBOX" --list); do
        [ "$applet" = busybox ] || ln -s busybox "$root/bin/$applet"
    done
    echo testbox >"$root/etc/hostname"
    printf '%s\n' 'root:x:0:0:root:/root:/bin/sh' 'www-data:x:33:33:www-data:/var/www:/bin/sh' \
        'postgres:x:999:999:PostgreSQL:/var/lib/postgresql:/bin/sh' 'nobody:x:65534:65534:nobody:/nonexistent:/bin/false' \
        >"$root/etc/passwd"
    printf '%s\n' 'root:x:0:' 'www-data:x:33:' 'postgres:x:999:' 'nogroup:x:65534:' >"$root/etc/group"
    # What the live rule tests touch (all fake: no real secret is in the image).
    mkdir -p "$root"/{mnt,opt,run,var/log,var/spool/cron/crontabs,etc/cron.d,etc/init.d,etc/sudoers.d,etc/ssl/private} \
        "$root"/{etc/ssl/certs,root/.ssh,root/.aws,lib64,lib/x86_64-linux-gnu,run/secrets/kubernetes.io/serviceaccount}
    ln -s ../run "$root/var/run"
    printf '%s\n' 'root:*:19000:0:99999:7:::' 'www-data:*:19000:0:99999:7:::' 'postgres:*:19000:0:99999:7:::' \
        'nobody:*:19000:0:99999:7:::' >"$root/etc/shadow"
    printf '%s\n' 'root:*::' 'www-data:*::' 'postgres:*::' 'nogroup:*::' >"$root/etc/gshadow"
    chmod 640 "$root/etc/shadow" "$root/etc/gshadow"
    printf '%s\n' 'Defaults env_reset' 'root ALL=(ALL:ALL) ALL' '@includedir /etc/sudoers.d' >"$root/etc/sudoers"
    chmod 440 "$root/etc/sudoers"
    printf '%s\n' '-----BEGIN PRIVATE KEY-----' 'ZmFrZSB0bHMga2V5IGZvciB0aGUgY2FkdWNldXMgdGVzdGJveA==' '-----END PRIVATE KEY-----' \
        >"$root/etc/ssl/private/server.key"
    printf '%s\n' '-----BEGIN CERTIFICATE-----' 'ZmFrZSBjZXJ0aWZpY2F0ZQ==' '-----END CERTIFICATE-----' >"$root/etc/ssl/certs/server.pem"
    printf '%s\n' '-----BEGIN OPENSSH PRIVATE KEY-----' 'ZmFrZSBzc2gga2V5IGZvciB0aGUgY2FkdWNldXMgdGVzdGJveA==' \
        '-----END OPENSSH PRIVATE KEY-----' >"$root/root/.ssh/id_rsa"
    echo 'ssh-rsa ZmFrZQ== root@testbox' >"$root/root/.ssh/id_rsa.pub"
    printf '%s\n' '[default]' 'aws_access_key_id = AKIAFAKEFAKEFAKEFAKE' 'aws_secret_access_key = fake/fake/fake' \
        >"$root/root/.aws/credentials"
    chmod 700 "$root/etc/ssl/private" "$root/root/.ssh" "$root/root/.aws"
    chmod 600 "$root/etc/ssl/private/server.key" "$root/root/.ssh/id_rsa" "$root/root/.aws/credentials"
    printf '%s\n' 'ls' 'cat /etc/hostname' >"$root/root/.ash_history"
    echo 'eyJhbGciOiJSUzI1NiJ9.ZmFrZSB0b2tlbg.ZmFrZQ' >"$root/run/secrets/kubernetes.io/serviceaccount/token"
    printf '%s\n' 'Jan  1 00:00:00 testbox caduceus[1]: started' >"$root/var/log/messages"
    printf '%s\n' '#!/bin/sh' 'exit 0' >"$root/etc/init.d/rcS"
    chmod 755 "$root/etc/init.d/rcS"
    # Stand-ins for the dynamic loader (busybox is static: nothing loads them).
    echo 'not a real loader' >"$root/lib/x86_64-linux-gnu/ld-linux-x86-64.so.2"
    ln -s ../lib/x86_64-linux-gnu/ld-linux-x86-64.so.2 "$root/lib64/ld-linux-x86-64.so.2"
    cc -O2 -Wall -static -o "$root/usr/local/bin/storm" "$STORM_C"
    cc -O2 -Wall -static -o "$root/usr/local/bin/behave" "$BEHAVE_C" "$BEHAVE_PRIMITIVES_C"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$tmp/rootfs.tar" .
    import_image "$IMAGE" "$old_id" "$tmp/rootfs.tar" \
        --change 'CMD ["/bin/sh"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change "LABEL $LABEL=$hash"
    echo "docker.sh: built $IMAGE" >&2
    echo "$IMAGE"
    ;;
*) echo "usage: $0 start|status|testbox" >&2; exit 2 ;;
esac
