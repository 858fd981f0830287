"""`caduceus detect` under an event storm from a container: ten seconds of openat as fast as one
process can issue them (`storm open`, Scripts/sensor/storm.c) while another execs /bin/true in a
loop. The detector's memory stays under a stated bound, every storm open is either seen by the
engine or counted as lost (the drop counter is consistent with what went missing), and the sensor
still raises alerts after the storm.

Each storm open matches a rule of its own (STORM-OPEN): the engine's count of them is the alerts
printed plus the ones the per-container throttle counted, so "seen" is exact and "ops - seen" is
what the kernel must have dropped. Detection is scoped to the storm's container (--container), so
other containers on a busy machine add nothing.

Needs root and Docker with caduceus-testbox; fails instead of skipping under CI=true.
CADUCEUS_BIN names the binary."""
import json
import re
import signal
import subprocess
import threading
import time
import uuid

import pytest

from attached_detector import AttachedDetector
from test_trace_cli import IMAGE, require_root_and_docker, run

# The bound on the detector's peak resident memory (VmHWM) through the storm. Measured on this
# VM (debug build, built-in rules plus STORM-OPEN, 2 cores): 48 MB attached, 177-178 MB within the
# storm's first second and flat from there to the end. The step is the ring buffer filling: its
# 64 MB of data pages are mapped twice in the reader (for wrap-around), 128 MB once all touched;
# the engine's own state does not grow. The bound leaves room for a release build and a busier
# machine, and fails a detector that keeps what it saw (a million alerts or events would be far
# above it).
PEAK_RSS_BOUND_MB = 256

RULES = """
- rule: Storm open
  id: STORM-OPEN
  desc: Every openat of /etc/hostname in a container (the storm's own syscall), to count what the engine saw.
  condition: evt.type = openat and fd.name = /etc/hostname and container.id != host
  output: "storm open (proc=%proc.name)"
  priority: INFO
"""


