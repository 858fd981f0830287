#!/usr/bin/env python3
"""Generates Caduceus's compact FHIR R4 tables from the official definitions.

Reads the hl7.fhir.r4.core package (StructureDefinition and SearchParameter resources) and
writes two Swift files under Sources/FHIR/Generated/:

* ResourceTypes.swift: the concrete resource types.
* SearchParameterTable.swift: one tab-separated line per (resource type, search parameter),
  with the parameter's FHIRPath expression reduced to simple element paths whose terminal
  data type is known, so that the Swift indexer needs no FHIRPath engine.

Path syntax (see Sources/FHIR/Search/ElementPath.swift): steps joined by '.', where a step is
a JSON key, optionally followed by `{field=value}` (keep array items whose field equals
value), `{ext=url}` (items carrying that extension) or `[0]` (first item only); a key ending
in `[x]` is a choice element whose data type is read from the JSON key's suffix. After the
steps comes `@Type` (the terminal data type) and, for references, `>Target` (resolve() is).
A composite's line lists its base paths (`@BackboneElement` alone is the resource itself) and
a seventh column of components, `type=path | path ; type=path`, whose paths start at each
element a base path selects, or at the resource when they begin with `%resource.`.

Usage: Scripts/generators/generate-fhir-tables.py [path/to/r4-core]
"""
import glob
import json
import os
import re
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "fhir", "r4-core")
OUT = os.path.join(ROOT, "Sources", "FHIR", "Generated")

# The data types each search parameter type can index (others are left out of the table).
INDEXABLE = {
    "string": {"string", "markdown", "HumanName", "Address", "code", "id", "uri", "url", "canonical"},
    "token": {"code", "Coding", "CodeableConcept", "Identifier", "ContactPoint", "boolean", "string", "id",
              "uri", "url", "canonical", "oid", "uuid"},
    "reference": {"Reference", "canonical", "uri", "url", "Resource"},
    "date": {"date", "dateTime", "instant", "Period", "Timing"},
    "uri": {"uri", "url", "canonical", "oid", "uuid"},
    "number": {"integer", "decimal", "positiveInt", "unsignedInt"},
    "quantity": {"Quantity", "Age", "Duration", "Distance", "Count", "SimpleQuantity", "Money", "Range",
                 "SampledData"},
}


def load(pattern):
    for path in sorted(glob.glob(os.path.join(CORE, pattern))):
        with open(path) as handle:
            yield json.load(handle)


structures = {}  # type name -> StructureDefinition (specializations: resources and data types)
for sd in load("StructureDefinition-*.json"):
    if sd.get("derivation") != "constraint" and sd.get("kind") != "logical":
        structures[sd["type"]] = sd
profiles = {}  # constrained data type (Age, SimpleQuantity, ...) -> base type
for sd in load("StructureDefinition-*.json"):
    if sd.get("derivation") == "constraint" and sd.get("kind") == "complex-type":
        profiles[sd["name"]] = sd["type"]

elements = {}  # (type, element path) -> element definition
for name, sd in structures.items():
    for element in sd.get("snapshot", {}).get("element", []):
        elements[(name, element["path"])] = element

resource_types = sorted(
    name for name, sd in structures.items() if sd.get("kind") == "resource" and not sd.get("abstract")
)


class Unsupported(Exception):
    pass


def split_top(text, separator):
    """Splits at separator outside parentheses and quotes."""
    parts, depth, quote, current = [], 0, False, ""
    i = 0
    while i < len(text):
        c = text[i]
        if c == "'":
            quote = not quote
        elif not quote and c == "(":
            depth += 1
        elif not quote and c == ")":
            depth -= 1
        if not quote and depth == 0 and text.startswith(separator, i):
            parts.append(current)
            current = ""
            i += len(separator)
            continue
        current += c
        i += 1
    parts.append(current)
    return [p.strip() for p in parts]


def strip_parens(text):
    text = text.strip()
    while text.startswith("(") and text.endswith(")"):
        inner = text[1:-1]
        depth = 0
        balanced = True
        for c in inner:
            depth += {"(": 1, ")": -1}.get(c, 0)
            if depth < 0:
                balanced = False
                break
        if not balanced:
            break
        text = inner.strip()
    return text


