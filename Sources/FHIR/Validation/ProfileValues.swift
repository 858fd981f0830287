import JSON

/// How profile rules compare values: fixed and pattern values, value set membership by data
/// type, the resource type a reference points at.
enum ProfileValues {
    /// fixed[x]: the value is exactly the fixed one (member order aside, numbers by value),
    /// with no members the fixed value lacks.
    static func equals(_ value: JSONValue, _ fixed: JSONValue) -> Bool {
        value.semanticallyEquals(fixed)
    }

    /// pattern[x]: every member of the pattern is in the value with a matching value; every
    /// item of a pattern array matches some item of the value's array. Other members are free.
    static func matches(_ value: JSONValue, pattern: JSONValue) -> Bool {
        switch (value, pattern) {
        case (.object(let object), .object(let wanted)):
            return wanted.allSatisfy { member in object[member.key].map { matches($0, pattern: member.value) } ?? false
            }
        case (.array(let items), .array(let wanted)):
            return wanted.allSatisfy { want in items.contains { matches($0, pattern: want) } }
        default:
            return value.semanticallyEquals(pattern)
        }
    }

    /// An instance's value for diagnostics: a primitive shortened; objects and arrays, which
    /// may be large, only by kind.
    static func instanceText(_ value: JSONValue) -> String {
        switch value {
        case .string(let text): return quoted(text)
        case .number(let text): return String(text.prefix(40))
        case .bool(let flag): return String(flag)
        default: return value.kindDescription
        }
    }

    /// A profile's (small) fixed or pattern value for diagnostics, shortened.
    static func text(_ value: JSONValue) -> String {
        let written = JSONWriter().string(value)
        return written.count <= 120 ? written : String(written.prefix(117)) + "..."
    }

    /// What is outside the value set, described (`'http://loinc.org#1234-5'`), or nil when the
    /// value is in it, carries no code to check, or the terminology cannot tell (a value set
    /// drawing on all of LOINC). The data type says where the code is: a code, Coding,
    /// CodeableConcept (one coding in the set is enough) or Quantity.
    static func bindingProblem(_ value: JSONValue, type: String, valueSet: TerminologyValueSet) -> String? {
        switch type {
        case "code", "string", "uri":
            guard let code = value.stringValue, valueSet.contains(system: nil, code: code) == false else { return nil }
            return quoted(code)
        case "Coding", "Quantity":
            guard let code = value["code"]?.stringValue else { return nil }
            let system = value["system"]?.stringValue
            return valueSet.contains(system: system, code: code) == false ? codingText(system, code) : nil
        case "CodeableConcept":
            let coded = (value["coding"]?.arrayValue ?? []).compactMap { coding in
                coding["code"]?.stringValue.map { (system: coding["system"]?.stringValue, code: $0) }
            }
            // Out only when every coding is known to be out.
            guard !coded.isEmpty, coded.allSatisfy({ valueSet.contains(system: $0.system, code: $0.code) == false })
            else { return nil }
            let listed = coded.prefix(5).map { codingText($0.system, $0.code) }.joined(separator: ", ")
            return "The codings " + listed + (coded.count > 5 ? " (and \(coded.count - 5) more)" : "")
        default:
            return nil
        }
    }

    private static func codingText(_ system: String?, _ code: String) -> String {
        quoted(system.map { $0 + "#" + code } ?? code)
    }

    private static func quoted(_ text: String) -> String {
        text.count <= 100 ? "'\(text)'" : "'\(text.prefix(97))...'"
    }

    /// The resource type a Reference names: its `type`, or the type in a literal reference
    /// (`Patient/1`, `https://host/fhir/Patient/1/_history/2`); nil for `#contained`, `urn:`
    /// and references without a type (those are not checked).
    static func referencedType(_ reference: JSONValue) -> String? {
        if let type = reference["type"]?.stringValue { return type }
        guard let text = reference["reference"]?.stringValue, !text.hasPrefix("#"), !text.hasPrefix("urn:") else {
            return nil
        }
        var parts = text.split(separator: "/", omittingEmptySubsequences: false)
        if parts.count >= 4, parts[parts.count - 2] == "_history" { parts.removeLast(2) }
        guard parts.count >= 2 else { return nil }
        let type = String(parts[parts.count - 2])
        return FHIRResourceType.isKnown(type) ? type : nil
    }
}
