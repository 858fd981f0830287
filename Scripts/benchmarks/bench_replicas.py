#!/usr/bin/env python3
"""Throughput and p99 of the compose cluster with 1, 2 and 3 FHIR servers behind HAProxy, side by
side in one run (issue 18).

`caduceus up --postgres --replicas 3` once (as a user runs it: audit trail on, the sensor and the
recorder watching); the Synthea patients of ../shared/fhir/synthea loaded (and the database's
growth per patient printed); then, round after round, HAProxy is given the first 1,
2 or 3 replicas (its configuration rewritten, the container restarted) and `caduceus workload`
drives the clinical mix through it. Each round prints the rate and the p99 of every count, and the
CPU that each part of the deployment used in it (from the containers' cgroups and the client's
own rusage), so that where the run is bound shows. `caduceus down --volumes` at the end.

    sudo python3 Scripts/benchmarks/bench_replicas.py --caduceus .build/release/caduceus \\
        [--rounds 3] [--duration 20] [--concurrency 16]

Needs root, Docker and the images (`caduceus images`); ports 9080-9083 and 5439-5440 by default."""
import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

COUNTS = (1, 2, 3)


def run(*args, check=True, **kwargs):
    result = subprocess.run(list(args), capture_output=True, text=True, **kwargs)
    if check and result.returncode != 0:
        sys.exit(f"{' '.join(args)} failed ({result.returncode}): {result.stdout[-2000:]}{result.stderr[-2000:]}")
    return result


def cpu_usage(container):
    """The container's CPU time so far, in seconds, from its cgroup (v1 or v2, either driver)."""
    full = run("docker", "inspect", "-f", "{{.Id}}", container).stdout.strip()
    for path in (f"/sys/fs/cgroup/cpuacct/docker/{full}/cpuacct.usage",
                 f"/sys/fs/cgroup/cpuacct/system.slice/docker-{full}.scope/cpuacct.usage"):
        if os.path.exists(path):
            with open(path) as usage:
                return int(usage.read()) / 1e9
    for path in (f"/sys/fs/cgroup/system.slice/docker-{full}.scope/cpu.stat", f"/sys/fs/cgroup/docker/{full}/cpu.stat"):
        if os.path.exists(path):
            with open(path) as stat:
                return int(re.search(r"usage_usec (\d+)", stat.read()).group(1)) / 1e6
    sys.exit(f"no cgroup CPU counter found for {container}")


def serving(url, seconds=60):
    deadline = time.time() + seconds
    while time.time() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit(f"{url} did not answer within {seconds} s")


