#!/usr/bin/env python3
"""Generates Caduceus's compact table of what write validation checks beyond structure.

Reads the hl7.fhir.r4.core package (StructureDefinition resources) and writes
Sources/FHIR/Generated/InvariantTable.swift: four raw string literals that
Sources/FHIR/Validation/InvariantCatalog.swift parses once at run time.

invariantTableText: one line per distinct constraint (key, severity, human, expression):
    `key<TAB>severity<TAB>native<TAB>guard<TAB>human<TAB>expression`
    native is `1` for the constraints the validator checks in Swift instead of FHIRPath
    (ele-1 on every element; bdl-7, whose isDistinct() is quadratic in the entries; dom-3, which
    compares every contained resource with every descendant; ref-1, which lists every contained
    id for each `#` reference), else `0`.
    guard, when not empty, is the element the constraint needs on its context to fail (GUARDS);
    `element^prefix` also needs the element to be a string starting with prefix.
    Whitespace inside human and expression is folded to single spaces (none of the core
    expressions has whitespace inside a string literal). CORRECTIONS below lists the one
    expression changed (que-7), with its reason.

invariantContextText: where the constraints apply: `context<TAB>child<TAB>i,j,...` with the
    line numbers (from 0) of invariantTableText:
    * context is a node of the structure schema: a resource or data type name, a backbone
      element path (`Observation.referenceRange`, which nested contentReference copies such as
      `Questionnaire.item.item` share), or `DomainResource` for every DomainResource;
    * child, when not empty, is an element of that node (`Organization|telecom`,
      `RiskAssessment.prediction|probability`): the constraint runs on each of its values.
    Resource and backbone constraints come from the differential (the element's own); a data
    type's root takes its snapshot's (Age gets Quantity's qty-3 too). Elements typed with the
    SimpleQuantity or MoneyQuantity profile get that profile's own constraints as a child entry.

referenceTargetText: `element path<TAB>Type,Type,...` for every Reference element whose
    targetProfile does not allow any resource (path as the structure schema spells it:
    `Observation.subject`, `MedicationRequest.medication[x]`, `Observation.referenceRange.low`).

extensionTableText: one line per core extension definition:
    `url<TAB>modifier<TAB>value types<TAB>contexts`
    * url without the `http://hl7.org/fhir/StructureDefinition/` prefix when it has it;
    * modifier `1` when the definition is a modifier extension (belongs in modifierExtension);
    * value types: comma-separated type codes of Extension.value[x], or `-` when the
      definition allows no value (a complex extension made of nested extensions);
    * contexts: comma-separated element contexts (`Patient`, `HumanName.family`, `Element`).

Usage: Scripts/generators/generate-invariants.py [path/to/r4-core]
"""
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "fhir", "r4-core")
OUT = os.path.join(ROOT, "Sources", "FHIR", "Generated", "InvariantTable.swift")

SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"
ABSTRACT = ("Resource", "DomainResource", "Element", "BackboneElement")
NATIVE = {"ele-1", "bdl-7", "dom-3", "ref-1"}
QUANTITY_PROFILES = ("SimpleQuantity", "MoneyQuantity")


def load_definitions():
    for path in sorted(glob.glob(os.path.join(CORE, "StructureDefinition-*.json"))):
        with open(path) as handle:
            yield json.load(handle)


definitions = list(load_definitions())
types = {}       # resources and complex data types (specializations), by type name
profiles = {}    # SimpleQuantity, MoneyQuantity
extensions = []  # core extension definitions
for sd in definitions:
    kind, derivation = sd.get("kind"), sd.get("derivation")
    if kind in ("resource", "complex-type") and derivation != "constraint":
        types[sd["type"]] = sd
    elif sd.get("type") == "Extension" and derivation == "constraint":
        extensions.append(sd)
    elif sd.get("id") in QUANTITY_PROFILES:
        profiles[sd["id"]] = sd


