"""`caduceus detect` started live and kept running while a test acts: attached once it says
"Ctrl-C to stop", with its stdout and stderr read into lists from then on (so it never blocks
on a full pipe). Used by test_detect_kill9.py and test_detect_storm.py."""
import subprocess
import threading
import time

from test_trace_cli import BIN


class AttachedDetector:
    def __init__(self, arguments, seconds=30):
        self.process = subprocess.Popen([BIN, "detect", *arguments], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.stdout, self.stderr = [], []
        deadline = time.time() + seconds
        while time.time() < deadline:
            line = self.process.stderr.readline()
            self.stderr.append(line)
            if "Ctrl-C to stop" in line or not line:
                break
        assert self.process.poll() is None, "caduceus detect did not attach:\n" + "".join(self.stderr)
        self.readers = [threading.Thread(target=lambda: self.stderr.extend(iter(self.process.stderr.readline, "")), daemon=True),
                        threading.Thread(target=lambda: self.stdout.extend(iter(self.process.stdout.readline, "")), daemon=True)]
        for reader in self.readers:
            reader.start()

    @property
    def pid(self):
        return self.process.pid

    def wait(self, timeout):
        """Its exit status once it ends, with everything it wrote read."""
        status = self.process.wait(timeout=timeout)
        for reader in self.readers:
            reader.join(timeout=10)
        return status

    def end(self):
        """Kills it if it still runs (the tests' clean-up)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
