"""The audit feed as a user runs it: a real `caduceus serve --audit on --audit-feed-token-file` on
127.0.0.1 and `caduceus detect --audit-url ... --audit-token-file`: alerts become DICOM 110113
Security Alert AuditEvents, found beside a patient's record accesses by one FHIR search.

From a recorded trace (no root needed); a server that refuses the token or is not there; and live
on a real container (root, BPF, Docker with caduceus-testbox; fails instead of skipping under
CI=true). CADUCEUS_BIN names the binary."""
import json
import secrets
import socket
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest

from test_trace_cli import BIN, IMAGE, container, run, run_while_attached  # noqa: F401 (container is a fixture)

CONTAINER = "4f2c1d0e9b8a" + "6" * 52
ALERT_TYPE = "http://dicom.nema.org/resources/ontology/DCM|110113"


def shadow_read(pid, name="caduceus-fhir"):
    """`cat /etc/shadow` in the container `name`, as a Tracee-format line."""
    return json.dumps({
        "timestamp": 1764417600000000000 + pid, "processId": 7, "threadId": 7, "parentProcessId": 1,
        "hostProcessId": pid, "hostThreadId": pid, "hostParentProcessId": 1, "userId": 0,
        "processName": "cat", "hostName": "fhir", "containerId": CONTAINER, "eventId": "1015",
        "container": {"id": CONTAINER, "name": name, "image": "caduceus-fhir:latest"},
        "eventName": "security_file_open", "argsNum": 2, "returnValue": 0,
        "args": [{"name": "pathname", "type": "const char*", "value": "/etc/shadow"},
                 {"name": "flags", "type": "int", "value": 0}],
    })


