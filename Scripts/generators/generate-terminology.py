#!/usr/bin/env python3
"""Generates Sources/FHIR/Generated/TerminologyTable.swift from the R4 CodeSystems and ValueSets.

One text table, parsed once by Sources/FHIR/Terminology/Terminology.swift:

  =url<TAB>version<TAB>name<TAB>id<TAB>content<TAB>hierarchyMeaning     a CodeSystem (url, system: %h/ and %t/
                                                                       abbreviate http://hl7.org/fhir/ and
                                                                       http://terminology.hl7.org/; version: empty for 4.0.1;
                                                                       a url ending in `/` takes the id)
  <depth digit>code[<TAB>display[<TAB>flags]]                          its concepts, nesting by depth
                                                                       (flags: a abstract, i inactive, d deprecated)
  ^child<TAB>parent                                                    a further parent (v3 `child` property)
  @url<TAB>version<TAB>name<TAB>id<TAB>status                         a ValueSet
  +system[<TAB>version]   or  -system[<TAB>version]                    an include / exclude (system may be empty)
  <space>code[<TAB>display]                                            a listed concept of the include above
  ~property<TAB>op<TAB>value                                           a filter of the include above
  <<valueSetUrl                                                        a value set the include above imports

Concept displays equal to the code are left out; a listed concept's display only when it is
not the code system's, and not in a value set listing over LISTED_DISPLAY_LIMIT concepts.
Definitions and designations (translations) are not compiled: they would add 250 KB to MBs.

Usage: Scripts/generators/generate-terminology.py [path/to/r4-core]
"""
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "fhir", "r4-core")
OUT = os.path.join(ROOT, "Sources", "FHIR", "Generated", "TerminologyTable.swift")


def clean(text):
    """One line of text: tabs and line breaks become spaces."""
    return " ".join(str(text or "").split())


PREFIXES = (("%h/", "http://hl7.org/fhir/"), ("%t/", "http://terminology.hl7.org/"))
# The FHIR release every core resource carries: a version equal to it is left out.
RELEASE = "4.0.1"
# A value set listing more concepts than this keeps their codes only (c80-doc-typecodes lists
# 6,401 LOINC codes with 290 KB of displays): membership stays exact, expansion shows codes.
LISTED_DISPLAY_LIMIT = 1500


def short(url):
    """A canonical URL with its common prefix abbreviated (Terminology.url expands it)."""
    url = clean(url)
    for alias, prefix in PREFIXES:
        if url.startswith(prefix):
            return alias + url[len(prefix):]
    return url


def own_url(resource, kind):
    """The resource's url, with a trailing `kind/id` left as `kind/` (Terminology.url appends the id)."""
    url = short(resource["url"])
    tail = "%s/%s" % (kind, clean(resource.get("id")))
    return url[: -len(resource["id"])] if url.endswith("/" + tail) else url


def version(resource):
    text = clean(resource.get("version"))
    return "" if text == RELEASE else text


def check_code(code):
    assert code and "\t" not in code and "\n" not in code, repr(code)
    return code


lines = []
displays = {}  # (system, code) -> display, for listed concepts of value sets
systems = set()
concept_count = designation_count = 0
for path in sorted(glob.glob(os.path.join(CORE, "CodeSystem-*.json"))):
    with open(path) as handle:
        system = json.load(handle)
    url = system.get("url")
    if not url:
        continue
    systems.add(url)
    lines.append("=" + "\t".join([own_url(system, "CodeSystem"), version(system)] + [clean(system.get(key)) for key in ("name", "id", "content", "hierarchyMeaning")]))
    extra = []

    def walk(concepts, depth):
        global concept_count, designation_count
        for concept in concepts:
            code = check_code(concept["code"])
            concept_count += 1
            display = clean(concept.get("display"))
            displays[(url, code)] = display
            flags = ""
            for prop in concept.get("property", []):
                if prop["code"] in ("notSelectable", "abstract") and prop.get("valueBoolean"):
                    flags += "a"
                elif prop["code"] == "status" and prop.get("valueCode") in ("retired", "inactive"):
                    flags += "i"
                elif prop["code"] == "status" and prop.get("valueCode") == "deprecated":
                    flags += "d"
                elif prop["code"] == "inactive" and prop.get("valueBoolean"):
                    flags += "i"
                elif prop["code"] == "child" and prop.get("valueCode"):
                    extra.append("^%s\t%s" % (check_code(prop["valueCode"]), code))
            assert depth < 10, (url, code)
            fields = [str(depth) + code]
            if display != code or flags:
                fields.append(display if display != code else "")
            if flags:
                fields.append(flags)
            lines.append("\t".join(fields))
            designation_count += len(concept.get("designation", []))
            walk(concept.get("concept", []), depth + 1)

    walk(system.get("concept", []), 0)
    lines.extend(extra)

value_set_count = 0
for path in sorted(glob.glob(os.path.join(CORE, "ValueSet-*.json"))):
    with open(path) as handle:
        value_set = json.load(handle)
    if not value_set.get("url"):
        continue
    value_set_count += 1
    lines.append("@" + "\t".join([own_url(value_set, "ValueSet"), version(value_set)] + [clean(value_set.get(key)) for key in ("name", "id", "status")]))
    compose = value_set.get("compose", {})
    for sign, key in (("+", "include"), ("-", "exclude")):
        for rule in compose.get(key, []):
            system = rule.get("system", "")
            lines.append(sign + short(system) + ("\t" + clean(rule.get("version")) if rule.get("version") else ""))
            keep_displays = len(rule.get("concept", [])) <= LISTED_DISPLAY_LIMIT
            for concept in rule.get("concept", []):
                code = check_code(concept["code"])
                display = clean(concept.get("display"))
                known = displays.get((system, code))
                shown = keep_displays and display and display != known and display != code
                lines.append(" " + code + ("\t" + display if shown else ""))
            for rule_filter in rule.get("filter", []):
                lines.append("~%s\t%s\t%s" % (clean(rule_filter["property"]), clean(rule_filter["op"]), clean(rule_filter["value"])))
            for imported in rule.get("valueSet", []):
                lines.append("<<" + short(imported))

text = "\n".join(lines) + "\n"
# The table is a raw string literal #"""..."""#: its end and \# (interpolation) may not occur inside.
assert '"""#' not in text and '\\#' not in text
with open(OUT, "w") as out:
    out.write("// Generated by Scripts/generators/generate-terminology.py from hl7.fhir.r4.core 4.0.1. Do not edit.\n\n")
    out.write("/// The CodeSystems and ValueSets of R4 (format: Scripts/generators/generate-terminology.py).\n")
    out.write("let terminologyText = #\"\"\"\n")
    out.write(text)
    out.write("\"\"\"#\n")
print("%d code systems, %d concepts (%d designations left out), %d value sets, %d bytes"
      % (len(systems), concept_count, designation_count, value_set_count, os.path.getsize(OUT)))
