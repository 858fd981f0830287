"""`kill -9` of `caduceus detect --enforce` leaves nothing behind: no BPF program or link of
its own, no program attached to a cgroup, no fanotify group (they belong to its file
descriptors), and the container it enforced in keeps running, opens the files and makes the
connections that its rules had refused or killed.

The detector's own objects are read from /proc/<pid>/fdinfo before the kill (prog_id, link_id,
fanotify lines): other sensors may run on this machine at the same time, and only the ids it
held are looked for afterwards. Cgroup programs are also looked for on the container's own
cgroup (v2), whoever attached them, since a program attached with BPF_PROG_ATTACH outlives the
file descriptor that attached it.

Needs root, Docker with caduceus-testbox and bpftool (Scripts/setup.sh); fails instead of
skipping under CI=true. CADUCEUS_BIN names the binary."""
import json
import os
import shutil
import signal
import socket
import threading
import time
import uuid

import pytest

from attached_detector import AttachedDetector
from test_trace_cli import IMAGE, require_root_and_docker, run

RULES = """
- rule: Victim file opened in a container
  id: KILL9-OPEN
  desc: An open of the victim file (kernel-enforceable shape; a fanotify permission mark where that lands).
  condition: evt.type in (open, openat, openat2) and fd.name = /tmp/kill9-victim and container.id != host
  output: "victim opened (proc=%proc.name)"
  priority: CRITICAL
  action: kill
- rule: Loopback connect from a container
  id: KILL9-CONNECT
  desc: A connect to 127.0.0.1 (kernel-enforceable shape; a cgroup connect4 program where that lands).
  condition: evt.type = connect and fd.sip = 127.0.0.1 and container.id != host
  output: "connect (proc=%proc.name)"
  priority: CRITICAL
  action: kill
"""


def require_bpftool():
    if shutil.which("bpftool") is None:
        message = "needs bpftool (Scripts/setup.sh installs it)"
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


def parse(output):
    """bpftool's JSON; it prints nothing (or a bare newline) for an empty list."""
    return json.loads(output.strip() or "[]")


def bpftool(*arguments):
    result = run("bpftool", "-j", *arguments)
    assert result.returncode == 0, result.stderr
    return parse(result.stdout)


def held_objects(pid):
    """The BPF programs and links and the fanotify groups that process `pid` holds, from its fdinfo."""
    programs, links, fanotify = set(), set(), 0
    directory = f"/proc/{pid}/fdinfo"
    for fd in os.listdir(directory):
        try:
            with open(os.path.join(directory, fd)) as file:
                text = file.read()
        except OSError:
            continue  # closed meanwhile
        for line in text.splitlines():
            key, _, value = line.partition(":")
            if key == "prog_id":
                programs.add(int(value))
            elif key == "link_id":
                links.add(int(value))
        if "fanotify" in text:
            fanotify += 1
    return programs, links, fanotify


