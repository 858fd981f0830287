#!/usr/bin/env python3
"""Compiles the resource profiles of hl7.fhir.r4.core (StructureDefinitions with
derivation = constraint and kind = resource: vitalsigns, bp, heartrate, the lipid profiles,
the shareable* definitions, ...) into Sources/FHIR/Generated/ProfileTable.swift, which
Sources/FHIR/Validation/ProfileDefinitions.swift parses once, on first use.

Only what a profile adds to its core resource type is kept, element by element of the
profile's snapshot (its differential alone would miss what a parent profile such as
vitalsigns adds): a minimum raised or a maximum lowered, a choice narrowed to fewer types,
fixed[x] and pattern[x] values, required and extensible bindings, reference targets narrowed, constraints whose keys the core types do not
define (vs-1, vs-2, ...), and slicing with what each slice's discriminators must find. What the
structure and invariant validators already check for the core type (its cardinalities,
bindings, constraints) is left out, and so is must-support.

Output, one raw string literal:
profileTableText: one JSON object per line, a profile: {"url", "name", "type", "e": element}.
    An element: "n" FHIRPath name (no [x]); "x": 1 for a choice; "r": 1 when it repeats;
    "min"/"max" when the profile tightens them (always on a slice); "t" allowed types;
    "f" fixed / "p" pattern JSON; "b" [strength, value set URL]; "ref" allowed reference
    target types; "inv" [[key, severity, human, expression]]; "c" child elements;
    "sl" slicing: {"d": ["type:path"], "rules", "ordered", "s": slices}; a slice is an
    element with "s" its name and "m" [[kind, path, value]] (kind f, p or t) that an item must
    meet to belong to it; "u" instead of "s" in "sl" names a discriminator not checked.
The value sets of bindings are looked up at run time in the terminology compiled by
Scripts/generators/generate-terminology.py (Terminology.r4); a code it cannot judge is not checked.

Usage: Scripts/generators/generate-profiles.py [path/to/r4-core]
"""
import glob
import json
import os
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
CORE = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "..", "shared", "fhir", "r4-core")
OUT = os.path.join(ROOT, "Sources", "FHIR", "Generated", "ProfileTable.swift")
SD_PREFIX = "http://hl7.org/fhir/StructureDefinition/"


def read(name):
    with open(os.path.join(CORE, name)) as handle:
        return json.load(handle)


definitions = [read(os.path.basename(p)) for p in sorted(glob.glob(os.path.join(CORE, "StructureDefinition-*.json")))]
core_types = {sd["type"]: sd for sd in definitions
              if sd.get("derivation") == "specialization" and sd.get("kind") in ("resource", "complex-type", "primitive-type")}
profiles = [sd for sd in definitions if sd.get("derivation") == "constraint" and sd.get("kind") == "resource"]
profile_types = {sd["url"]: sd["type"] for sd in definitions if sd.get("derivation") == "constraint"}
# Keys the core types define: the invariant validator evaluates those on every write.
core_keys = {c["key"] for sd in core_types.values() for e in sd["snapshot"]["element"] for c in e.get("constraint", [])}
# Keys of the core data type profiles (SimpleQuantity's sqty-1, ...): new only where the base type lacks the profile.
type_profile_keys = {sd["url"]: {c["key"] for c in sd["snapshot"]["element"][0].get("constraint", [])}
                     for sd in definitions if sd.get("derivation") == "constraint" and sd.get("kind") == "complex-type" and "snapshot" in sd}
snapshots = {name: {e["path"]: e for e in sd["snapshot"]["element"]} for name, sd in core_types.items()}

skipped = []  # what the table leaves out, printed at the end


def max_number(text):
    return 1 << 30 if text == "*" else int(text)


def base_element(path, narrowed_types):
    """The core definition of a profile's element path (no slice names), through data types."""
    parts = path.split(".")
    type_name, current, index = parts[0], parts[0], 1
    while index < len(parts):
        elements = snapshots.get(type_name)
        if elements is None:
            return None
        candidate = current + "." + parts[index]
        if candidate in elements:
            current, index = candidate, index + 1
            continue
        element = elements.get(current)
        if element is None:
            return None
        if "contentReference" in element:
            current = element["contentReference"].lstrip("#")
            continue
        codes = [t["code"] for t in element.get("type", [])]
        if len(codes) > 1:
            codes = narrowed_types.get(".".join(parts[:index]), codes)
        if len(codes) != 1 or codes[0] in ("BackboneElement", "Element"):
            return None
        type_name = current = codes[0]
    return snapshots[type_name].get(current)


