"""`caduceus detect` and `caduceus rules` as a user runs them: a recorded Tracee-format file
(in Tracee's own later format too), alerts as JSON lines, readable lines, a file and a webhook;
rule files checked with file:line:column errors; and a live run on a real container.

The live test needs root and Docker with caduceus-testbox; CADUCEUS_BIN names the binary."""
import http.server
import json
import threading

import pytest

from test_trace_cli import BIN, container, run, run_while_attached  # noqa: F401 (container is a fixture)

CONTAINER = "4f2c1d0e9b8a" + "5" * 52


def event(name, args, process="cat", pid=2001, ppid=2000, container=True, later_format=False, ret=0):
    """One event line as Tracee writes it: v0.6's fields, or a later Tracee's with container{} and extras."""
    line = {
        "timestamp": 1764417600000000000 + pid, "processId": 7, "threadId": 7, "parentProcessId": 1,
        "hostProcessId": pid, "hostThreadId": pid, "hostParentProcessId": ppid, "userId": 0,
        "mountNamespace": 4026532000, "pidNamespace": 4026532001, "processName": process,
        "hostName": "fhir", "containerId": CONTAINER if container else "", "eventId": "1015",
        "eventName": name, "argsNum": len(args), "returnValue": ret, "stackAddresses": None,
        "args": [{"name": k, "type": "const char*" if isinstance(v, str) else "int", "value": v} for k, v in args.items()],
    }
    if later_format:
        line.update({"processorId": 1, "cgroupId": 4242, "threadStartTime": 1, "executable": {"path": "/bin/cat"},
                     "container": {"id": CONTAINER, "name": "fhir", "image": "ibm-fhir:4.10", "imageDigest": "sha256:x"},
                     "kubernetes": {}, "matchedPolicies": ["default"], "syscall": "openat", "contextFlags": {}})
    return json.dumps(line)


@pytest.fixture
def recording(tmp_path):
    path = tmp_path / "events.json"
    path.write_text("\n".join([
        event("security_file_open", {"pathname": "/etc/hostname", "flags": 0}),
        event("security_file_open", {"pathname": "/etc/shadow", "flags": 0}, later_format=True),
        "this line is not JSON",
        event("security_file_open", {"pathname": "/etc/shadow", "flags": 0}, process="cat", pid=3001, container=False),
    ]) + "\n")
    return path


def test_recorded_trace_gives_json_alerts_on_stdout_and_in_a_file(recording, tmp_path):
    alerts_file = tmp_path / "alerts.json"
    result = run(BIN, "detect", "--events", str(recording), "--format", "json", "--output", str(alerts_file))
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [(a["ruleId"], a["container"]["id"]) for a in alerts] == [("CAD-007", CONTAINER), ("CAD-007", "host")], \
        "the two /etc/shadow reads, in the container and on the host; not /etc/hostname"
    assert list(alerts[0])[:4] == ["ruleId", "rule", "priority", "output"], "what fired comes first"
    alert = alerts[0]
    assert alert["rule"] == "Read sensitive file untrusted" and alert["priority"] == "warning"
    assert "T1003.008" in alert["mitre"]
    assert alert["container"] == {"id": CONTAINER, "name": "fhir", "image": "ibm-fhir:4.10"}
    assert alert["process"]["name"] == "cat" and alert["process"]["pid"] == 2001
    assert "/etc/shadow" in alert["output"] and "%" not in alert["output"]
    assert alert["events"][0]["eventName"] == "security_file_open"
    assert alert["events"][0]["args"][0] == {"name": "pathname", "type": "const char*", "value": "/etc/shadow"}
    assert alert["time"].startswith("2025-11-29T12:00:00.")
    assert [json.loads(line) for line in alerts_file.read_text().splitlines()] == alerts
    assert "line 3: not valid JSON" in result.stderr or "line 3:" in result.stderr, result.stderr
    assert "3 events, 2 alerts" in result.stderr


def test_readable_lines_for_a_terminal(recording):
    result = run(BIN, "detect", "--events", str(recording), "--format", "line")
    assert result.returncode == 0, result.stderr
    line = result.stdout.splitlines()[0]
    assert "WARNING [CAD-007 T1003.008] Read sensitive file untrusted (container fhir, cat pid 2001):" in line


