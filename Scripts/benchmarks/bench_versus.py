#!/usr/bin/env python3
"""The FHIR benchmark of two commits side by side: `caduceus bench fhir` of a base commit's
release build and of this checkout's, alternating in one session, so that both see the same
machine and load. Prints each round's rates and the per-round ratio (this checkout over the
base) of every operation, with min / median / max, and the range of each side's rates.

Issue 16 asks for creates at "2x today's rate": the base is the code before issue 16
(a239311). The FHIR:raw ratio of one binary cannot say it alone, because the raw insert runs
through the same SQLite connection code, which issue 16 sped up as well.

    python3 Scripts/benchmarks/bench_versus.py --base a239311 --rounds 3 [--postgres URL] [--concurrency N]

The base is built once in a git worktree under $TMPDIR (a release build from nothing: about 20
minutes on two cores); later runs reuse it."""
import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def build(directory):
    subprocess.run(["swift", "build", "-c", "release", "--product", "caduceus"], cwd=directory, check=True,
                   stdout=subprocess.DEVNULL)
    return os.path.join(directory, ".build", "release", "caduceus")


def base_checkout(commit, directory=None):
    full = subprocess.run(["git", "rev-parse", commit + "^{commit}"], cwd=ROOT, check=True, capture_output=True,
                          text=True).stdout.strip()
    directory = directory or os.path.join(tempfile.gettempdir(), "caduceus-versus-" + full[:12])
    if not os.path.isdir(directory):
        subprocess.run(["git", "worktree", "add", "--detach", "-f", directory, full], cwd=ROOT, check=True,
                       stdout=subprocess.DEVNULL)
    return directory, full


def rates(binary, arguments):
    """{(backend, operation): FHIR/s} from one `bench fhir` run."""
    result = subprocess.run([binary, "bench", "fhir", *arguments], cwd=ROOT, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"{binary} bench fhir failed:\n{result.stderr[-2000:]}")
    found = {}
    for line in result.stdout.splitlines():
        fields = line.split()
        if len(fields) >= 5 and fields[1] in ("create", "read", "search") and re.fullmatch(r"[0-9.]+", fields[2]):
            found[(fields[0], fields[1])] = float(fields[2])
    return found


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--base", default="a239311", help="the commit to compare against (default: before issue 16)")
    parser.add_argument("--base-dir", help="an existing checkout of the base to build in (default: a worktree under $TMPDIR)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--postgres", help="PostgreSQL server URL for both (default: SQLite only)")
    parser.add_argument("--synthea", default=os.path.join(ROOT, "..", "shared", "fhir", "synthea"))
    parser.add_argument("--concurrency", type=int, default=4, help="concurrent clients of bench fhir (default 4)")
    options = parser.parse_args()

    directory, full = base_checkout(options.base, options.base_dir)
    print(f"building the base {full[:12]} in {directory}", file=sys.stderr)
    base = build(directory)
    print("building this checkout", file=sys.stderr)
    current = build(ROOT)
    head = subprocess.run(["git", "rev-parse", "--short=12", "HEAD"], cwd=ROOT, capture_output=True,
                          text=True).stdout.strip()
    arguments = ["--synthea", options.synthea, "--concurrency", str(options.concurrency)]
    arguments += ["--postgres", options.postgres] if options.postgres else []

    rates_seen = {}  # (backend, operation) -> {"head": [...], "base": [...]}, one rate per round
    for round_number in range(options.rounds):
        # The order alternates, so neither side always runs on the cooler machine.
        order = [("base", base), ("head", current)]
        if round_number % 2:
            order.reverse()
        measured = {}
        for name, binary in order:
            print(f"round {round_number + 1}/{options.rounds}: {name}", file=sys.stderr)
            measured[name] = rates(binary, arguments)
        for key in sorted(measured["base"].keys() & measured["head"].keys()):
            ratio = measured["head"][key] / measured["base"][key]
            for name in ("head", "base"):
                rates_seen.setdefault(key, {"head": [], "base": []})[name].append(measured[name][key])
            print(f"round {round_number + 1}: {key[0]:<9} {key[1]:<7} base {full[:7]} {measured['base'][key]:8.0f}/s"
                  f"   head {head[:7]} {measured['head'][key]:8.0f}/s   head:base {ratio:.2f}")
    print(f"\nhead {head} against base {full[:12]}, {options.rounds} alternating rounds of caduceus bench fhir,"
          f" {options.concurrency} clients")
    print(f"{'backend':<9} {'operation':<9} {'head:base per round (min / median / max)':<52}"
          f" {'head/s min-max':>15} {'base/s min-max':>15}")
    for key, seen in sorted(rates_seen.items()):
        head_rates, base_rates = seen["head"], seen["base"]
        values = [head / base for head, base in zip(head_rates, base_rates)]
        spread = " ".join(f"{v:.2f}" for v in values)
        summary = f"{min(values):.2f} / {statistics.median(values):.2f} / {max(values):.2f}   ({spread})"
        print(f"{key[0]:<9} {key[1]:<9} {summary:<52}"
              f" {f'{min(head_rates):.0f}-{max(head_rates):.0f}':>15} {f'{min(base_rates):.0f}-{max(base_rates):.0f}':>15}")


if __name__ == "__main__":
    main()
