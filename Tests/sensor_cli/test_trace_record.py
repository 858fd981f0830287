"""`caduceus trace --format record` and `trace --input` as a user runs them: a real container
traced to a compact recording, turned into the JSON a `jq` user reads, counted by `summary`;
damaged recordings refused with a clear error and exit status 1, never a crash or a hang.

Needs root and Docker with caduceus-testbox for the live part; CADUCEUS_BIN names the binary."""
import json
import os

from test_trace_cli import BIN, container, run, trace_while  # noqa: F401 (container is a fixture)


def record(container, path):
    """Traces the container to a recording while it runs a few commands; the trace's last stderr line."""
    code, stdout, stderr = trace_while(
        ["--container", container, "--events", "all", "--format", "record", "--output", str(path)],
        lambda: run("docker", "exec", container, "/bin/sh", "-c", "cat /etc/hostname; ls /etc >/dev/null"))
    assert code == 0, stderr
    assert stdout == ""
    final = stderr.strip().splitlines()[-1]
    assert " 0 lost in the kernel" in final and " bytes written (" in final, final
    return final


def test_recording_gives_the_json_and_the_counts(container, tmp_path):
    recording = tmp_path / "events.rec"
    final = record(container, recording)
    written = int(final.split()[2])
    size = os.path.getsize(recording)
    assert f"{size} bytes written" in final, "the trace reports the file's size"

    converted = run(BIN, "trace", "--input", str(recording))
    assert converted.returncode == 0, converted.stderr
    events = [json.loads(line) for line in converted.stdout.splitlines()]
    assert len(events) == written
    assert all(event["container"]["name"] == container for event in events)
    hostname = run("docker", "inspect", "-f", "{{.Config.Hostname}}", container).stdout.strip()
    assert hostname and all(event["hostName"] == hostname[:15] for event in events)
    assert any(e["eventName"] == "execve" and e["args"][1]["value"] == ["cat", "/etc/hostname"] for e in events)
    assert any(e["eventName"] == "openat" and e["args"][1]["value"] == "/etc/hostname" for e in events)
    assert f"{written} events converted" in converted.stderr
    assert size * 3 < len(converted.stdout), "the recording is several times smaller than its JSON"

    # --filter applies to a recording as to a live trace.
    only = run(BIN, "trace", "--input", str(recording), "--filter", "openat.pathname=/etc/hostname")
    assert only.returncode == 0, only.stderr
    kept = [json.loads(line) for line in only.stdout.splitlines()]
    assert [e for e in kept if e["eventName"] == "openat"] and all(
        e["args"][1]["value"] == "/etc/hostname" for e in kept if e["eventName"] == "openat")
    assert "filtered out" in only.stderr

    # summary reads a recording as it reads the JSON it stands for.
    json_file = tmp_path / "events.json"
    json_file.write_text(converted.stdout)
    from_recording = run(BIN, "summary", str(recording))
    from_json = run(BIN, "summary", str(json_file))
    assert from_recording.returncode == 0, from_recording.stderr
    assert from_recording.stdout == from_json.stdout
    assert from_recording.stdout.splitlines()[-1].split() == ["total", str(written)]


def test_damaged_recordings_are_refused(container, tmp_path):
    recording = tmp_path / "events.rec"
    record(container, recording)
    data = recording.read_bytes()
    cases = {
        "cut.rec": (data[: len(data) // 2], "truncated"),
        "noend.rec": (data[:-28], "without its end frame"),
        "magic.rec": (b"{" + data[1:], "not a Caduceus recording"),
        "empty.rec": (b"", "empty"),
        "kind.rec": (data[:32] + bytes([0, 0, 0, 0x7F]) + data[36:], "corrupted"),
        "json.rec": (b'{"eventName":"x"}\n' * 4, "not a Caduceus recording"),
    }
    for name, (content, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(content)
        result = run(BIN, "trace", "--input", str(path))
        assert result.returncode == 1, (name, result.returncode, result.stderr)
        assert message in result.stderr and str(path) in result.stderr, (name, result.stderr)
        assert "Traceback" not in result.stderr and "Fatal error" not in result.stderr
        if content.startswith(b"CADUCREC"):  # anything else is summarized as JSON lines
            summary = run(BIN, "summary", str(path))
            assert summary.returncode != 0, (name, summary.stdout)


def test_record_format_options_get_a_clear_error(tmp_path):
    table = run(BIN, "trace", "--input", str(tmp_path / "x.rec"), "--format", "table")
    assert table.returncode != 0 and "--input writes JSON" in table.stderr
    missing = run(BIN, "trace", "--input", str(tmp_path / "missing.rec"))
    assert missing.returncode == 1 and "cannot read" in missing.stderr
    wrong = run(BIN, "trace", "--format", "binary")
    assert wrong.returncode != 0 and "json, table or record" in wrong.stderr
    # What a live trace watches does not apply to a recording: said, not ignored.
    for option in (["--container", "fhir"], ["--pid", "1"], ["--events", "openat"], ["--scope", "all"]):
        given = run(BIN, "trace", "--input", str(tmp_path / "x.rec"), *option)
        assert given.returncode != 0 and f"{option[0]} applies to a live trace" in given.stderr, (option, given.stderr)