def tokens(chain):
    """Splits a dotted FHIRPath chain into (name, argument-or-None) calls and plain names."""
    result, i = [], 0
    while i < len(chain):
        m = re.match(r"\s*\.?\s*([A-Za-z_][A-Za-z0-9_]*)", chain[i:])
        if not m:
            raise Unsupported(chain)
        name = m.group(1)
        i += m.end()
        if i < len(chain) and chain[i] == "(":
            depth, j = 0, i
            while j < len(chain):
                depth += {"(": 1, ")": -1}.get(chain[j], 0)
                if depth == 0:
                    break
                j += 1
            result.append((name, chain[i + 1:j]))
            i = j + 1
        elif chain[i:i + 3] == "[0]":
            result.append((name, None))
            result.append(("[0]", None))
            i += 3
        else:
            result.append((name, None))
    return result


class Cursor:
    """A position in the element tree: an SD type and an element path within it."""

    def __init__(self, type_name, path, types, keys):
        self.type_name, self.path, self.types, self.keys = type_name, path, types, keys


def child(cursor, name):
    """Steps to element `name` below cursor; returns list of (key, cursor) for each data type."""
    if len(cursor.types) != 1:
        raise Unsupported("step below a choice without as()")
    current = cursor.types[0]
    if current in ("BackboneElement", "Element") or current.startswith("#"):
        type_name, base = cursor.type_name, (current[1:] if current.startswith("#") else cursor.path)
    else:
        current = profiles.get(current, current)
        if current not in structures:
            raise Unsupported("unknown type " + current)
        type_name, base = current, current
    element = elements.get((type_name, base + "." + name))
    choice = False
    if element is None:
        element = elements.get((type_name, base + "." + name + "[x]"))
        choice = True
    if element is None:
        raise Unsupported("no element %s.%s" % (base, name))
    path = element["path"]
    if "contentReference" in element:
        ref = element["contentReference"]
        return [(name, Cursor(type_name, ref[1:], ["BackboneElement"], None))]
    codes = [t["code"] for t in element.get("type", [])]
    codes = ["string" if c.startswith("http://hl7.org/fhirpath") else c for c in codes]
    if choice:
        return [(name + t[0].upper() + t[1:], Cursor(type_name, path, [t], None)) for t in codes]
    return [(name, Cursor(type_name, path, codes, None))]


def resolve_chain(resource, chain, as_type=None):
    """Returns list of (steps, terminal types, target) for one union member."""
    calls = tokens(chain)
    if not calls or calls[0][0] != resource:
        raise Unsupported("chain does not start at " + resource)
    paths = [([], Cursor(resource, resource, ["BackboneElement"], None), None)]
    for name, argument in calls[1:]:
        nxt = []
        for steps, cursor, target in paths:
            if name == "[0]":
                nxt.append((steps[:-1] + [steps[-1] + "[0]"], cursor, target))
            elif name in ("as", "ofType") and argument is not None:
                wanted = argument.strip()
                lowered = wanted[:1].lower() + wanted[1:]
                if wanted not in cursor.types and lowered in cursor.types:
                    wanted = lowered  # composites write as(DateTime) for the primitive dateTime
                if steps and cursor.types == [wanted] or (not steps):
                    nxt.append((steps, cursor, target))
                elif wanted in cursor.types:
                    nxt.append((steps, Cursor(cursor.type_name, cursor.path, [wanted], None), target))
            elif name == "where":
                m = re.fullmatch(r"resolve\(\) is ([A-Za-z]+)", argument.strip())
                f = re.fullmatch(r"([a-z]+)\s*=\s*'([^']*)'", argument.strip())
                h = re.fullmatch(r"hasExtension\('([^']*)'\)", argument.strip())
                if m:
                    nxt.append((steps, cursor, m.group(1)))
                elif f:
                    nxt.append((steps[:-1] + [steps[-1] + "{%s=%s}" % f.groups()], cursor, target))
                elif h:
                    nxt.append((steps[:-1] + [steps[-1] + "{ext=%s}" % h.group(1)], cursor, target))
                else:
                    raise Unsupported("where(" + argument + ")")
            elif name == "extension" and argument is not None:
                url = argument.strip().strip("'")
                nxt.append((steps + ["extension{url=%s}" % url, "value[x]"], Cursor("Extension", "Extension.value[x]", ["*"], None), target))
            elif name == "resource" and cursor.types == ["BackboneElement"] and cursor.path == "Bundle.entry":
                nxt.append((steps + ["resource"], Cursor("Bundle", "Bundle.entry.resource", ["Resource"], None), target))
            elif argument is not None:
                raise Unsupported("function " + name)
            else:
                for key, c in child(cursor, name):
                    nxt.append((steps + [key], c, target))
        paths = nxt
    result = []
    for steps, cursor, target in paths:
        types = cursor.types
        if as_type:
            if as_type not in types and types != ["*"]:
                continue
            types = [as_type]
            if steps and steps[-1].endswith("[x]"):
                steps = steps[:-1] + [steps[-1][:-3] + as_type[0].upper() + as_type[1:]]
            elif len(steps) and cursor.path.endswith("[x]"):
                base = cursor.path.rsplit(".", 1)[1][:-3]
                steps = steps[:-1] + [base + as_type[0].upper() + as_type[1:]]
        result.append((steps, types, target))
    return result