def cgroup2_mount():
    with open("/proc/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if fields[2] == "cgroup2":
                return fields[1]
    pytest.fail("no cgroup2 hierarchy mounted: cgroup BPF programs need one")


def container_cgroup(pid):
    """The container's cgroup directory in the v2 hierarchy."""
    with open(f"/proc/{pid}/cgroup") as lines:
        for line in lines:
            if line.startswith("0::"):
                return os.path.join(cgroup2_mount(), line.strip()[3:].lstrip("/"))
    pytest.fail(f"process {pid} has no cgroup v2 entry")


def cgroup_programs(path):
    """(program id, attach type) of every BPF program attached to the cgroup at `path` itself (not
    inherited ones: another sensor on the machine may attach to an ancestor meanwhile)."""
    result = run("bpftool", "-j", "cgroup", "show", path)
    assert result.returncode == 0, result.stderr
    return {(p["id"], p.get("attach_type", "")) for p in parse(result.stdout)}


def all_cgroup_program_ids():
    """Every program attached anywhere in the v2 hierarchy."""
    result = run("bpftool", "-j", "cgroup", "tree", cgroup2_mount())
    assert result.returncode == 0, result.stderr
    ids = set()
    for entry in parse(result.stdout):
        for program in entry.get("programs", []):
            ids.add(program["id"])
    return ids


class Listener:
    """A TCP listener on 127.0.0.1 that counts the connections it accepts."""

    def __init__(self):
        self.socket = socket.socket()
        self.socket.bind(("127.0.0.1", 0))
        self.socket.listen(16)
        self.socket.settimeout(0.2)
        self.port = self.socket.getsockname()[1]
        self.accepted = 0
        self.running = True
        self.thread = threading.Thread(target=self.serve, daemon=True)
        self.thread.start()

    def serve(self):
        while self.running:
            try:
                connection, _ = self.socket.accept()
                self.accepted += 1
                connection.close()
            except OSError:
                pass

    def close(self):
        self.running = False
        self.thread.join()
        self.socket.close()


def wait_until(check, seconds=10.0):
    deadline = time.time() + seconds
    while time.time() < deadline:
        if check():
            return True
        time.sleep(0.1)
    return check()


def test_kill_9_of_detect_leaves_no_program_link_cgroup_program_or_fanotify_group(tmp_path):
    require_root_and_docker()
    require_bpftool()
    rules = tmp_path / "kill9.yaml"
    rules.write_text(RULES)
    name = "caduceus-kill9-" + uuid.uuid4().hex[:8]
    started = run("docker", "run", "-d", "--network", "host", "--name", name, IMAGE, "/bin/sh", "-c",
                  "echo original > /tmp/kill9-victim && exec /bin/sleep 600")
    assert started.returncode == 0, started.stderr
    listener = Listener()
    detector = None
    try:
        box = int(run("docker", "inspect", "-f", "{{.State.Pid}}", name).stdout.strip())
        cgroup = container_cgroup(box)
        before_cgroup = cgroup_programs(cgroup)

        # Enforce in this container only: other tests on the machine are left alone.
        detector = AttachedDetector(["--rules", str(rules), "--enforce", "--enforce-container", name, "--format", "json"])

        programs, links, fanotify = held_objects(detector.pid)
        loaded = {p["id"] for p in bpftool("prog", "show")}
        linked = {link["id"] for link in bpftool("link", "show")}
        assert programs and programs <= loaded, (programs, loaded)
        assert links <= linked, (links, linked)
        on_cgroups = programs & all_cgroup_program_ids()
        on_container = cgroup_programs(cgroup) - before_cgroup
        print(f"detector {detector.pid}: {len(programs)} programs, {len(links)} links, "
              f"{len(on_cgroups)} cgroup programs ({sorted(on_container)} on the container's cgroup), {fanotify} fanotify groups")

        # Enforcement is on: the open of the victim and the connect are refused or killed.
        refused_open = run("docker", "exec", name, "/bin/cat", "/tmp/kill9-victim")
        assert refused_open.returncode != 0, refused_open.stdout
        refused_connect = run("docker", "exec", name, "/usr/local/bin/behave", "tcp-connect", "127.0.0.1", str(listener.port))
        assert refused_connect.returncode != 0 or "= -1" in refused_connect.stdout, refused_connect.stdout
        accepted_while_enforced = listener.accepted

        detector.process.send_signal(signal.SIGKILL)
        assert detector.wait(timeout=10) == -signal.SIGKILL
        assert not os.path.exists(f"/proc/{detector.pid}"), "the detector's process is gone, and its fanotify groups with it"

        # The kernel frees programs and links after their last reference, a moment later.
        def nothing_left():
            return (not programs & {p["id"] for p in bpftool("prog", "show")}
                    and not links & {link["id"] for link in bpftool("link", "show")}
                    and not programs & all_cgroup_program_ids()
                    and cgroup_programs(cgroup) == before_cgroup)
        assert wait_until(nothing_left), {
            "programs": sorted(programs & {p["id"] for p in bpftool("prog", "show")}),
            "links": sorted(links & {link["id"] for link in bpftool("link", "show")}),
            "cgroup programs": sorted(programs & all_cgroup_program_ids()),
            "on the container's cgroup": sorted(cgroup_programs(cgroup) - before_cgroup),
        }
        # No process holds a fanotify group marking this container's files: the open below
        # would wait for a permission answer that never comes.

        # The container was not touched: still running, its first process the same, and it
        # opens the victim (unchanged) and connects to the listener.
        assert run("docker", "inspect", "-f", "{{.State.Running}} {{.State.Pid}}", name).stdout.split() == ["true", str(box)]
        opened = run("docker", "exec", name, "/bin/cat", "/tmp/kill9-victim")
        assert (opened.returncode, opened.stdout) == (0, "original\n"), opened.stderr
        connected = run("docker", "exec", name, "/usr/local/bin/behave", "tcp-connect", "127.0.0.1", str(listener.port))
        assert connected.returncode == 0 and "= -1" not in connected.stdout, connected.stdout
        assert wait_until(lambda: listener.accepted > accepted_while_enforced, 5), "the listener accepted the connection"
    finally:
        if detector is not None:
            detector.end()
        listener.close()
        run("docker", "rm", "-f", name)
