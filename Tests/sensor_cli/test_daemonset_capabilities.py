"""The Kubernetes sensor DaemonSet's least privilege (deploy/kubernetes/30-sensor.yaml), on this
machine's kernel: `caduceus detect` run as root with exactly the capabilities the manifest adds
(setpriv empties the bounding set but for them, as a container runtime does after dropping ALL)
and the manifest's own arguments, against a real FHIR server and a real container.

- With the manifest's set: the attack alerts, with the executables of ancestors that started
  before the sensor, and reaches the server's audit trail with the node's name as source.site.
- Without each capability of the set: detect stops with a clear error (BPF, PERFMON) or the
  alerts lose the ancestors' executables (SYS_PTRACE): none is there for nothing.

Not a cluster run: the container runtime, hostPath mounts, seccomp and AppArmor settings of
the manifest are not exercised here. Needs root, BPF, Docker (fails under CI=true without)."""
import json
import re
import subprocess
import time
import urllib.parse
import uuid
from pathlib import Path

import yaml

from test_audit_feed import ALERT_TYPE, Server
from test_trace_cli import BIN, IMAGE, require_root_and_docker, run

MANIFEST = Path(__file__).resolve().parents[2] / "deploy/kubernetes/30-sensor.yaml"
NODE = "node-under-test"

# Bit numbers of linux/capability.h.
CAPABILITY_BITS = {"SYS_PTRACE": 19, "SYS_ADMIN": 21, "SYS_RESOURCE": 24, "KILL": 5, "NET_ADMIN": 12,
                   "DAC_READ_SEARCH": 2, "DAC_OVERRIDE": 1, "PERFMON": 38, "BPF": 39}


def sensor_container():
    """The DaemonSet's one container, from the manifest."""
    documents = [d for d in yaml.safe_load_all(MANIFEST.read_text()) if d]
    daemonset = next(d for d in documents if d["kind"] == "DaemonSet")
    containers = daemonset["spec"]["template"]["spec"]["containers"]
    assert len(containers) == 1
    return containers[0]


def detect_command(capabilities, server):
    """setpriv keeping only `capabilities`, then the manifest's arguments pointed at `server`."""
    arguments = []
    for argument in sensor_container()["args"]:
        if argument.startswith("--audit-url="):
            argument = "--audit-url=" + server.base
        elif argument.startswith("--audit-token-file="):
            argument = "--audit-token-file=" + str(server.token)
        arguments.append(argument.replace("$(NODE_NAME)", NODE))
    keep = ",".join("+" + name.lower() for name in capabilities)
    return (["setpriv", "--bounding-set", "-all" + ("," + keep if keep else ""), "--inh-caps=-all", "--", BIN]
            + arguments + ["--duration", "3"])


def run_detect(command):
    """Starts a container whose shell, once told, reads /etc/shadow; then detect; checks its
    effective capabilities once attached, sets the attack off; the (exit status, the alerts
    about that container, standard error, effective capability mask). The shell and the
    container's shim start before the sensor: only /proc can tell their executables."""
    container_name = "caduceus-k8s-caps-" + uuid.uuid4().hex[:8]
    attack = "while [ ! -e /tmp/go ]; do sleep 0.1; done; cat /etc/shadow; sleep 30"
    started = run("docker", "run", "-d", "--network", "none", "--name", container_name, IMAGE, "/bin/sh", "-c", attack)
    assert started.returncode == 0, started.stderr
    try:
        return run_detect_beside(command, container_name)
    finally:
        run("docker", "rm", "-f", container_name)


def run_detect_beside(command, container_name):
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    lines = []
    deadline = time.time() + 30
    while time.time() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if "Ctrl-C to stop" in line or not line:
            break
    effective = None
    if process.poll() is None:
        status = Path(f"/proc/{process.pid}/status").read_text()
        effective = int(re.search(r"^CapEff:\s*([0-9a-f]+)$", status, re.M).group(1), 16)
        run("docker", "exec", container_name, "/bin/touch", "/tmp/go")
    stdout, stderr = process.communicate(timeout=60)
    # Every container of the machine is watched, as on a node: this test's only.
    alerts = [a for a in map(json.loads, (line for line in stdout.splitlines() if line.startswith("{")))
              if a["container"]["name"] == container_name]
    return process.returncode, alerts, "".join(lines) + stderr, effective


def shim_ancestor(alert):
    """The ancestors that started before the sensor and that the container cannot change: its shim."""
    return [a for a in alert["ancestors"] if "containerd-shim" in a.get("exepath", "")]


def test_the_manifests_capabilities_are_enough_and_each_is_needed(tmp_path):
    require_root_and_docker()
    security = sensor_container()["securityContext"]
    assert security["capabilities"]["drop"] == ["ALL"]
    added = security["capabilities"]["add"]
    assert sorted(added) == ["BPF", "PERFMON", "SYS_PTRACE"], "README and this test name the set: update both"

    server = Server(tmp_path)
    try:
        status, alerts, stderr, effective = run_detect(detect_command(added, server))
        assert status == 0, stderr
        assert effective == sum(1 << CAPABILITY_BITS[name] for name in added), hex(effective or 0)
        shadow = [a for a in alerts if a["ruleId"] == "CAD-007"]
        assert shadow, stderr
        assert shim_ancestor(shadow[0]), shadow[0]["ancestors"]
        assert "0 failed" in stderr and "alerts fed" in stderr, stderr
        fed = server.search("site=" + NODE + "&type=" + urllib.parse.quote(ALERT_TYPE) + "&entity=Device/" + shadow[0]["container"]["name"])
        assert any(a["subtype"][0]["code"] == "CAD-007" for a in fed), fed
        assert all(a["source"]["site"] == NODE for a in fed)

        without_ptrace = [name for name in added if name != "SYS_PTRACE"]
        status, alerts, stderr, _ = run_detect(detect_command(without_ptrace, server))
        assert status == 0, stderr
        shadow = [a for a in alerts if a["ruleId"] == "CAD-007"]
        assert shadow and not shim_ancestor(shadow[0]), "SYS_PTRACE is what reads the older processes' executables"

        for missing in ["BPF", "PERFMON"]:
            status, _, stderr, _ = run_detect(detect_command([n for n in added if n != missing], server))
            # A clear error and exit status 1: not a crash (a debug build's SIGILL once, from the
            # audit feed's HTTP client released unstopped).
            assert status == 1 and "Operation not permitted" in stderr, f"without {missing}: {status} {stderr[-2000:]}"
    finally:
        server.stop()
