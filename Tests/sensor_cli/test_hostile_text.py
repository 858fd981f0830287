"""Text a container controls, as a user meets it: a process name and a file name with escape
sequences and control characters, from a recorded trace, through `caduceus detect` to the
terminal (line output: escaped, one line per alert), to JSON (exact) and through the audit feed
to a real `caduceus serve` (the AuditEvent is accepted: before, the server answered 422 and the
alert was lost). CADUCEUS_BIN names the binary."""
import json
import urllib.parse

from test_audit_feed import ALERT_TYPE, CONTAINER, server  # noqa: F401 (server is a fixture)
from test_trace_cli import BIN, container, run, trace_while  # noqa: F401 (container is a fixture)

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


BOMB = "- macro: m0\n  condition: proc.name = a\n" + "".join(
    f"- macro: m{i}\n  condition: m{i - 1} or m{i - 1}\n" for i in range(1, 40)) + \
    "- rule: R\n  desc: d\n  condition: m39\n  output: o\n  priority: INFO\n"


def test_rule_file_bombs_and_typos_are_refused_with_where(tmp_path):
    cases = {
        "macros.yaml": (BOMB, "macros.yaml:34:21: the condition expands to more than 100000 nodes"),
        "deep.yaml": ("- rule: x\n  tags: " + "[" * 50000 + "]" * 50000 + "\n", "deep.yaml:2:68: the YAML nests more than 64 levels deep"),
        "parens.yaml": ("- rule: x\n  desc: d\n  condition: " + "(" * 300 + "proc.name=a" + ")" * 300 + "\n  output: o\n  priority: INFO\n",
                        "parens.yaml:3:214: parentheses and 'not' nest more than 200 deep"),
        "twice.yaml": ("- rule: R\n  desc: d\n  condition: proc.name = a\n  output: o\n  priority: INFO\n" * 2,
                       "twice.yaml:6:3: rule 'R' is already defined at"),
    }
    for name, (text, expected) in cases.items():
        path = tmp_path / name
        path.write_text(text)
        result = run(BIN, "rules", "check", "--no-builtin-rules", "--rules", str(path))
        assert result.returncode == 1, (name, result.returncode, result.stderr[-500:])
        assert expected in result.stderr, (name, result.stderr[-500:])

    typo = tmp_path / "typo.yaml"
    typo.write_text("- list: shell_binaries\n  items: [bash]\n- rule: R\n  desc: d\n"
                    "  condition: evt.type = execve and proc.name in (shell_binarys)\n  output: o\n  priority: INFO\n")
    loose = run(BIN, "rules", "check", "--no-builtin-rules", "--rules", str(typo))
    assert loose.returncode == 0 and "typo.yaml:5:50: 'shell_binarys' is not a defined list" in loose.stderr, loose.stderr
    strict = run(BIN, "rules", "check", "--strict", "--no-builtin-rules", "--rules", str(typo))
    assert strict.returncode == 1 and "typo.yaml:5:50:" in strict.stderr and "(--strict)" in strict.stderr, strict.stderr


def test_a_containers_escape_sequences_never_reach_the_trace_table(container):
    """Live: a container runs a program named with an OSC title sequence, a CSI and a newline,
    with arguments that carry more; `trace --format table` shows them escaped, one line each."""
    hostile = "/tmp/x\x1b]0;owned\x07\x1b[2J\nFAKE"
    setup = run("docker", "exec", container, "/bin/sh", "-c", 'cp /bin/true "$(printf \'/tmp/x\\033]0;owned\\007\\033[2J\\nFAKE\')"')
    assert setup.returncode == 0, setup.stderr
    code, stdout, stderr = trace_while(
        ["--container", container, "--events", "execve", "--format", "table"],
        lambda: run("docker", "exec", container, hostile, "arg\x1b[31mred\u009b"))
    assert code == 0, stderr
    assert "\x1b" not in stdout and "\x07" not in stdout and "\u009b" not in stdout, repr(stdout[-2000:])
    rows = [line for line in stdout.splitlines()[1:] if "FAKE" in line]
    assert rows, repr(stdout[-2000:])
    assert all(line.split()[0].count(":") == 2 for line in stdout.splitlines()[1:] if line.strip()), "no forged lines"
    assert any("pathname=/tmp/x\\x1b]0;owned\\x07\\x1b[2J\\nFAKE" in row for row in rows), repr(rows)
    assert any("arg\\x1b[31mred\\u{9b}" in row for row in rows), repr(rows)