class Server:
    """`caduceus serve --audit on --audit-feed-token-file` on a free port, stopped with SIGINT."""

    def __init__(self, tmp_path):
        self.token = tmp_path / "audit-feed.token"
        self.token.write_text(secrets.token_hex(32) + "\n")
        self.process = subprocess.Popen(
            [BIN, "serve", "--port", "0", "--database", str(tmp_path / "fhir.sqlite"), "--log-level", "warning",
             "--audit", "on", "--audit-feed-token-file", str(self.token)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        assert "listening on " in line, line + self.process.stderr.read()
        self.base = line.split("listening on ")[1].strip()

    def call(self, method, path, body=None, token=None):
        headers = {"Accept": "application/fhir+json"}
        if body is not None:
            headers["Content-Type"] = "application/fhir+json"
        if token:
            headers["Authorization"] = f"Bearer {token}"
        request = urllib.request.Request(self.base + "/" + path, method=method, headers=headers,
                                         data=json.dumps(body).encode() if body is not None else None)
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, json.loads(response.read() or b"null")
        except urllib.error.HTTPError as error:
            return error.code, json.loads(error.read() or b"null")

    def search(self, query):
        status, bundle = self.call("GET", "AuditEvent?" + query + "&_count=100")
        assert status == 200, bundle
        return [entry["resource"] for entry in bundle.get("entry", [])]

    def stop(self):
        self.process.send_signal(2)
        self.process.wait(timeout=30)


@pytest.fixture
def server(tmp_path):
    server = Server(tmp_path)
    yield server
    server.stop()


def test_recorded_alerts_are_fed_and_found_beside_record_accesses(server, tmp_path):
    assert server.call("PUT", "Patient/123", {"resourceType": "Patient", "id": "123"})[0] == 201
    assert server.call("GET", "Patient/123")[0] == 200
    trace = tmp_path / "events.json"
    trace.write_text(shadow_read(2001) + "\n" + shadow_read(2002, name="other_box") + "\n")
    result = run(BIN, "detect", "--events", str(trace), "--format", "json",
                 "--audit-url", server.base, "--audit-token-file", str(server.token))
    assert result.returncode == 0, result.stderr
    printed = [json.loads(line) for line in result.stdout.splitlines()]
    assert [a["ruleId"] for a in printed] == ["CAD-007", "CAD-007"]
    assert f"caduceus detect: audit feed {server.base}/AuditEvent: 2 alerts fed, 0 failed" in result.stderr, result.stderr

    alerts = server.search("type=" + urllib.parse.quote(ALERT_TYPE))
    assert len(alerts) == 2
    alert = next(a for a in alerts if a["entity"][0]["what"]["reference"] == "Device/caduceus-fhir")
    assert alert["subtype"][0] == {"system": "urn:caduceus:rule", "code": "CAD-007", "display": "Read sensitive file untrusted"}
    assert {"system": "https://attack.mitre.org", "code": "T1003.008"} in alert["subtype"]
    assert alert["action"] == "E" and alert["outcome"] == "4", "a warning is a minor failure"
    assert alert["recorded"] == "2025-11-29T12:00:00.000Z"
    assert "/etc/shadow" in alert["outcomeDesc"]
    agent = alert["agent"][0]
    assert agent["who"]["identifier"] == {"system": "urn:caduceus:pid", "value": "2001"} and agent["requestor"] is True
    assert agent["who"]["display"].startswith("cat (pid 2001")
    assert alert["source"]["observer"]["display"] == "Caduceus sensor"
    details = {d["type"]: d["valueString"] for d in alert["entity"][0]["detail"]}
    assert details["container.id"] == CONTAINER and details["mitre"] == "T1003.008" and details["action"] == "none"
    # A Docker name with "_" is not a FHIR id: the reference carries "-".
    assert {a["entity"][0]["what"]["reference"] for a in alerts} == {"Device/caduceus-fhir", "Device/other-box"}

    # The one search: the patient's record accesses and the alerts about its container, by date.
    events = server.search("entity=" + urllib.parse.quote("Patient/123,Device/caduceus-fhir") + "&_sort=date")
    kinds = [(e["type"]["code"], e["subtype"][0]["code"]) for e in events]
    assert ("rest", "update") in kinds and ("rest", "read") in kinds and ("110113", "CAD-007") in kinds, kinds
    assert ("110113", "CAD-007") == kinds[0], "the trace's alert is older than the accesses"
    assert len(kinds) == 3, kinds
    # Each POST of the feed left its own REST AuditEvent, by the feed.
    feeds = server.search("subtype=create&agent-name=audit-feed")
    assert len(feeds) == 2 and all(e["entity"][0]["what"]["reference"].startswith("AuditEvent/") for e in feeds)


def test_each_node_names_itself_as_the_events_site(server, tmp_path):
    """One central server, a sensor per node (the Kubernetes DaemonSet passes spec.nodeName as
    --audit-site): each alert's source.site is its node, and the search parameter `site` finds
    one node's alerts. Without the option the site is the host's name."""
    trace = tmp_path / "events.json"
    trace.write_text(shadow_read(2001) + "\n")
    for node in ["node-a", "node-b"]:
        result = run(BIN, "detect", "--events", str(trace), "--format", "json",
                     "--audit-url", server.base, "--audit-token-file", str(server.token), "--audit-site", node)
        assert result.returncode == 0 and "1 alerts fed, 0 failed" in result.stderr, result.stderr
    result = run(BIN, "detect", "--events", str(trace), "--format", "json",
                 "--audit-url", server.base, "--audit-token-file", str(server.token))
    assert result.returncode == 0 and "1 alerts fed, 0 failed" in result.stderr, result.stderr
    alerts = server.search("type=" + urllib.parse.quote(ALERT_TYPE))
    assert sorted(a["source"]["site"] for a in alerts) == sorted(["node-a", "node-b", socket.gethostname()])
    node_a = server.search("site=node-a")
    assert [a["source"]["site"] for a in node_a] == ["node-a"]
    assert node_a[0]["entity"][0]["what"]["reference"] == "Device/caduceus-fhir"
    # A blank or oversized site, or one without --audit-url, is refused before anything runs.
    for arguments, message in [
        (["--audit-url", server.base, "--audit-site", " "], "--audit-site"),
        (["--audit-url", server.base, "--audit-site", "n" * 256], "1 to 255 bytes"),
        (["--audit-site", "node-a"], "need --audit-url"),
    ]:
        refused = run(BIN, "detect", "--events", str(trace), *arguments)
        assert refused.returncode != 0 and message in refused.stderr, refused.stderr


def test_sigterm_stops_the_server_with_its_audit_trail_written(tmp_path):
    """What a Kubernetes pod's stop sends (SIGTERM, after its preStop sleep): the server exits 0,
    having written the AuditEvents still queued; started again on the same database, they are there."""
    first = Server(tmp_path)
    for number in range(20):
        assert first.call("PUT", f"Patient/t{number}", {"resourceType": "Patient", "id": f"t{number}"})[0] == 201
    first.process.send_signal(15)
    assert first.process.wait(timeout=30) == 0, first.process.stderr.read()
    second = Server(tmp_path)
    try:
        patients = ",".join(f"Patient/t{number}" for number in range(20))
        updates = second.search("subtype=update&entity=" + urllib.parse.quote(patients))
        assert sorted(e["entity"][0]["what"]["reference"] for e in updates) == sorted(patients.split(","))
    finally:
        second.stop()


def test_a_refusing_or_missing_server_is_counted_not_fatal(server, tmp_path):
    trace = tmp_path / "events.json"
    trace.write_text(shadow_read(2001) + "\n")
    wrong = tmp_path / "wrong.token"
    wrong.write_text("not-the-token-0123456789\n")
    refused = run(BIN, "detect", "--events", str(trace), "--format", "json", "--audit-url", server.base, "--audit-token-file", str(wrong))
    assert refused.returncode == 0, refused.stderr
    assert f"audit feed {server.base}/AuditEvent: 0 alerts fed, 1 failed" in refused.stderr, refused.stderr
    assert "CAD-007 at 2025-11-29T12:00:00" in refused.stderr and "HTTP 401" in refused.stderr
    assert json.loads(refused.stdout)["ruleId"] == "CAD-007", "the alert still reaches stdout"

    started = time.time()
    missing = run(BIN, "detect", "--events", str(trace), "--format", "json",
                  "--audit-url", "http://127.0.0.1:1/fhir", "--audit-token-file", str(server.token))
    assert missing.returncode == 0, missing.stderr
    assert "audit feed http://127.0.0.1:1/fhir/AuditEvent: 0 alerts fed, 1 failed" in missing.stderr, missing.stderr
    assert time.time() - started < 20, "stopping does not wait out the retries"
    assert server.search("type=" + urllib.parse.quote(ALERT_TYPE)) == []


def test_bad_feed_options_are_refused_at_start(tmp_path):
    short = tmp_path / "short.token"
    short.write_text("0123456789\n")
    result = run(BIN, "serve", "--port", "0", "--database", str(tmp_path / "a.sqlite"), "--audit", "on", "--audit-feed-token-file", str(short))
    assert result.returncode != 0 and "at least 16" in result.stderr, result.stderr
    result = run(BIN, "serve", "--port", "0", "--database", str(tmp_path / "b.sqlite"), "--audit", "off", "--audit-feed-token-file", str(short))
    assert result.returncode != 0 and "--audit on" in result.stderr, result.stderr
    result = run(BIN, "detect", "--events", "/dev/null", "--audit-url", "ftp://x/fhir")
    assert result.returncode != 0 and "not an http(s) URL" in result.stderr, result.stderr
    result = run(BIN, "detect", "--events", "/dev/null", "--audit-token-file", str(short))
    assert result.returncode != 0 and "--audit-url" in result.stderr, result.stderr


def test_bad_serve_and_profile_options_are_refused_before_anything_opens(tmp_path):
    """serve's --audit value, the exfiltration settings and the key files are checked before the
    database is opened (none is created); profile record needs one container or one image."""
    for arguments, message in [
        (["--audit", "maybe"], "--audit takes on, off or auto, not 'maybe'"),
        (["--audit", "on", "--exfiltration-window", "0"], "the window must be more than 0 seconds"),
        (["--audit", "on", "--exfiltration-patients=-1"], "--exfiltration-patients must be 0 (off) or more"),
        (["--exfiltration-patients", "5"], "add --audit on"),
        (["--auth-hs256-secret-file", str(tmp_path / "missing.key")], "Cannot load the access token keys"),
        # Past a year the conversion to nanoseconds overflowed and stopped the process.
        (["--max-bundle-time", "1e300"], "--max-bundle-time takes more than 0 seconds, up to a year"),
        (["--idle-timeout", "1e300"], "--idle-timeout takes more than 0 seconds, up to a year"),
        (["--shutdown-grace", "1e300"], "--shutdown-grace takes 0 to 3600 seconds"),
    ]:
        database = tmp_path / "never.sqlite"
        result = run(BIN, "serve", "--port", "0", "--database", str(database), *arguments)
        assert result.returncode != 0 and message in result.stderr, (arguments, result.stderr)
        assert not database.exists(), arguments
    for arguments, message in [
        (["--output", str(tmp_path / "p.yaml")], "--container NAME or --image IMAGE is required"),
        (["--container", "a", "--image", "b", "--output", str(tmp_path / "p.yaml")], "choose one"),
    ]:
        result = run(BIN, "profile", "record", *arguments)
        assert result.returncode != 0 and message in result.stderr, (arguments, result.stderr)


def test_a_live_alert_reaches_the_audit_trail(server, container):
    """`cat /etc/shadow` in a real container: CAD-007, fed to the server while detect runs."""
    alerts = []

    def attack_then_search():
        run("docker", "exec", container, "/bin/cat", "/etc/shadow")
        # Fed while detection runs, not only at exit.
        deadline = time.time() + 3
        while not alerts and time.time() < deadline:
            alerts.extend(server.search("type=" + urllib.parse.quote(ALERT_TYPE) + "&entity=Device/" + container))
            time.sleep(0.2)

    status, stdout, stderr = run_while_attached(
        ["detect", "--container", container, "--duration", "4", "--format", "json",
         "--audit-url", server.base, "--audit-token-file", str(server.token)], attack_then_search)
    assert status == 0, stderr
    assert any(a["subtype"][0]["code"] == "CAD-007" for a in alerts), (alerts, stderr)
    printed = [json.loads(line) for line in stdout.splitlines()]
    fed = server.search("type=" + urllib.parse.quote(ALERT_TYPE) + "&entity=Device/" + container)
    assert len(fed) == len(printed) > 0, "every alert printed was fed, and only those"
    assert f"{len(printed)} alerts fed, 0 failed" in stderr, stderr
    alert = next(a for a in fed if a["subtype"][0]["code"] == "CAD-007")
    details = {d["type"]: d["valueString"] for d in alert["entity"][0]["detail"]}
    assert details["container.image"] == IMAGE and alert["agent"][0]["name"] == "cat"
    assert details["process.exepath"] == "/bin/busybox" and details["process.cmdline"].endswith("cat /etc/shadow")