def test_alerts_are_posted_to_a_webhook(recording):
    received = []

    class Hook(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append((self.headers["Content-Type"], json.loads(body)))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}/alerts"
        result = run(BIN, "detect", "--events", str(recording), "--format", "json", "--webhook", url)
        assert result.returncode == 0, result.stderr
    finally:
        server.shutdown()
    assert len(received) == 2
    content_type, alert = received[0]
    assert content_type == "application/json" and alert["ruleId"] == "CAD-007"
    assert sorted(json.dumps(a) for _, a in received) == sorted(json.dumps(json.loads(l)) for l in result.stdout.splitlines())


def test_an_unreachable_webhook_is_reported_not_fatal(recording):
    result = run(BIN, "detect", "--events", str(recording), "--format", "json", "--webhook", "http://127.0.0.1:1/x")
    assert result.returncode == 0
    assert "webhook http://127.0.0.1:1/x: CAD-007" in result.stderr
    assert json.loads(result.stdout.splitlines()[0])["ruleId"] == "CAD-007", "the alert still reaches stdout"


def test_rules_check_names_file_line_and_column(tmp_path):
    good = tmp_path / "extra.yaml"
    good.write_text("""- rule: Curl in a container
  id: LOCAL-1
  desc: A download tool ran in a container.
  condition: spawned_process and container and proc.name = curl
  output: "curl in %container.name: %proc.cmdline"
  priority: NOTICE
  tags: [T1105]
""")
    builtin = int(run(BIN, "rules", "check").stdout.split(" rules")[0])
    assert builtin >= 70, "the built-in rules load"
    result = run(BIN, "rules", "check", "--rules", str(good))
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith(f"{builtin + 1} rules ({builtin + 1} enabled)")
    listed = run(BIN, "rules", "list", "--rules", str(good)).stdout
    assert "LOCAL-1" in listed and "CAD-001" in listed

    bad = tmp_path / "bad.yaml"
    bad.write_text("- rule: Broken\n  desc: x\n  condition: spawned_process and proc.nme = curl\n  output: x\n  priority: NOTICE\n")
    result = run(BIN, "rules", "check", "--rules", str(bad))
    assert result.returncode != 0
    assert f"{bad}:3:34: unknown field 'proc.nme'" in result.stderr, result.stderr
    assert "Usage" not in result.stderr

    result = run(BIN, "detect", "--events", "/dev/null", "--rules", str(bad))
    assert result.returncode != 0 and "unknown field 'proc.nme'" in result.stderr, "detect refuses to half-load"

    replaced = tmp_path / "CAD-007-read-sensitive-file.yaml"
    replaced.write_text("- rule: Read sensitive file untrusted\n  id: CAD-007\n  enabled: false\n  desc: x\n"
                        "  condition: evt.type = open\n  output: x\n  priority: NOTICE\n")
    result = run(BIN, "rules", "check", "--rules", str(replaced))
    assert result.stdout.startswith(f"{builtin} rules ({builtin - 1} enabled)"), "a file named like a built-in one replaces it"


def test_live_detection_on_a_container(container):
    status, stdout, stderr = run_while_attached(
        ["detect", "--container", container, "--duration", "4", "--format", "json"],
        lambda: run("docker", "exec", container, "/bin/cat", "/etc/shadow"))
    assert status == 0, stderr
    alerts = [json.loads(line) for line in stdout.splitlines()]
    assert any(a["ruleId"] == "CAD-007" and a["container"]["name"] == container for a in alerts), stdout


def test_a_flood_of_one_rule_is_throttled_per_container(tmp_path):
    """30 reads of /etc/shadow within a microsecond in one container: 10 alerts (the burst), the
    rest counted on stderr; the host's one read still alerts; --alert-burst 0 raises all."""
    path = tmp_path / "flood.json"
    lines = [event("security_file_open", {"pathname": "/etc/shadow", "flags": 0}, pid=4000 + i) for i in range(30)]
    lines.append(event("security_file_open", {"pathname": "/etc/shadow", "flags": 0}, pid=5000, container=False))
    path.write_text("\n".join(lines) + "\n")
    result = run(BIN, "detect", "--events", str(path), "--format", "json")
    assert result.returncode == 0, result.stderr
    alerts = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["container"]["id"] for a in alerts] == [CONTAINER] * 10 + ["host"]
    assert "20 more alerts of CAD-007 in 4f2c1d0e9b8a throttled" in result.stderr  # v0.6 lines carry no name
    everything = run(BIN, "detect", "--events", str(path), "--format", "json", "--alert-burst", "0")
    assert len(everything.stdout.splitlines()) == 31, everything.stderr