def reduce_members(resource, expression, param_type):
    """The (steps, data type, target) triples an expression reduces to for param_type."""
    out = []
    for member in split_top(expression, "|"):
        member = strip_parens(member)
        as_type = None
        m = re.fullmatch(r"(.*?)\s+as\s+([A-Za-z]+)", member)
        if m:
            member, as_type = strip_parens(m.group(1)), m.group(2)
        if member[:1].islower():
            member = resource + "." + member  # a few expressions omit the resource type
        if not member.startswith(resource + ".") and member != resource:
            continue
        for steps, types, target in resolve_chain(resource, member, as_type):
            for t in types:
                t = profiles.get(t, t) if t not in INDEXABLE[param_type] else t
                if t != "*" and t not in INDEXABLE[param_type]:
                    continue
                if (steps, t, target) not in out:
                    out.append((steps, t, target))
    return out


def path_text(steps, t, target=None, prefix=""):
    text = prefix + ".".join(steps) + "@" + t
    return text + (">" + target if target else "")


def reduce_expression(resource, expression, param_type):
    out = []
    for steps, t, target in reduce_members(resource, expression, param_type):
        text = path_text(steps, t, target)
        if text not in out:
            out.append(text)
    return out


# Component definitions R4 has the wrong way round: DocumentReference-relationship names
# relatesto (a reference) for the code and relation (a token) for the target.
COMPONENT_TYPE_ERRATA = {
    ("DocumentReference-relationship", "code"): "token",
    ("DocumentReference-relationship", "target"): "reference",
}
COMPONENT_TYPES = {"string", "token", "reference", "date", "number", "quantity"}


def reduce_composite(sp, base, by_url):
    """A composite's base paths (the element instances it looks at) and, per component, its
    type and the paths of its values relative to an instance (`%resource.` marks a path that
    starts at the resource instead). Raises Unsupported when a part cannot be reduced."""
    members = [strip_parens(m) for m in split_top(sp.get("expression") or "", "|")]
    members = [m for m in members if m == base or m.startswith(base + ".")]
    if not members:
        raise Unsupported("no base path in " + str(sp.get("expression")))
    bases = []  # (member, steps)
    for member in members:
        for steps, types, _ in resolve_chain(base, member):
            if len(types) != 1:
                raise Unsupported("a choice as the base of a composite")
            bases.append((member, steps, path_text(steps, types[0])))
    components = []
    for component in sp.get("component", []):
        expression = component["expression"]
        definition = by_url.get(component["definition"])
        kind = COMPONENT_TYPE_ERRATA.get((sp["id"], expression)) or (definition or {}).get("type")
        if kind not in COMPONENT_TYPES:
            raise Unsupported("component %s of type %s" % (expression, kind))
        paths = []
        for part in split_top(expression, "|"):
            part = strip_parens(part)
            for member, base_steps, _ in bases:
                if part.startswith("%resource."):
                    full, strip, prefix = base + part[len("%resource"):], 0, "%resource."
                else:
                    full, strip, prefix = member + "." + part, len(base_steps), ""
                for steps, t, target in reduce_members(base, full, kind):
                    if steps[:strip] != base_steps[:strip]:
                        raise Unsupported("component %s leaves its base" % expression)
                    text = path_text(steps[strip:], t, target, prefix)
                    if text not in paths:
                        paths.append(text)
        if not paths:
            raise Unsupported("no indexable path for component " + expression)
        components.append(kind + "=" + " | ".join(paths))
    if len(components) < 2:
        raise Unsupported("fewer than two components")
    return [b[2] for b in bases], " ; ".join(components)


SPECIAL = {
    # A computed expression (deceased is true when deceasedBoolean is true or any
    # deceasedDateTime is present): indexed by the Swift side under this marker.
    ("Patient", "deceased"): ["deceased[x]@deceased"],
}