def status_kib(pid, field):
    """VmRSS, VmHWM, ... of process `pid` in KiB; None once it is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def test_a_storm_leaves_the_detector_bounded_counted_and_alive(tmp_path):
    require_root_and_docker()
    rules = tmp_path / "storm.yaml"
    rules.write_text(RULES)
    name = "caduceus-storm-" + uuid.uuid4().hex[:8]
    started = run("docker", "run", "-d", "--network", "host", "--name", name, IMAGE, "/bin/sleep", "600")
    assert started.returncode == 0, started.stderr
    detector = None
    try:
        detector = AttachedDetector(["--container", name, "--rules", str(rules), "--format", "json"])
        alerts, stderr = detector.stdout, detector.stderr
        samples = []  # (seconds since the storm began, VmRSS in KiB)
        sampling = True

        def sample():
            begin = time.time()
            while sampling:
                rss = status_kib(detector.pid, "VmRSS")
                if rss is not None:
                    samples.append((time.time() - begin, rss))
                time.sleep(0.1)
        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        rss_before = status_kib(detector.pid, "VmRSS")

        # The storm: opens as fast as one process goes, and an exec loop beside it (process churn
        # for the engine's process table), both for 10 s.
        execs = subprocess.Popen(["docker", "exec", name, "/bin/sh", "-c",
                                  "n=0; end=$(( $(date +%s) + 10 )); "
                                  "while [ $(date +%s) -lt $end ]; do /bin/true; /bin/true; n=$((n+2)); done; echo $n"],
                                 stdout=subprocess.PIPE, text=True)
        storm = run("docker", "exec", name, "/usr/local/bin/storm", "open", "10")
        assert storm.returncode == 0, storm.stderr
        figures = json.loads(storm.stdout)
        exec_count = int(execs.communicate(timeout=60)[0].strip() or 0)
        opens = figures["ops"] + 1  # and the one it checks the path with before the storm

        # After the storm: the sensor still reads, the engine still alerts.
        time.sleep(1)
        probed = time.time()
        probe = run("docker", "exec", name, "/bin/cat", "/etc/shadow")
        assert probe.returncode == 0, probe.stderr

        def probe_alerted():
            return any(json.loads(a)["ruleId"] == "CAD-007" for a in list(alerts) if a.strip())
        deadline = time.time() + 30  # the ring buffer's backlog (up to 64 MB) is read first
        while time.time() < deadline and not probe_alerted():
            time.sleep(0.2)
        alive_after = probe_alerted()
        probe_seconds = time.time() - probed

        sampling = False
        sampler.join()
        peak_kib = status_kib(detector.pid, "VmHWM")
        detector.process.send_signal(signal.SIGINT)
        status = detector.wait(timeout=120)
        text = "".join(stderr)

        lost_match = re.search(r"caduceus detect: (\d+) events lost in the kernel", text)
        lost = int(lost_match.group(1)) if lost_match else 0
        throttled_match = re.search(r"caduceus detect: (\d+) more alerts of STORM-OPEN in ", text)
        throttled = int(throttled_match.group(1)) if throttled_match else 0
        printed = sum(1 for a in alerts if a.strip() and json.loads(a)["ruleId"] == "STORM-OPEN")
        seen = printed + throttled
        totals = re.search(r"caduceus detect: (\d+) events, (\d+) alerts", text)
        peak_rss_line = re.search(r"peak RSS (\d+) MB", text)
        rss_max = max(rss for _, rss in samples) if samples else 0
        rss_late = [rss for t, rss in samples if t > 5]
        print(f"\nstorm: {opens} opens in {figures['seconds']:.1f} s ({figures['ops_per_second']:.0f}/s), {exec_count} execs; "
              f"engine saw {seen} storm opens ({printed} alerts printed, {throttled} throttled), {lost} events lost; "
              f"{totals.group(1) if totals else '?'} events in all; detector RSS {rss_before // 1024} MB before, "
              f"max sampled {rss_max // 1024} MB, peak (VmHWM) {peak_kib // 1024 if peak_kib else '?'} MB; "
              f"after the storm the probe alerted: {alive_after} (in {probe_seconds:.1f} s); exit {status}")

        timeline = [f"{t:.0f}s:{rss // 1024}" for i, (t, rss) in enumerate(samples) if i % 10 == 0]
        print("detector RSS (MB) through the storm: " + " ".join(timeline))

        # Survived: still alerting after the storm, and a clean stop (3 says events were lost).
        assert alive_after, "no CAD-007 alert for the probe after the storm:\n" + text[-3000:]
        assert status in (0, 3), text[-3000:]
        assert (status == 3) == (lost > 0), f"exit {status} with {lost} events lost"
        # Drops counted and consistent: every storm open the engine did not see was lost.
        assert seen <= opens, (seen, opens)
        assert opens - seen <= lost, f"{opens - seen} storm opens missing but only {lost} events counted lost"
        if lost == 0:
            assert seen == opens
        # Bounded: the peak, and no climb after the first seconds (16 MB of slack).
        assert peak_kib is not None and peak_kib < PEAK_RSS_BOUND_MB * 1024, f"peak RSS {peak_kib} KiB"
        rss_early = [rss for t, rss in samples if 1 < t <= 5]
        assert rss_early and rss_late and max(rss_late) <= max(rss_early) + 16 * 1024, \
            f"RSS climbed through the storm: {max(rss_early)} KiB by 5 s, {max(rss_late)} KiB after"
        # detect reports its drops and its peak memory itself, on its last line.
        final = re.search(r"processes tracked, (\d+) events lost", text)
        assert final and int(final.group(1)) == lost, text[-1500:]
        assert peak_rss_line and abs(int(peak_rss_line.group(1)) - peak_kib / 1024) <= 2, text[-1500:]
    finally:
        if detector is not None:
            detector.end()
        run("docker", "rm", "-f", name)
