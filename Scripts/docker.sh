#!/usr/bin/env bash
# Docker for the sensor tests: Debian's docker.io, no bridge networking (containers use --network host).
#   start    install docker.io and busybox-static if missing, start dockerd if it is not answering
#   status   exit 0 if dockerd answers
#   testbox  build caduceus-testbox:latest if missing or stale, print its name
# The testbox image is made without a registry: `docker import` of a tarball holding a static busybox
# (sh, cat, nc, ...), /etc/{hostname,passwd,group}, /tmp (1777) and /usr/local/bin/storm (Scripts/sensor/storm.c).
set -euo pipefail

SCRIPTS="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
IMAGE=caduceus-testbox:latest
LABEL=caduceus.testbox.inputs
LOG=/tmp/caduceus-dockerd.log
BUSYBOX=/usr/bin/busybox
STORM_C="$SCRIPTS/sensor/storm.c"

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
answering() { docker info >/dev/null 2>&1; }
# Serialise start/testbox: two concurrent starts would race two dockerds for /var/run/docker.pid.
lock() { exec 9>/tmp/caduceus-docker.lock; flock 9; }

case "${1:-}" in
start)
    lock
    if ! command -v dockerd >/dev/null || ! command -v docker >/dev/null || [ ! -x "$BUSYBOX" ]; then
        echo "docker.sh: apt-get install docker.io busybox-static" >&2
        $SUDO apt-get update -qq
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends docker.io busybox-static
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
    # Inputs: storm's source, the busybox binary, and this script (it defines the image's layout).
    hash="$(cat "$STORM_C" "$BUSYBOX" "$SCRIPTS/docker.sh" | sha256sum | cut -c1-64)"
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
    echo 'root:x:0:0:root:/root:/bin/sh' >"$root/etc/passwd"
    echo 'root:x:0:' >"$root/etc/group"
    cc -O2 -Wall -static -o "$root/usr/local/bin/storm" "$STORM_C"
    tar --numeric-owner --owner=0 --group=0 -C "$root" -cf "$tmp/rootfs.tar" .
    docker import \
        --change 'CMD ["/bin/sh"]' \
        --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
        --change "LABEL $LABEL=$hash" \
        "$tmp/rootfs.tar" "$IMAGE" >/dev/null
    # The previous build is now untagged: drop it (fails harmlessly if a container still uses it).
    new_id="$(docker image inspect -f '{{.Id}}' "$IMAGE")"
    if [ -n "$old_id" ] && [ "$old_id" != "$new_id" ]; then docker rmi "$old_id" >/dev/null 2>&1 || true; fi
    echo "docker.sh: built $IMAGE" >&2
    echo "$IMAGE"
    ;;
*) echo "usage: $0 start|status|testbox" >&2; exit 2 ;;
esac