def haproxy_config(path, count):
    """The configuration `up` wrote (kept beside it the first time), with only the first `count` replicas."""
    if not os.path.exists(path + ".all"):
        shutil.copyfile(path, path + ".all")
    with open(path + ".all") as config:
        lines = config.read().splitlines()
    kept = [line for line in lines if not re.match(r"\s+server fhir-(\d+) ", line)
            or int(re.match(r"\s+server fhir-(\d+) ", line).group(1)) <= count]
    with open(path, "w") as config:
        config.write("\n".join(kept) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--caduceus", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--synthea", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "..",
                                                          "shared", "fhir", "synthea"))
    parser.add_argument("--fhir-port", type=int, default=9080)
    parser.add_argument("--postgres-port", type=int, default=5439)
    options = parser.parse_args()
    binary = os.path.abspath(options.caduceus)
    results = tempfile.mkdtemp(prefix="caduceus-replicas-")
    stack = ["--results", results, "--fhir-port", str(options.fhir_port), "--postgres-port", str(options.postgres_port)]
    base = f"http://127.0.0.1:{options.fhir_port}/fhir-server/api/v4"
    containers = ["caduceus-fhir", "caduceus-fhir-2", "caduceus-fhir-3", "caduceus-postgres",
                  "caduceus-postgres-standby", "caduceus-haproxy", "caduceus-sensor", "caduceus-recorder"]
    commit = run("git", "rev-parse", "--short", "HEAD", cwd=os.path.dirname(os.path.abspath(__file__))).stdout.strip()
    print(f"bench_replicas: commit {commit}, {os.cpu_count()} cores, load {os.getloadavg()[0]:.1f};"
          f" {options.rounds} rounds of {options.duration:g} s at {options.concurrency} connections")
    up = run(binary, "up", "--postgres", "--replicas", "3", *stack, check=False)
    rows = {count: [] for count in COUNTS}
    try:
        if up.returncode != 0:
            sys.exit(f"caduceus up failed: {up.stdout[-3000:]}{up.stderr[-3000:]}")
        # The database's size for the paper estimate: Synthea patients (their every resource, and
        # the AuditEvents of loading them) over the size of the empty store.
        def database_bytes():
            return int(run("psql", "-h", "127.0.0.1", "-p", str(options.postgres_port), "-U", "caduceus", "-d", "fhir",
                           "-Atc", "select pg_database_size('fhir')", env={**os.environ, "PGPASSWORD": "caduceus"}
                           ).stdout.strip())
        empty = database_bytes()
        load = run(binary, "workload", "--base-url", base, "--synthea", options.synthea, "--count", "1",
                   "--concurrency", "2", "--json", os.path.join(results, "load.json"))
        with open(os.path.join(results, "load.json")) as file:
            loaded = json.load(file)["load"]["Synthea"]
        grown = database_bytes() - empty
        print(f"loaded: {loaded['patients']} Synthea patients, {loaded['resources']} resources;"
              f" the database grew {grown / 1e6:.1f} MB: {grown / max(loaded['patients'], 1) / 1e6:.2f} MB a patient,"
              f" {grown / max(loaded['resources'], 1):.0f} bytes a resource")
        # Generated patients besides, so that the mix (the first 100 patients on the server) spreads
        # its creates: on 23 patients their compartments, and $everything, grew visibly each round.
        run(binary, "workload", "--base-url", base, "--generate", str(max(0, 100 - loaded["patients"])), "--count", "1",
            "--concurrency", "2")
        for round_number in range(1, options.rounds + 1):
            # 1, 2, 3 then 3, 2, 1: what grows with the data (each round adds resources) weighs on
            # every count alike over two rounds.
            for count in COUNTS if round_number % 2 else tuple(reversed(COUNTS)):
                haproxy_config(os.path.join(results, "haproxy.cfg"), count)
                run("docker", "restart", "-t", "1", "caduceus-haproxy")
                serving(f"http://127.0.0.1:{options.fhir_port}/healthz")
                report = os.path.join(results, f"workload-{round_number}-{count}.json")
                before = {name: cpu_usage(name) for name in containers}
                client_before = resource.getrusage(resource.RUSAGE_CHILDREN)
                started = time.time()
                run(binary, "workload", "--base-url", base, "--duration", str(options.duration),
                    "--concurrency", str(options.concurrency), "--json", report, check=False)
                wall = time.time() - started
                client_after = resource.getrusage(resource.RUSAGE_CHILDREN)
                used = {name: cpu_usage(name) - before[name] for name in containers}
                client = (client_after.ru_utime + client_after.ru_stime) - (client_before.ru_utime + client_before.ru_stime)
                with open(report) as file:
                    figures = json.load(file)["workload"]
                servers = sum(used[name] for name in containers[:3])
                postgres = used["caduceus-postgres"] + used["caduceus-postgres-standby"]
                watchers = used["caduceus-sensor"] + used["caduceus-recorder"]
                row = {"rate": figures["perSecond"], "p99": figures["p99Milliseconds"],
                       "median": figures["medianMilliseconds"], "failures": figures["failureCount"],
                       "cores": (servers + postgres + watchers + used["caduceus-haproxy"] + client) / wall}
                rows[count].append(row)
                print(f"round {round_number} replicas {count}: {row['rate']:7.1f}/s  median {row['median']:6.1f} ms"
                      f"  p99 {row['p99']:7.1f} ms  failed {row['failures']}  CPU cores busy {row['cores']:.2f}"
                      f" (servers {servers / wall:.2f}, PostgreSQL {postgres / wall:.2f}, sensor+recorder"
                      f" {watchers / wall:.2f}, HAProxy {used['caduceus-haproxy'] / wall:.2f}, client {client / wall:.2f})",
                      flush=True)
    finally:
        run(binary, "down", "--volumes", *stack, check=False)
    print("\nreplicas  rate/s median [min-max]   p99 ms median [min-max]   rate over 1 replica, per round")
    for count in COUNTS:
        rates = [row["rate"] for row in rows[count]]
        p99s = [row["p99"] for row in rows[count]]
        ratios = [row["rate"] / one["rate"] for row, one in zip(rows[count], rows[1]) if one["rate"] > 0]
        print(f"{count:8d}  {statistics.median(rates):7.1f} [{min(rates):.1f}-{max(rates):.1f}]"
              f"   {statistics.median(p99s):7.1f} [{min(p99s):.1f}-{max(p99s):.1f}]"
              f"   {' '.join(f'{ratio:.2f}' for ratio in ratios)}")


if __name__ == "__main__":
    main()