def folded(text):
    return " ".join(text.split())


# Corrections of R4 core expressions that cannot hold on valid FHIR data, each with its reason.
# que-7 names the System type Boolean, which a FHIR `boolean` element is not (FHIRPath's own
# suite: `Patient.active.is(Boolean).not()` is true), so it would refuse every enableWhen with
# operator 'exists' and an answerBoolean (the official example Questionnaire-bb among them).
CORRECTIONS = {
    "que-7": ("answer is Boolean", "answer is boolean"),
}


# The element each of these constraints needs on its context to be able to fail: absent (no
# value and no `_name`), the expression yields true or empty, so it is not evaluated at all
# (they are the ones evaluated most often; InvariantValidationTests checks each guard on every
# official example and Synthea resource). Writes are cheaper by what they skip. dom-3 and ref-1,
# the most expensive, are native instead. `element^prefix` (none used now) would also require the
# element to be a string starting with prefix.
GUARDS = {
    "dom-2": "contained",           # contained.contained.empty()
    "dom-4": "contained",           # contained.meta.versionId.empty() and contained.meta.lastUpdated.empty()
    "dom-5": "contained",           # contained.meta.security.empty()
    "qty-3": "code",                # code.empty() or system.exists()
    "sqty-1": "comparator",         # comparator.empty()
    "obs-6": "dataAbsentReason",    # dataAbsentReason.empty() or value.empty()
    "obs-7": "component",           # value.empty() or component.code.where(...).empty()
    "per-1": "end",                 # start.hasValue().not() or end.hasValue().not() or (start <= end)
    "cpt-2": "value",               # value.empty() or system.exists()
}


def corrected(key, expression):
    if key in CORRECTIONS:
        wrong, right = CORRECTIONS[key]
        assert wrong in expression, (key, expression)
        return expression.replace(wrong, right)
    return expression


constraint_lines = []   # table lines
constraint_index = {}   # (key, severity, human, expression) -> line number
contexts = {}           # (context, child) -> [line numbers]


def add(context, child, constraint):
    expression = corrected(constraint["key"], folded(constraint["expression"]))
    signature = (constraint["key"], constraint["severity"], folded(constraint.get("human", "")), expression)
    if signature not in constraint_index:
        constraint_index[signature] = len(constraint_lines)
        native = "1" if signature[0] in NATIVE else "0"
        constraint_lines.append("\t".join([signature[0], signature[1], native, GUARDS.get(signature[0], ""), signature[2], signature[3]]))
    entry = contexts.setdefault((context, child), [])
    if constraint_index[signature] not in entry:
        entry.append(constraint_index[signature])


def is_backbone(element):
    codes = [entry["code"] for entry in element.get("type", [])]
    return "contentReference" not in element and codes in (["BackboneElement"], ["Element"])


def split_context(type_name, path, backbones):
    """The (context, child) an element path's constraints run at."""
    if path == type_name or path in backbones:
        return path, ""
    parent, child = path.rsplit(".", 1)
    return parent, child.replace("[x]", "")


for type_name, sd in sorted(types.items()):
    if sd.get("abstract") and type_name not in ("DomainResource", "Element"):
        continue
    snapshot = sd["snapshot"]["element"]
    backbones = {element["path"] for element in snapshot[1:] if is_backbone(element)}
    if type_name == "Element":
        # ele-1 on every element: checked natively, listed for its text.
        for constraint in snapshot[0].get("constraint", []):
            add("Element", "", constraint)
        continue
    if type_name == "DomainResource":
        for constraint in snapshot[0].get("constraint", []):
            if constraint["key"] != "ele-1":
                add("DomainResource", "", constraint)
        continue
    # The root: the snapshot's constraints, but DomainResource's (one shared context) and ele-1.
    for constraint in snapshot[0].get("constraint", []):
        source = constraint.get("source", "")
        if constraint["key"] == "ele-1" or source.endswith("/DomainResource") or source.endswith("/Resource"):
            continue
        add(type_name, "", constraint)
    for element in sd["differential"]["element"][1:]:
        for constraint in element.get("constraint", []):
            context, child = split_context(type_name, element["path"], backbones)
            add(context, child, constraint)
    for element in snapshot[1:]:
        for entry in element.get("type", []):
            for profile in entry.get("profile", []):
                name = profile[len(SD_PREFIX):] if profile.startswith(SD_PREFIX) else ""
                if name in profiles:
                    context, child = split_context(type_name, element["path"], backbones)
                    for constraint in profiles[name]["differential"]["element"][0].get("constraint", []):
                        add(context, child, constraint)

