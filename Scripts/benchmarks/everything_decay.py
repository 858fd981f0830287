#!/usr/bin/env python3
"""`Patient/$everything` as the audit trail grows: the time of one patient's `$everything`
while its AuditEvents pile up, for one or more builds side by side (BENCHMARKS.md,
"`$everything` and the audit trail").

    python3 Scripts/benchmarks/everything_decay.py [BIN ...] [--rounds 6] [--reads 1000]

For each binary (default .build/release/caduceus): `caduceus serve --audit on` on a fresh SQLite
file in a temporary directory, one Synthea patient's transaction Bundle from
../shared/fhir/synthea, then rounds of 20 `$everything` (their median and max) followed by
`--reads` reads of the patient, each of which the audit trail records as an AuditEvent of the
patient (so does each `$everything`). Prints per round the patient's AuditEvents, the median and
max, and the answer's total."""
import argparse
import glob
import http.client
import json
import os
import socket
import statistics
import subprocess
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BASE = "/fhir-server/api/v4"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def measure(binary, rounds, reads, bundle):
    with tempfile.TemporaryDirectory(prefix="caduceus-everything-") as directory:
        port = free_port()
        server = subprocess.Popen(
            [binary, "serve", "--port", str(port), "--database", os.path.join(directory, "e.sqlite"), "--audit", "on",
             "--log-level", "warning"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            for _ in range(200):
                try:
                    connection.request("GET", BASE + "/metadata")
                    connection.getresponse().read()
                    break
                except OSError:
                    connection.close()
                    time.sleep(0.1)

            def call(method, path, body=None):
                connection.request(method, BASE + path, body=body, headers={
                    "Content-Type": "application/fhir+json", "Prefer": "return=minimal"})
                response = connection.getresponse()
                data = response.read()
                if response.status >= 300:
                    raise SystemExit(f"{method} {path}: {response.status} {data[:300]!r}")
                return data

            answer = json.loads(call("POST", "", open(bundle, "rb").read()))
            patient = next(entry["response"]["location"].split("/")[1] for entry in answer["entry"]
                           if entry["response"]["location"].startswith("Patient/"))
            print(f"{binary}: patient {patient}")
            for _ in range(rounds):
                times = []
                total = None
                for _ in range(20):
                    started = time.perf_counter()
                    total = json.loads(call("GET", f"/Patient/{patient}/$everything?_count=1000")).get("total")
                    times.append((time.perf_counter() - started) * 1000)
                audits = json.loads(call("GET", f"/AuditEvent?patient={patient}&_summary=count"))["total"]
                print(f"  AuditEvents of the patient {audits:6}: $everything median {statistics.median(times):7.2f} ms,"
                      f" max {max(times):7.2f}, total {total}")
                for _ in range(reads):
                    call("GET", f"/Patient/{patient}")
        finally:
            server.terminate()
            server.wait()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("binaries", nargs="*", default=[os.path.join(ROOT, ".build", "release", "caduceus")])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--reads", type=int, default=1000)
    parser.add_argument("--synthea", default=os.path.join(ROOT, "..", "shared", "fhir", "synthea"))
    options = parser.parse_args()
    bundle = sorted(glob.glob(os.path.join(options.synthea, "*.json")))[0]
    for binary in options.binaries:
        measure(binary, options.rounds, options.reads, bundle)


if __name__ == "__main__":
    main()
