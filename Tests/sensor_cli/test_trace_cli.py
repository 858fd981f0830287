"""`caduceus trace` and `caduceus summary` as a user runs them: real binary, real kernel,
a real container, and the graduation project's jq | awk pipeline on the output.

Needs root and Docker with caduceus-testbox (Scripts/docker.sh start && testbox);
CADUCEUS_BIN names the binary (default .build/debug/caduceus)."""
import json
import os
import subprocess
import time
import uuid

import pytest

BIN = os.environ.get("CADUCEUS_BIN", ".build/debug/caduceus")
IMAGE = "caduceus-testbox:latest"


def run(*args, **kwargs):
    return subprocess.run(list(args), capture_output=True, text=True, timeout=60, **kwargs)


def require_root_and_docker():
    """Skips without root or a Docker engine; fails instead under CI=true."""
    problems = []
    if os.geteuid() != 0:
        problems.append("root")
    if run("docker", "info").returncode != 0:
        problems.append("a running Docker engine (Scripts/docker.sh start)")
    if problems:
        message = "needs " + " and ".join(problems)
        if os.environ.get("CI") == "true":
            pytest.fail(message)
        pytest.skip(message)


@pytest.fixture
def container():
    """A testbox container on the host network, removed afterwards; its name."""
    require_root_and_docker()
    name = "caduceus-cli-" + uuid.uuid4().hex[:8]
    started = run("docker", "run", "-d", "--network", "host", "--name", name, IMAGE, "/bin/sleep", "60")
    assert started.returncode == 0, started.stderr
    yield name
    run("docker", "rm", "-f", name)


def trace_while(arguments, action, seconds=3.0):
    """Starts `caduceus trace`, waits until it is attached, runs `action`, returns the process result."""
    return run_while_attached(["trace", "--duration", str(seconds), *arguments], action)


def run_while_attached(arguments, action):
    """Starts `caduceus ARGUMENTS` (trace or detect), waits until it says it is attached, runs
    `action`, waits for it to end: (exit status, stdout, stderr)."""
    process = subprocess.Popen([BIN, *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 20
    lines = []
    while time.time() < deadline:
        line = process.stderr.readline()
        lines.append(line)
        if "Ctrl-C to stop" in line or not line:
            break
    action()
    stdout, stderr = process.communicate(timeout=60)
    return process.returncode, stdout, "".join(lines) + stderr


def test_json_lines_feed_the_jq_pipeline_and_summary(container, tmp_path):
    output = tmp_path / "events.json"
    code, _, stderr = trace_while(
        ["--container", container, "--events", "execve,openat,security_file_open", "--output", str(output)],
        lambda: run("docker", "exec", container, "/bin/cat", "/etc/hostname"))
    assert code == 0, stderr
    final = stderr.strip().splitlines()[-1]
    assert final.startswith("caduceus trace: ") and " 0 lost in the kernel" in final, final

    events = [json.loads(line) for line in output.read_text().splitlines()]
    assert all(event["container"]["name"] == container for event in events)
    assert any(e["eventName"] == "execve" and e["args"][1]["value"] == ["/bin/cat", "/etc/hostname"] for e in events)
    assert any(e["eventName"] == "security_file_open" and e["args"][0]["value"] == "/etc/hostname" for e in events)
    assert int(final.split()[2]) == len(events)

    pipeline = run("sh", "-c", "jq '.eventName' " + str(output)
                   + " | awk '{count[$0]++} END {for (word in count) print word, count[word]}'")
    assert pipeline.returncode == 0, pipeline.stderr
    jq_counts = {line.split()[0].strip('"'): int(line.split()[1]) for line in pipeline.stdout.splitlines()}
    summary = run(BIN, "summary", str(output))
    assert summary.returncode == 0, summary.stderr
    rows = [line.split() for line in summary.stdout.splitlines()[1:]]
    summary_counts = {name: int(count) for name, count in rows if name != "total"}
    assert summary_counts == jq_counts
    assert [count for _, count in rows[:-1]] == sorted((count for _, count in rows[:-1]), key=lambda c: -int(c))


@pytest.mark.parametrize("form", ["json", "record"])
def test_a_quiet_traces_events_reach_the_output_while_it_runs(container, tmp_path, form):
    """A few events at a time used to sit in the trace's output buffer (1 MiB) until the trace
    stopped: `caduceus trace | jq` showed nothing. They must arrive within the flush interval
    (0.2 s) plus a poll (0.1 s), with the trace still running."""
    output = tmp_path / ("events." + form)
    process = subprocess.Popen(
        [BIN, "trace", "--container", container, "--events", "execve", "--format", form, "--output", str(output)],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 30
        while time.time() < deadline and "Ctrl-C to stop" not in process.stderr.readline():
            pass
        assert process.poll() is None, "the trace ended early"
        exec_done = run("docker", "exec", container, "/bin/cat", "/etc/hostname")
        assert exec_done.returncode == 0, exec_done.stderr
        seen = b""
        deadline = time.time() + 5
        while time.time() < deadline and b"/etc/hostname" not in seen:
            time.sleep(0.1)
            seen = output.read_bytes()
        assert b"/etc/hostname" in seen, f"{len(seen)} bytes written while the trace runs"
        assert process.poll() is None
    finally:
        process.send_signal(2)
        process.communicate(timeout=60)
    if form == "json":
        events = [json.loads(line) for line in output.read_text().splitlines()]
        assert sum(e["eventName"] == "execve" for e in events) >= 1
    else:
        replayed = run(BIN, "trace", "--input", str(output))
        assert replayed.returncode == 0, replayed.stderr
        assert "/etc/hostname" in replayed.stdout


def test_table_format_is_readable(container):
    code, stdout, stderr = trace_while(
        ["--container", container, "--events", "execve", "--format", "table"],
        lambda: run("docker", "exec", container, "/bin/true"))
    assert code == 0, stderr
    lines = stdout.splitlines()
    assert lines[0].split()[:4] == ["TIME", "CONTAINER", "COMM", "PID/TID"]
    assert any("execve" in line and "pathname=/bin/true" in line for line in lines[1:])


@pytest.mark.parametrize("arguments, message", [
    (["--events", "opn"], "unknown event or set 'opn'"),
    (["--events", "default,-default"], "selects no event"),
    (["--duration=-1"], "--duration must be a positive number"),
    (["--filter", "openat.path=/etc/*"], "has no argument 'path'"),
    (["--scope", "everything"], "--scope must be"),
    (["--ring-buffer-mb", "3"], "power of two"),
    (["--container", "no-such-container-anywhere"], "no running container"),
])
def test_bad_options_get_a_clear_error(arguments, message):
    result = run(BIN, "trace", "--duration", "1", *arguments)
    assert result.returncode != 0
    assert message in result.stderr, result.stderr


def test_summary_of_a_missing_file_says_so(tmp_path):
    result = run(BIN, "summary", str(tmp_path / "missing.json"))
    assert result.returncode != 0 and "cannot read" in result.stderr