def value_json(element, prefix):
    for key, value in element.items():
        if key.startswith(prefix) and key[len(prefix):][:1].isupper():
            return value
    return None


def target_types(element):
    targets = set()
    for entry in element.get("type", []):
        if entry["code"] != "Reference":
            continue
        for url in entry.get("targetProfile", [SD_PREFIX + "Resource"]):
            name = profile_types.get(url) or (url[len(SD_PREFIX):] if url.startswith(SD_PREFIX) else None)
            if name is None:
                return None
            targets.add(name)
    return targets


def slice_path(element_id):
    """The element path of an id: `Observation.component:SystolicBP.code` -> `Observation.component.code`."""
    return ".".join(part.split(":")[0] for part in element_id.split("."))


class Profile:
    def __init__(self, sd):
        self.sd = sd
        self.elements = sd["snapshot"]["element"]
        self.by_id = {e["id"]: e for e in self.elements}
        self.children, self.slices = {}, {}
        for e in self.elements[1:]:
            parent, _, last = e["id"].rpartition(".")
            if ":" in last:
                assert "/" not in last, e["id"]  # no reslicing in R4 core
                self.slices.setdefault(parent + "." + last.split(":")[0], []).append(e["id"])
            else:
                self.children.setdefault(parent, []).append(e["id"])

    def narrowed(self, element_id):
        """The types of the element's ancestors by path, as the profile (or its slice) narrows
        them: for looking up the children of a value[x] in the data type."""
        parts, types = element_id.split("."), {}
        for end in range(1, len(parts)):
            ancestor = self.by_id.get(".".join(parts[:end]))
            if ancestor is not None and "type" in ancestor:
                types[ancestor["path"]] = [t["code"] for t in ancestor["type"]]
        return types

    def unsliced(self, element_id):
        """The same element outside any slice, whose rules already apply to every item."""
        return self.by_id.get(slice_path(element_id)) if ":" in element_id else None

    def rules(self, element_id, is_slice):
        e = self.by_id[element_id]
        base = base_element(e["path"], self.narrowed(element_id))
        if base is None:
            skipped.append("%s: no core definition for %s" % (self.sd["id"], element_id))
            return {}
        plain = self.unsliced(element_id)
        out = {}
        if is_slice or e["min"] > base["min"]:
            out["min"] = e["min"]
        if (is_slice or max_number(e["max"]) < max_number(base["max"])) and e["max"] != "*":
            out["max"] = int(e["max"])
        base_codes = [t["code"] for t in base.get("type", [])]
        codes = [t["code"] for t in e.get("type", [])]
        if len(base_codes) > 1 and codes and len(codes) < len(base_codes) and not is_slice:
            out["t"] = codes
        for prefix, key in (("fixed", "f"), ("pattern", "p")):
            value = value_json(e, prefix)
            if value is not None:
                out[key] = value
        binding = e.get("binding", {})
        base_binding = base.get("binding", {})
        if binding.get("strength") in ("required", "extensible") and binding.get("valueSet") and \
                (binding["strength"], binding["valueSet"]) != (base_binding.get("strength"), base_binding.get("valueSet")):
            if plain is None or plain.get("binding") != binding:
                out["b"] = [binding["strength"], binding["valueSet"].split("|")[0]]
        targets, base_targets = target_types(e), target_types(base)
        if targets and base_targets and targets < base_targets and "Resource" not in targets:
            out["ref"] = sorted(targets)
        base_keys = {c["key"] for c in base.get("constraint", [])}
        for entry in base.get("type", []):
            for url in entry.get("profile", []):
                base_keys |= type_profile_keys.get(url, set())
        plain_keys = {c["key"] for c in (plain or {}).get("constraint", [])}
        invariants = [[c["key"], c["severity"], c["human"], c["expression"]] for c in e.get("constraint", [])
                      if c["key"] not in base_keys | plain_keys | core_keys and c.get("expression")]
        if invariants:
            out["inv"] = invariants
        return out

    @staticmethod
    def type_profile(e):
        profiles = [url for t in e.get("type", []) for url in t.get("profile", [])]
        return profiles[0] if len(profiles) == 1 else None

    def element(self, element_id, is_slice=False):
        """The compact element, or None when neither it nor anything below adds a rule."""
        e = self.by_id[element_id]
        out = self.rules(element_id, is_slice)
        if element_id == self.elements[0]["id"]:
            out = {"inv": out["inv"]} if "inv" in out else {}  # the resource's own cardinality means nothing here
        children = [c for c in (self.element(child) for child in self.children.get(element_id, [])) if c]
        if children:
            out["c"] = children
        slicing = self.slicing(element_id)
        if slicing:
            out["sl"] = slicing
        if not out and not is_slice:
            return None
        last = element_id.rsplit(".", 1)[-1].split(":")[0]
        head = {"n": last[:-3] if last.endswith("[x]") else last}
        if last.endswith("[x]"):
            head["x"] = 1
        base = base_element(e["path"], self.narrowed(element_id))
        if base is not None and base["max"] != "1" and element_id != self.elements[0]["id"]:
            head["r"] = 1
        head.update(out)
        return head

    def slicing(self, element_id):
        slices = self.slices.get(element_id)
        slicing = self.by_id[element_id].get("slicing")
        if not slices or not slicing:
            return None
        discriminators = [(d["type"], d["path"]) for d in slicing.get("discriminator", [])]
        out = {"d": ["%s:%s" % d for d in discriminators], "rules": slicing.get("rules", "open")}
        if slicing.get("ordered"):
            out["ordered"] = True
        compiled = []
        for slice_id in slices:
            match = []
            for kind, path in discriminators:
                found = self.discriminator_value(slice_id, kind, path)
                if found is None:
                    skipped.append("%s: slicing of %s by %s:%s" % (self.sd["id"], element_id, kind, path))
                    out["u"] = "%s:%s" % (kind, path)
                    return out
                match.append(found)
            compiled_slice = self.element(slice_id, is_slice=True)
            compiled_slice["s"] = slice_id.rsplit(":", 1)[-1]
            compiled_slice["m"] = match
            compiled.append(compiled_slice)
        out["s"] = compiled
        return out

    def discriminator_value(self, slice_id, kind, path):
        """What an item must hold at `path` to belong to the slice: [kind, path, value]."""
        e = self.by_id[slice_id]
        if kind == "type":
            codes = [t["code"] for t in e.get("type", [])]
            return ["t", path, codes[0]] if path == "$this" and len(codes) == 1 else None
        if kind not in ("value", "pattern") or "(" in path:
            return None
        # The elements the path reaches, through the slices met on the way (bp's component
        # slices fix code.coding.code in their own code.coding slice).
        targets = [slice_id]
        if path != "$this":
            for part in path.split("."):
                reached = [i for t in targets for i in self.children.get(t, []) if i.rsplit(".", 1)[-1] in (part, part + "[x]")]
                targets = reached + [s for i in reached for s in self.slices.get(i, [])]
        for target in targets:
            for prefix, letter in (("fixed", "f"), ("pattern", "p")):
                value = value_json(self.by_id[target], prefix)
                if value is not None:
                    return [letter, path, value]
        if path == "url":
            # An extension slice names its extension by the profile of its type.
            profile = self.type_profile(e)
            if profile:
                return ["f", path, profile]
        return None

    def compile(self):
        root = self.element(self.elements[0]["id"]) or {"n": self.sd["type"]}
        return {"url": self.sd["url"], "name": self.sd["id"], "type": self.sd["type"], "e": root}


lines = [json.dumps(Profile(sd).compile(), separators=(",", ":"), ensure_ascii=False) for sd in sorted(profiles, key=lambda s: s["url"])]
for line in lines:
    assert '"""#' not in line
with open(OUT, "w") as out:
    out.write("// Generated by Scripts/generators/generate-profiles.py from hl7.fhir.r4.core 4.0.1. Do not edit.\n\n")
    out.write("/// One core resource profile a line, as JSON: what it adds to its type (see the generator).\n")
    out.write("let profileTableText = #\"\"\"\n" + "\n".join(lines) + "\n\"\"\"#\n")
print("%d profiles, %d bytes" % (len(lines), os.path.getsize(OUT)))
for line in skipped:
    print("  not checked:", line)
