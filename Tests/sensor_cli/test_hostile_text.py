"""Text a container controls, as a user meets it: a process name and a file name with escape
sequences and control characters, from a recorded trace, through `caduceus detect` to the
terminal (line output: escaped, one line per alert), to JSON (exact) and through the audit feed
to a real `caduceus serve` (the AuditEvent is accepted: before, the server answered 422 and the
alert was lost). CADUCEUS_BIN names the binary."""
import json
import urllib.parse

from test_audit_feed import ALERT_TYPE, CONTAINER, server  # noqa: F401 (server is a fixture)
from test_trace_cli import BIN, run

HOSTILE_NAME = "c\u001b]0;owned\u0007a\u009bt"


def hostile_shadow_read(pid):
    """`cat /etc/shadow` by a process whose name carries an OSC title sequence and a C1 CSI."""
    return json.dumps({
        "timestamp": 1764417600000000000 + pid, "processId": 7, "threadId": 7, "parentProcessId": 1,
        "hostProcessId": pid, "hostThreadId": pid, "hostParentProcessId": 1, "userId": 0,
        "processName": HOSTILE_NAME, "hostName": "fhir", "containerId": CONTAINER, "eventId": "1015",
        "container": {"id": CONTAINER, "name": "caduceus-fhir", "image": "caduceus-fhir:latest"},
        "eventName": "security_file_open", "argsNum": 2, "returnValue": 0,
        "args": [{"name": "pathname", "type": "const char*", "value": "/etc/shadow"},
                 {"name": "flags", "type": "int", "value": 0}],
    })


def test_hostile_text_is_escaped_on_terminals_exact_in_json_and_accepted_by_the_audit_feed(server, tmp_path):
    trace = tmp_path / "events.json"
    trace.write_text(hostile_shadow_read(3001) + "\n")

    line = run(BIN, "detect", "--events", str(trace), "--format", "line")
    assert line.returncode == 0, line.stderr
    assert "\x1b" not in line.stdout and "\x07" not in line.stdout and "\u009b" not in line.stdout, repr(line.stdout)
    assert len(line.stdout.splitlines()) == 1, repr(line.stdout)
    assert "c\\x1b]0;owned\\x07a\\u{9b}t" in line.stdout, repr(line.stdout)

    fed = run(BIN, "detect", "--events", str(trace), "--format", "json",
              "--audit-url", server.base, "--audit-token-file", str(server.token))
    assert fed.returncode == 0, fed.stderr
    assert json.loads(fed.stdout)["process"]["name"] == HOSTILE_NAME, "JSON keeps the text exact"
    assert f"audit feed {server.base}/AuditEvent: 1 alerts fed, 0 failed" in fed.stderr, fed.stderr

    alerts = server.search("type=" + urllib.parse.quote(ALERT_TYPE))
    assert len(alerts) == 1
    agent = alerts[0]["agent"][0]
    assert agent["name"] == "c\\x1b]0;owned\\x07a\u009bt", agent
    assert agent["who"]["display"].startswith("c\\x1b]0;owned\\x07a\u009bt (pid 3001")
