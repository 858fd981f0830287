"""`caduceus trace --allow-pause` pauses at SIGUSR1 and resumes at SIGUSR2: its programs are
detached in between, so a process it watches opens files unrecorded, and the closing line counts
the pauses. Without --allow-pause, SIGUSR1 does not blind a trace.
`caduceus bench overhead --interleave` relies on it to set the capture beside no capture in
turns of a few seconds.

Needs root (the real kernel); CADUCEUS_BIN names the binary (default .build/debug/caduceus)."""
import os
import shutil
import signal
import subprocess
import threading
import time

from test_stop_signals import BIN, caught_signals, require_root


class Trace:
    """A live `caduceus trace` of one process name's openat calls, its stderr collected."""

    def __init__(self, comm, output):
        self.process = subprocess.Popen(
            [BIN, "trace", "--scope", "all", "--comm", comm, "--events", "openat", "--output", str(output),
             "--allow-pause"],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines = []
        self.reader = threading.Thread(target=lambda: self.lines.extend(self.process.stderr), daemon=True)
        self.reader.start()

    def text(self):
        return "".join(list(self.lines))

    def wait_for(self, marker, count=1, timeout=120):
        deadline = time.time() + timeout
        while self.text().count(marker) < count:
            assert self.process.poll() is None, self.text()
            assert time.time() < deadline, f"no {marker!r} x{count}: " + self.text()
            time.sleep(0.01)

    def signal(self, number, marker, count):
        os.kill(self.process.pid, number)
        self.wait_for(marker, count, timeout=10)

    def stop(self):
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)
        status = self.process.wait(timeout=60)
        self.reader.join(timeout=5)
        return status, self.text()


def opener(tmp_path, name):
    """A copy of cat under a name of its own, so the trace sees only what the test runs."""
    path = tmp_path / name
    shutil.copy("/bin/cat", path)
    return path


def open_marker(program, tmp_path, label):
    marker = tmp_path / f"marker-{label}"
    marker.write_text(label)
    subprocess.run([str(program), str(marker)], check=True, capture_output=True)
    return str(marker)


def started(tmp_path, name):
    """A copy of cat named `name`, and a trace of that name's opens into a file: (program, file, trace)."""
    require_root()
    output = tmp_path / "events.json"
    return opener(tmp_path, name), output, Trace(name, output)


def stopped(trace, output):
    """Stops `trace` (after the reader's next poll) and asserts it ended well: its stderr and what it wrote."""
    time.sleep(0.5)  # the reader polls the ring every 20 ms at most; give it time
    status, stderr = trace.stop()
    assert status == 0, stderr
    return stderr, output.read_text()


def test_events_between_sigusr1_and_sigusr2_are_not_recorded(tmp_path):
    program, output, trace = started(tmp_path, "pausetest1")
    try:
        trace.wait_for("Ctrl-C to stop")
        before = open_marker(program, tmp_path, "before")
        trace.signal(signal.SIGUSR1, "caduceus trace: paused", 1)
        # A second SIGUSR1 while paused changes nothing and says nothing.
        os.kill(trace.process.pid, signal.SIGUSR1)
        during = open_marker(program, tmp_path, "during")
        trace.signal(signal.SIGUSR2, "caduceus trace: resumed", 1)
        after = open_marker(program, tmp_path, "after")
    finally:
        stderr, recorded = stopped(trace, output)
    assert stderr.count("caduceus trace: paused") == 1, stderr
    assert before in recorded and after in recorded, recorded[-2000:]
    assert during not in recorded, "an open made while paused was recorded"
    last = stderr.strip().splitlines()[-1]
    assert "0 lost in the kernel" in last and "; 1 pause, " in last and "s paused" in last, last


def test_a_pause_sent_while_the_sensor_loads_applies_when_it_starts(tmp_path):
    program, output, trace = started(tmp_path, "pausetest2")
    try:
        # As soon as SIGUSR1 is caught (before the sensor has loaded), ask for a pause.
        deadline = time.time() + 60
        while not caught_signals(trace.process.pid) & (1 << (signal.SIGUSR1 - 1)):
            assert trace.process.poll() is None, trace.text()
            assert time.time() < deadline, "SIGUSR1 never caught: " + trace.text()
            time.sleep(0.002)
        os.kill(trace.process.pid, signal.SIGUSR1)
        trace.wait_for("caduceus trace: paused")
        during = open_marker(program, tmp_path, "during")
        trace.signal(signal.SIGUSR2, "caduceus trace: resumed", 1)
        after = open_marker(program, tmp_path, "after")
    finally:
        stderr, recorded = stopped(trace, output)
    assert after in recorded, recorded[-2000:]
    assert during not in recorded, "an open made while paused was recorded"


def test_a_burst_of_pause_signals_neither_blocks_nor_confuses_the_trace(tmp_path):
    """Hundreds of SIGUSR1/SIGUSR2 at once never block the trace (the handler only notes the
    state asked for and wakes a thread through a non-blocking pipe). Signals sent at once reach a
    multi-threaded process in no set order, so the trace ends the burst in either state; what it
    says is always true: pauses and resumes alternate, one SIGUSR2 afterwards resumes it, and it
    still records and stops."""
    program, output, trace = started(tmp_path, "pausetest3")
    try:
        trace.wait_for("Ctrl-C to stop")
        for _ in range(300):
            os.kill(trace.process.pid, signal.SIGUSR1)
            os.kill(trace.process.pid, signal.SIGUSR2)
        # Settled once nothing new has been said for a second.
        deadline = time.time() + 30
        said = None
        while said != trace.text():
            assert time.time() < deadline, trace.text()[-2000:]
            said = trace.text()
            time.sleep(1)
        if said.rstrip().endswith("until SIGUSR2"):  # ended paused
            trace.signal(signal.SIGUSR2, "caduceus trace: resumed", said.count("caduceus trace: resumed") + 1)
        assert trace.text().rstrip().endswith("caduceus trace: resumed"), trace.text()[-2000:]
        after = open_marker(program, tmp_path, "after")
    finally:
        stderr, recorded = stopped(trace, output)
    assert after in recorded, recorded[-2000:]
    changes = [line.split(":")[1].strip() for line in stderr.splitlines()
               if line.startswith(("caduceus trace: paused", "caduceus trace: resumed"))]
    assert changes and changes == ["paused", "resumed"] * (len(changes) // 2), changes[-10:]


def test_without_allow_pause_sigusr1_does_not_blind_the_trace(tmp_path):
    """A trace started without --allow-pause never runs detached: SIGUSR1 ends it (its default
    action), which whoever watches the trace sees."""
    require_root()
    process = subprocess.Popen(
        [BIN, "trace", "--scope", "all", "--comm", "pausetest4", "--events", "openat", "--output",
         str(tmp_path / "events.json")], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.time() + 120
        stderr = ""
        while "Ctrl-C to stop" not in stderr:
            stderr += process.stderr.readline()
            assert process.poll() is None and time.time() < deadline, stderr
        os.kill(process.pid, signal.SIGUSR1)
        status = process.wait(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    assert status == -signal.SIGUSR1, status
    assert "paused" not in stderr + process.stderr.read()
