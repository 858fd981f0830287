#!/usr/bin/env python3
"""Generates Caduceus's compact FHIR R4 structure table for resource validation.

Reads the hl7.fhir.r4.core package (StructureDefinition, ValueSet and CodeSystem resources)
and writes Sources/FHIR/Generated/StructureTable.swift, which holds two raw string literals
that Sources/FHIR/Validation/StructureSchema.swift parses once at run time (large Swift
array or dictionary literals would compile slowly) into the element tree the validator walks:

structureTableText: for every resource type and complex data type, a header line
    `Type<TAB>Base` followed by one line per element, starting with a tab:
    `<TAB>path<TAB>min<TAB>max<TAB>types[<TAB>value set]`
    * path is relative to the type (`contact.relationship`); a choice element keeps `[x]`.
    * max is a number or `*`.
    * types is a comma-separated list of type codes; `BackboneElement` and `Element` mean the
      element's children follow under its path; `#path` is a contentReference to another
      element of the same type, whose children it reuses.
    * value set is the key of a required binding's value set (see below); only bindings
      on code, Coding and CodeableConcept elements are kept.
    Elements a type inherits unchanged from its abstract base (Resource, DomainResource,
    Element, BackboneElement) are left out: the base's own block lists them once, and the
    Swift side adds them to every type and backbone element that derives from it.

valueSetTableText: one line per required value set: `key<TAB>system code code ...<TAB>...`,
    one column per code system; or `key<TAB>!reason` when the value set cannot be expanded
    from the core package alone (UCUM, MIME types, ...), so it is not enforced. The key is
    the canonical URL without the `http://hl7.org/fhir/ValueSet/` prefix.

Usage: Scripts/generators/generate-validation-tables.py [path/to/r4-core]
"""
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "fhir", "r4-core")
OUT = os.path.join(ROOT, "Sources", "FHIR", "Generated", "StructureTable.swift")

ABSTRACT_BASES = ("Resource", "DomainResource", "Element", "BackboneElement")
PRIMITIVES = {
    "base64Binary", "boolean", "canonical", "code", "date", "dateTime", "decimal", "id", "instant", "integer",
    "markdown", "oid", "positiveInt", "string", "time", "unsignedInt", "uri", "url", "uuid", "xhtml",
}
CODED_TYPES = {"code", "Coding", "CodeableConcept"}
FHIR_TYPE_EXTENSION = "http://hl7.org/fhir/StructureDefinition/structuredefinition-fhir-type"
VALUE_SET_PREFIX = "http://hl7.org/fhir/ValueSet/"


def load(pattern):
    for path in sorted(glob.glob(os.path.join(CORE, pattern))):
        with open(path) as handle:
            yield json.load(handle)


# Resources and complex data types: the specializations (constraints such as SimpleQuantity
# are profiles, which element definitions name through type.profile, not type.code).
structures = {}
for sd in load("StructureDefinition-*.json"):
    if sd.get("kind") in ("resource", "complex-type") and sd.get("derivation") != "constraint":
        structures[sd["type"]] = sd
value_sets = {vs["url"]: vs for vs in load("ValueSet-*.json")}
code_systems = {cs["url"]: cs for cs in load("CodeSystem-*.json")}


def type_codes(element):
    """The element's type codes, with FHIRPath system types named by their FHIR type."""
    codes = []
    for entry in element.get("type", []):
        code = entry["code"]
        if code.startswith("http://hl7.org/fhirpath/System."):
            fhir_type = [e["valueUrl"] for e in entry.get("extension", []) if e["url"] == FHIR_TYPE_EXTENSION]
            code = fhir_type[0] if fhir_type else "string"
        codes.append(code)
    if element["path"].endswith(".id") and element.get("base", {}).get("path") == "Resource.id":
        # The R4 snapshots type Resource.id as a plain string, but the specification
        # defines a resource's logical id as the `id` type (letters, digits, '-', '.').
        codes = ["id"]
    return codes


class ValueSetUnenforceable(Exception):
    pass


def all_concepts(concepts):
    for concept in concepts:
        yield concept["code"]
        yield from all_concepts(concept.get("concept", []))


def expand(url, seen=()):
    """The value set's codes as {system: [codes]}, or ValueSetUnenforceable."""
    if url in seen:
        raise ValueSetUnenforceable("circular import of " + url)
    vs = value_sets.get(url)
    if vs is None:
        raise ValueSetUnenforceable("value set not in the core package")
    compose = vs.get("compose")
    if not compose or compose.get("exclude"):
        raise ValueSetUnenforceable("no simple compose")
    codes = {}
    for include in compose.get("include", []):
        if "filter" in include:
            raise ValueSetUnenforceable("include with a filter")
        included = {}
        if "system" in include:
            system = include["system"]
            if "concept" in include:
                included[system] = [concept["code"] for concept in include["concept"]]
            else:
                cs = code_systems.get(system)
                if cs is None:
                    raise ValueSetUnenforceable("code system %s not in the core package" % system)
                if cs.get("content") != "complete":
                    raise ValueSetUnenforceable("code system %s is %s" % (system, cs.get("content")))
                included[system] = list(all_concepts(cs.get("concept", [])))
        for imported in include.get("valueSet", []):
            imported_codes = expand(imported.split("|")[0], seen + (url,))
            if included:
                # A system and value sets together mean their intersection: not needed in R4 core.
                raise ValueSetUnenforceable("include intersects a system with value sets")
            included = imported_codes
        for system, system_codes in included.items():
            target = codes.setdefault(system, [])
            target.extend(code for code in system_codes if code not in target)
    if not codes:
        raise ValueSetUnenforceable("empty expansion")
    return codes