by_url = {sp["url"]: sp for sp in load("SearchParameter-*.json")}
lines, unsupported, seen = [], [], set()
for sp in load("SearchParameter-*.json"):
    if sp["id"] == "example":
        continue  # the example SearchParameter resource redefines _id
    if "base" not in sp:
        # A few extension parameters carry only an XPath: recover base and expression from it.
        m = re.match(r"f:([A-Za-z]+)/f:extension\[@url='([^']+)'\]", sp.get("xpath", ""))
        if not m:
            unsupported.append(("?", sp["code"], sp["type"], "no base"))
            continue
        sp["base"] = [m.group(1)]
        sp["expression"] = "%s.extension('%s')" % m.groups()
    if sp["type"] == "special":
        for base in sp["base"]:
            unsupported.append((base, sp["code"], sp["type"], "special"))
        continue
    if sp["type"] == "composite":
        for base in sp["base"]:
            if (base, sp["code"]) in seen:
                continue
            seen.add((base, sp["code"]))
            try:
                base_paths, components = reduce_composite(sp, base, by_url)
            except Unsupported as reason:
                unsupported.append((base, sp["code"], sp["type"], str(reason)))
                continue
            lines.append("\t".join([base, sp["code"], "composite", " | ".join(base_paths), "", sp["id"], components]))
        continue
    expression = sp.get("expression")
    for base in sp["base"]:
        key = (base, sp["code"])
        if key in seen:
            continue
        seen.add(key)
        if base in ("Resource", "DomainResource"):
            if not expression:
                unsupported.append((base, sp["code"], sp["type"], "no expression"))
                continue
            expr = expression.replace(base + ".", "Resource.") if base == "DomainResource" else expression
            try:
                paths = reduce_expression("Resource", expr, sp["type"]) if base == "Resource" else reduce_expression("DomainResource", expression, sp["type"])
            except Unsupported as reason:
                unsupported.append((base, sp["code"], sp["type"], str(reason)))
                continue
        elif key in SPECIAL:
            paths = SPECIAL[key]
        else:
            try:
                paths = reduce_expression(base, expression or "", sp["type"])
            except Unsupported as reason:
                unsupported.append((base, sp["code"], sp["type"], str(reason)))
                continue
        if not paths:
            unsupported.append((base, sp["code"], sp["type"], "no indexable path in " + str(expression)))
            continue
        targets = ",".join(sp.get("target", []))
        lines.append("\t".join([base, sp["code"], sp["type"], " | ".join(paths), targets, sp["id"]]))

lines.sort()
os.makedirs(OUT, exist_ok=True)
header = "// Generated by Scripts/generators/generate-fhir-tables.py from hl7.fhir.r4.core 4.0.1. Do not edit.\n\n"
with open(os.path.join(OUT, "ResourceTypes.swift"), "w") as out:
    out.write(header)
    out.write("/// The concrete resource types of FHIR R4, from the official StructureDefinitions.\n")
    out.write("public let fhirResourceTypeNames: [String] = [\n")
    for name in resource_types:
        out.write('    "%s",\n' % name)
    out.write("]\n")
# Top-level elements marked isSummary, per resource type, for _summary=true (a trailing
# [x] marks a choice element: any key with that prefix).
summary_lines = []
for name in resource_types:
    keys, mandatory = [], []
    for element in structures[name]["snapshot"]["element"]:
        parts = element["path"].split(".")
        if len(parts) == 2 and element.get("isSummary"):
            keys.append(parts[1])
        if len(parts) == 2 and element.get("min", 0) > 0:
            mandatory.append(parts[1])
    summary_lines.append(name + "\t" + ",".join(keys) + "\t" + ",".join(mandatory))
with open(os.path.join(OUT, "SummaryElements.swift"), "w") as out:
    out.write(header)
    out.write("/// Per resource type: its top-level summary elements (`_summary=true`), then its mandatory ones.\n")
    out.write("let summaryElementsText = #\"\"\"\n")
    for line in summary_lines:
        out.write(line + "\n")
    out.write("\"\"\"#\n")
with open(os.path.join(OUT, "SearchParameterTable.swift"), "w") as out:
    out.write(header)
    out.write("/// One line per (base, code): base, code, type, element paths, targets, SearchParameter id and,\n")
    out.write("/// for composites, the components (`type=paths`, joined by ` ; `) read from each element the\n")
    out.write("/// paths select.\n")
    out.write("let searchParameterTableText = #\"\"\"\n")
    for line in lines:
        out.write(line + "\n")
    out.write("\"\"\"#\n\n")
    out.write("/// Parameters of the R4 definitions that the table leaves out, with the reason.\n")
    out.write("let unsupportedSearchParameterText = #\"\"\"\n")
    for row in sorted(unsupported):
        out.write("\t".join(row) + "\n")
    out.write("\"\"\"#\n")
print("%d resource types, %d parameter lines, %d unsupported" % (len(resource_types), len(lines), len(unsupported)))
for row in sorted(unsupported):
    print("  unsupported:", *row)
