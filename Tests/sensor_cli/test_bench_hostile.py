"""`caduceus bench hostile` as a user runs it: the real binary starts (or attacks) a real
`caduceus serve` on 127.0.0.1 and sends seeded hostile requests. Checks that its figures add up,
that its exit status follows them, and that it notices a server that dies under it.
CADUCEUS_BIN names the binary (default .build/debug/caduceus); no root or Docker needed."""
import os
import re
import signal
import subprocess
import time

BIN = os.environ.get("CADUCEUS_BIN", ".build/debug/caduceus")


def bench(*arguments, timeout=600):
    return subprocess.run([BIN, "bench", "hostile", *arguments], capture_output=True, text=True, timeout=timeout)


def figures(output):
    """The printed figures: counts by name, the answers by status class, memory in MB."""
    found = {}
    for name, pattern in [("sent", r"^requests sent: (\d+)$"), ("crashes", r"^crashes \(server process exited\): (\d+)$"),
                          ("5xx", r"^5xx: (\d+)$"), ("hangs", r"^hangs \(no answer in time\): (\d+)$"),
                          ("dropped", r"^dropped connections \(server alive, no answer\): (\d+)$"),
                          ("without_outcome", r"^errors without an OperationOutcome: (\d+)$")]:
        match = re.search(pattern, output, re.MULTILINE)
        assert match, f"no '{name}' line in:\n{output[-3000:]}"
        found[name] = int(match.group(1))
    answers = re.search(r"^answers: 1xx (\d+), 2xx (\d+), 3xx (\d+), 4xx (\d+), 5xx (\d+)$", output, re.MULTILINE)
    assert answers, output[-3000:]
    found["answers"] = [int(value) for value in answers.groups()]
    for moment in ["before", "after"]:
        memory = re.search(rf"^server RSS {moment}: ([\d.]+) MB \(peak ([\d.]+) MB\)$", output, re.MULTILINE)
        found[f"rss_{moment}"] = (float(memory.group(1)), float(memory.group(2))) if memory else None
    last = output.strip().splitlines()[-1]
    final = re.fullmatch(r"bench hostile: (PASSED|FAILED): seed (\d+), (\d+) requests, (\d+) crashes, (\d+) 5xx, (\d+) hangs", last)
    assert final, f"unexpected last line: {last}"
    found["final"] = final.groups()
    return found


def test_a_short_run_against_a_server_it_starts_adds_up():
    result = bench("--requests", "300", "--seconds", "300", "--seed", "7", "--concurrency", "3")
    output = result.stdout
    found = figures(output)
    assert found["sent"] == 300, output[-3000:]
    assert found["answers"][4] == found["5xx"]
    # Every request was answered, hung, dropped, or lost with a server that died under it.
    assert sum(found["answers"]) + found["hangs"] + found["dropped"] <= found["sent"]
    if found["crashes"] == 0:
        assert sum(found["answers"]) + found["hangs"] + found["dropped"] == found["sent"]
    assert found["answers"][3] > 0, "no request reached a 4xx: the generator is not hostile"
    assert found["answers"][1] > 0, "no request succeeded: the seeded data or the corpus is broken"
    assert found["rss_before"] and found["rss_after"] and found["rss_before"][0] > 1 and found["rss_after"][1] >= found["rss_after"][0]
    failed = found["crashes"] + found["5xx"] + found["hangs"] > 0
    assert found["final"] == ("FAILED" if failed else "PASSED", "7", "300", str(found["crashes"]), str(found["5xx"]), str(found["hangs"]))
    assert result.returncode == (1 if failed else 0), result.stderr[-2000:]


def test_the_same_seed_sends_the_same_requests():
    first, second = (bench("--requests", "40", "--seed", "99", "--concurrency", "1") for _ in range(2))
    classes = [re.findall(r"^- \[\d+x\] (.*)$", run.stdout, re.MULTILINE) for run in (first, second)]
    assert figures(first.stdout)["answers"] == figures(second.stdout)["answers"]
    assert classes[0] == classes[1]


def test_a_server_that_dies_is_counted_as_a_crash(tmp_path):
    server = subprocess.Popen([BIN, "serve", "--host", "127.0.0.1", "--port", "0", "--database", str(tmp_path / "fhir.sqlite"),
                               "--log-level", "error"], stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              # A crash dies at once: a backtracer would outlive the SIGKILL holding the port.
                              env={**os.environ, "SWIFT_BACKTRACE": "enable=no"})
    try:
        line = server.stdout.readline()
        assert "listening on " in line, line
        url = line.split("listening on ")[1].strip()
        attack = subprocess.Popen([BIN, "bench", "hostile", "--url", url, "--server-pid", str(server.pid), "--requests", "100000",
                                   "--seconds", "120", "--seed", "5", "--concurrency", "2"],
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        time.sleep(3)
        server.send_signal(signal.SIGKILL)
        server.wait(timeout=10)
        output, errors = attack.communicate(timeout=120)
        found = figures(output)
        # One server, one death: the SIGKILL, or a crash the requests found first (the bench
        # cannot restart a server it did not start, so the run ends either way).
        assert found["crashes"] == 1, output[-3000:]
        assert 0 < found["sent"] < 100000
        assert attack.returncode == 1, errors[-2000:]
        assert "crash: server exited" in output
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()


def test_only_loopback_servers_are_attacked():
    result = bench("--url", "http://192.0.2.1:9080/fhir-server/api/v4", "--requests", "1", timeout=60)
    assert result.returncode != 0
    assert "loopback" in result.stderr + result.stdout