value_set_lines = {}  # key -> line


def value_set_key(url):
    """The table key of a required value set, adding its line on first use."""
    url = url.split("|")[0]
    key = url[len(VALUE_SET_PREFIX):] if url.startswith(VALUE_SET_PREFIX) else url
    if key not in value_set_lines:
        try:
            columns = []
            for system, codes in expand(url).items():
                for text in [system] + codes:
                    # Columns are split at tabs and codes at spaces: neither may occur inside.
                    assert text and not any(c.isspace() for c in text), (url, text)
                columns.append(" ".join([system] + codes))
            value_set_lines[key] = key + "\t" + "\t".join(columns)
        except ValueSetUnenforceable as reason:
            value_set_lines[key] = key + "\t!" + str(reason)
    return key


def signature(element):
    """What the table says about an element, to compare an inherited one with its base."""
    binding = element.get("binding", {})
    required = binding.get("valueSet") if binding.get("strength") == "required" else None
    return (element["min"], element["max"], tuple(type_codes(element)), element.get("contentReference"), required)


base_signatures = {}  # base path (`Element.id`) -> signature in the abstract base type
for name in ABSTRACT_BASES:
    for element in structures[name]["snapshot"]["element"][1:]:
        base_signatures[element["path"]] = signature(element)


def header_base(sd):
    """The abstract type a type inherits its common elements from."""
    base = sd.get("baseDefinition", "").rsplit("/", 1)[-1]
    while base and base not in ABSTRACT_BASES:
        base = structures[base].get("baseDefinition", "").rsplit("/", 1)[-1]
    return base


def element_line(type_name, element):
    path = element["path"]
    relative = path.split(".", 1)[1]
    if "contentReference" in element:
        target = element["contentReference"].lstrip("#")
        assert target.startswith(type_name + "."), (path, target)
        types = ["#" + target.split(".", 1)[1]]
    else:
        types = type_codes(element)
        for code in types:
            assert code in PRIMITIVES or code in structures, (path, code)
    columns = [relative, str(element["min"]), element["max"], ",".join(types)]
    binding = element.get("binding", {})
    if binding.get("strength") == "required" and CODED_TYPES.intersection(types) and binding.get("valueSet"):
        columns.append(value_set_key(binding["valueSet"]))
    return "\t" + "\t".join(columns)


def type_block(type_name, sd):
    elements = sd["snapshot"]["element"]
    assert elements[0]["path"] == type_name, type_name
    lines = [type_name + ("\t" + header_base(sd) if type_name not in ("Resource", "Element") else "")]
    inherited_left_out = 0
    for element in elements[1:]:
        assert element["path"].startswith(type_name + "."), element["path"]
        base_path = element.get("base", {}).get("path", "")
        is_inherited = base_path.split(".", 1)[0] != type_name
        if is_inherited and base_signatures.get(base_path) == signature(element):
            inherited_left_out += 1
            continue
        lines.append(element_line(type_name, element))
    return lines, inherited_left_out


structure_lines, element_count, left_out = [], 0, 0
# The abstract bases come first so that a reader meets them before the types using them.
order = list(ABSTRACT_BASES) + sorted(name for name in structures if name not in ABSTRACT_BASES)
for name in order:
    sd = structures[name]
    if sd.get("abstract") and name not in ABSTRACT_BASES:
        continue
    lines, inherited = type_block(name, sd)
    structure_lines.extend(lines)
    element_count += len(lines) - 1
    left_out += inherited

enforceable = sum(1 for line in value_set_lines.values() if "\t!" not in line)
header = "// Generated by Scripts/generators/generate-validation-tables.py from hl7.fhir.r4.core 4.0.1. Do not edit.\n\n"
with open(OUT, "w") as out:
    out.write(header)
    out.write("/// Per type: a `Type<TAB>Base` line, then `<TAB>path<TAB>min<TAB>max<TAB>types[<TAB>value set]`\n")
    out.write("/// per element (see Scripts/generators/generate-validation-tables.py for the format).\n")
    out.write("let structureTableText = #\"\"\"\n")
    for line in structure_lines:
        out.write(line + "\n")
    out.write("\"\"\"#\n\n")
    out.write("/// Per required value set: `key<TAB>system code code ...` per code system, or `key<TAB>!reason`\n")
    out.write("/// when the core package alone cannot expand it.\n")
    out.write("let valueSetTableText = #\"\"\"\n")
    for key in sorted(value_set_lines):
        out.write(value_set_lines[key] + "\n")
    out.write("\"\"\"#\n")
print("%d types, %d element lines (%d inherited elements left out), %d required value sets (%d enforceable)"
      % (len(order) - sum(1 for n in order if structures[n].get("abstract") and n not in ABSTRACT_BASES),
         element_count, left_out, len(value_set_lines), enforceable))
for key in sorted(value_set_lines):
    if "\t!" in value_set_lines[key]:
        print("  not enforceable:", value_set_lines[key].replace("\t!", ": "))