# Reference targets.
reference_lines = []
for type_name, sd in sorted(types.items()):
    if type_name in ABSTRACT:
        continue
    for element in sd["snapshot"]["element"][1:]:
        targets = []
        for entry in element.get("type", []):
            if entry["code"] != "Reference":
                continue
            for target in entry.get("targetProfile", [SD_PREFIX + "Resource"]):
                targets.append(target[len(SD_PREFIX):] if target.startswith(SD_PREFIX) else target)
        if not targets or "Resource" in targets:
            continue
        assert all(target in types for target in targets), (element["path"], targets)
        reference_lines.append(element["path"] + "\t" + ",".join(sorted(set(targets))))

# Extension definitions.
extension_lines = []
for sd in sorted(extensions, key=lambda sd: sd["url"]):
    url = sd["url"]
    short = url[len(SD_PREFIX):] if url.startswith(SD_PREFIX) else url
    root = sd["snapshot"]["element"][0]
    modifier = "1" if any(e["path"] == "Extension" and e.get("isModifier") for e in sd["snapshot"]["element"]) else "0"
    value = [e for e in sd["snapshot"]["element"] if e["path"] == "Extension.value[x]"][0]
    value_types = "-" if value["max"] == "0" else ",".join(entry["code"] for entry in value.get("type", []))
    context_list = []
    for context in sd.get("context", []):
        assert context["type"] == "element", (url, context)
        context_list.append(context["expression"])
    for text in [short] + value_types.split(",") + context_list:
        assert text and not any(c.isspace() or c in ",\t" for c in text), (url, text)
    extension_lines.append("\t".join([short, modifier, value_types, ",".join(context_list)]))


def literal(name, doc, lines):
    for line in lines:
        assert '"""#' not in line and "\n" not in line
    return "/// " + doc + "\nlet " + name + ' = #"""\n' + "\n".join(lines) + '\n"""#\n'


context_lines = ["%s\t%s\t%s" % (context, child, ",".join(map(str, indices))) for (context, child), indices in sorted(contexts.items())]
with open(OUT, "w") as out:
    out.write("// Generated by Scripts/generators/generate-invariants.py from hl7.fhir.r4.core 4.0.1. Do not edit.\n")
    out.write("// Formats: see the script's docstring.\n\n")
    out.write(literal("invariantTableText", "`key<TAB>severity<TAB>native<TAB>guard<TAB>human<TAB>expression` per constraint.", constraint_lines))
    out.write("\n")
    out.write(literal("invariantContextText", "`context<TAB>child<TAB>constraint line numbers` per place constraints run.", context_lines))
    out.write("\n")
    out.write(literal("referenceTargetText", "`element path<TAB>allowed target types` per Reference element not open to any resource.", reference_lines))
    out.write("\n")
    out.write(literal("extensionTableText", "`url<TAB>modifier<TAB>value types or -<TAB>contexts` per core extension.", extension_lines))
print("%d constraints (%d native) at %d contexts, %d restricted Reference elements, %d extension definitions; %d bytes"
      % (len(constraint_lines), sum(1 for line in constraint_lines if line.split("\t")[2] == "1"), len(context_lines),
         len(reference_lines), len(extension_lines), os.path.getsize(OUT)))
