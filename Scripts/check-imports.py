#!/usr/bin/env python3
"""Fails when a target imports a module that Package.swift does not declare as its dependency.

SwiftPM's own `--explicit-target-dependency-import-check error` (which Scripts/test.sh also
passes) counts a module as declared when it is reachable through any chain of dependencies,
and it skips every test target and every target that uses a build plugin or depends on one
(here Sensor, Detection and everything above them). This check is stricter: each `import` in a
target's Swift files must name the target itself, a target it lists, a product it lists, a
module inside the package of a product it lists that the package does not publish as a product
(sqlite-nio's VaporCSQLite, reachable only through SQLiteNIO), or a module of the toolchain.

Reads the manifest with `swift package dump-package`; dependency packages' manifests only when
an import needs one (from .build/checkouts). Prints one line per undeclared import and exits 1.

Usage: Scripts/check-imports.py
"""
import json
import os
import re
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# Modules the Swift toolchain ships on Linux and macOS: importing one needs no declaration.
TOOLCHAIN_MODULES = {
    "Swift", "_Concurrency", "_StringProcessing", "RegexBuilder", "Observation", "Distributed",
    "Synchronization", "Foundation", "FoundationEssentials", "FoundationInternationalization",
    "FoundationNetworking", "FoundationXML", "Dispatch", "Glibc", "Musl", "Darwin", "Android",
    "WinSDK", "ucrt", "CxxStdlib", "XCTest", "Testing", "PackagePlugin", "os",
}

# `import X`, `@testable import X`, `public import X`, `import struct X.Y`, `@preconcurrency import X`.
IMPORT = re.compile(
    r"^\s*(?:@\w+(?:\([^)]*\))?\s+)*(?:(?:public|package|internal|fileprivate|private)\s+)?"
    r"import\s+(?:(?:class|struct|enum|protocol|typealias|func|var|let)\s+)?([A-Za-z_]\w*)"
)

DEFAULT_DIRECTORY = {"test": "Tests", "plugin": "Plugins"}


def dump_package(path):
    result = subprocess.run(
        ["swift", "package", "dump-package", "--package-path", path],
        capture_output=True, text=True, timeout=300,
    )
    if result.returncode != 0:
        sys.exit(f"check-imports: swift package dump-package failed in {path}:\n{result.stderr}")
    return json.loads(result.stdout)


def checkout_directory(identity):
    """The checkout of a dependency package (a package's identity is its URL's last component)."""
    checkouts = os.path.join(ROOT, ".build", "checkouts")
    for name in os.listdir(checkouts) if os.path.isdir(checkouts) else []:
        if name.lower() == identity.lower():
            return os.path.join(checkouts, name)
    return None


class Packages:
    """Products and unpublished targets of dependency packages, read once each when asked."""

    def __init__(self):
        self.cache = {}

    def modules(self, identity):
        if identity not in self.cache:
            directory = checkout_directory(identity)
            if directory is None:
                sys.exit(f"check-imports: no checkout of {identity} in .build/checkouts (run swift package resolve)")
            manifest = dump_package(directory)
            products = {p["name"]: set(p["targets"]) for p in manifest["products"]}
            published = {name for targets in products.values() for name in targets}
            unpublished = {t["name"] for t in manifest["targets"]} - published
            self.cache[identity] = (products, unpublished)
        return self.cache[identity]


def swift_files(directory):
    for folder, _, files in os.walk(directory):
        for name in sorted(files):
            if name.endswith(".swift"):
                yield os.path.join(folder, name)


def imports_of(path):
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, 1):
            match = IMPORT.match(line)
            if match:
                yield number, match.group(1)


def main():
    manifest = dump_package(ROOT)
    root_targets = {t["name"] for t in manifest["targets"]}
    packages = Packages()
    failures = {}  # (target, module) -> [file:line, ...]
    for target in manifest["targets"]:
        if target["type"] in ("system", "binary"):
            continue
        name = target["name"]
        directory = target.get("path") or os.path.join(DEFAULT_DIRECTORY.get(target["type"], "Sources"), name)
        declared_targets = {name}
        declared_products = []  # (product, package identity)
        for dependency in target["dependencies"]:
            kind, value = next(iter(dependency.items()))
            if kind in ("byName", "target"):
                declared_targets.add(value[0])
            elif kind == "product":
                declared_products.append((value[0], value[1]))
        for path in swift_files(os.path.join(ROOT, directory)):
            for number, module in imports_of(path):
                if module in declared_targets or module in TOOLCHAIN_MODULES:
                    continue
                if any(module == product for product, _ in declared_products):
                    continue
                allowed = False
                for product, identity in [] if module in root_targets else declared_products:
                    products, unpublished = packages.modules(identity)
                    if module in products.get(product, set()) or module in unpublished:
                        allowed = True
                        break
                if not allowed:
                    where = f"{os.path.relpath(path, ROOT)}:{number}"
                    failures.setdefault((name, module), []).append(where)
    for (name, module), places in failures.items():
        more = f" and {len(places) - 1} more file(s)" if len(places) > 1 else ""
        fix = f'"{module}"' if module in root_targets else f'.product(name: "{module}", package: ...)'
        print(f"{places[0]}{more}: target {name} imports {module}; add {fix} to its dependencies in Package.swift")
    if failures:
        print(f"check-imports: {len(failures)} undeclared dependencies", file=sys.stderr)
        return 1
    print("check-imports: every import is declared")
    return 0


if __name__ == "__main__":
    sys.exit(main())
