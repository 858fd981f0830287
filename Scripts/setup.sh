#!/usr/bin/env bash
# Installs what a fresh Debian 12 machine lacks:
#   Scripts/setup.sh build   libbpf-dev, needed to build the sensor (any build of caduceus)
#   Scripts/setup.sh         that, plus every tool a test or benchmark calls: PostgreSQL 15, curl, jq,
#                            Chromium (the report's screenshot test), auditd and strace (the overhead
#                            benchmark's peers, whose test reads auditctl before the benchmark runs),
#                            and a Python venv (.venv) with the pinned black-box test clients and
#                            kubernetes-validate (the Kubernetes manifests' offline schema check)
# Docker and the sensor's test image come from Scripts/docker.sh. Idempotent and quick
# when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
[ "$(id -u)" = 0 ] || SUDO=sudo
apt_updated=""
apt_install() {
    if [ -z "$apt_updated" ]; then
        echo "setup: apt-get update"
        $SUDO apt-get update -qq
        apt_updated=1
    fi
    echo "setup: apt-get install $*"
    $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"
}

install_missing() {
    local missing=()
    for pkg in "$@"; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "ok installed" || missing+=("$pkg")
    done
    if [ ${#missing[@]} -gt 0 ]; then apt_install "${missing[@]}"; else echo "setup: $* present"; fi
}

install_missing libbpf-dev pkg-config
if [ "${1:-}" = build ]; then exit 0; fi
install_missing postgresql-15 curl jq chromium auditd strace
# bpftool: the kill -9 test lists the BPF programs, links and cgroup programs left behind (Tests/sensor_cli/test_detect_kill9.py).
install_missing bpftool
# haproxy: `caduceus up --postgres --replicas N` puts Debian's in front of the servers (Tests/deployment/test_cluster.py).
install_missing haproxy

if [ ! -x .venv/bin/python ]; then
    echo "setup: creating .venv"
    if ! python3 -m venv .venv; then
        rm -rf .venv
        apt_install python3-venv
        # Debian's python3-venv fixes Debian's python3; a pyenv python3 earlier in PATH would still fail.
        python3 -m venv .venv 2>/dev/null || { rm -rf .venv; /usr/bin/python3 -m venv .venv; }
    fi
fi

# Reinstall only when the pins changed since the last successful install.
req=Tests/blackbox/requirements.txt
if cmp -s "$req" .venv/.installed-requirements.txt; then
    echo "setup: .venv up to date"
else
    echo "setup: pip install -r $req"
    .venv/bin/python -m pip install -q --disable-pip-version-check -r "$req"
    cp "$req" .venv/.installed-requirements.txt
fi
echo "setup: done"
