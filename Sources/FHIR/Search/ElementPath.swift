/// A search parameter's FHIRPath expression reduced to plain steps through the JSON of a
/// resource, ending in a known FHIR data type. The generator writes these; see its header in
/// `Scripts/generators/generate-fhir-tables.py` for the syntax.
public struct ElementPath: Sendable, Hashable {
    public enum Filter: Sendable, Hashable {
        /// Keep array items whose `field` equals `value` (`telecom.where(system='email')`).
        case fieldEquals(field: String, value: String)
        /// Keep items carrying an extension with this URL.
        case hasExtension(url: String)
        /// Keep only the first item (`entry[0]`).
        case first
    }

    public struct Step: Sendable, Hashable {
        /// The JSON key; for a choice step (`value[x]`) the key prefix.
        public var key: String
        /// True when any key `key` + an upper-case type name matches; the type is the suffix.
        public var isChoice: Bool
        public var filters: [Filter]
    }

    public var steps: [Step]
    /// The FHIR data type the path ends in, or `*` when a choice step decides it.
    public var terminalType: String
    /// For references: keep only those pointing at this resource type (`resolve() is T`).
    public var targetType: String?
    /// For a composite's component: the path starts at the resource (`%resource.` in the
    /// definition), not at the element instance the composite looks at.
    public var fromResource = false

    /// Parses the generator's text form, such as `telecom{system=email}@ContactPoint`.
    public init?(parsing text: String) {
        var body = Substring(text)
        if body.hasPrefix("%resource.") {
            fromResource = true
            body = body.dropFirst("%resource.".count)
        }
        if let arrow = body.lastIndex(of: ">"), !body[arrow...].contains("}") {
            targetType = String(body[body.index(after: arrow)...])
            body = body[..<arrow]
        } else {
            targetType = nil
        }
        guard let at = body.lastIndex(of: "@") else { return nil }
        terminalType = String(body[body.index(after: at)...])
        body = body[..<at]
        steps = []
        for rawStep in ElementPath.splitSteps(body) {
            var key = rawStep
            var filters: [Filter] = []
            if key.hasSuffix("[0]") {
                key.removeLast(3)
                filters.append(.first)
            }
            if let brace = key.firstIndex(of: "{"), key.hasSuffix("}") {
                let inside = key[key.index(after: brace)..<key.index(before: key.endIndex)]
                key = String(key[..<brace])
                guard let equals = inside.firstIndex(of: "=") else { return nil }
                let field = String(inside[..<equals])
                let value = String(inside[inside.index(after: equals)...])
                filters.append(field == "ext" ? .hasExtension(url: value) : .fieldEquals(field: field, value: value))
            }
            let isChoice = key.hasSuffix("[x]")
            if isChoice { key.removeLast(3) }
            steps.append(Step(key: key, isChoice: isChoice, filters: filters))
        }
    }

    /// Splits at dots outside `{...}` (filter values are URLs full of dots).
    private static func splitSteps(_ text: Substring) -> [String] {
        var steps: [String] = []
        var current = ""
        var depth = 0
        for character in text {
            if character == "{" { depth += 1 }
            if character == "}" { depth -= 1 }
            if character == ".", depth == 0 {
                steps.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        if !current.isEmpty { steps.append(current) }
        return steps
    }

    /// The values this path selects in `resource`, each with its FHIR data type.
    public func evaluate(in resource: JSONValue) -> [(value: JSONValue, type: String)] {
        var current: [(value: JSONValue, type: String)] = [(resource, terminalType)]
        for step in steps {
            var next: [(value: JSONValue, type: String)] = []
            for (node, type) in current {
                guard case .object(let object) = node else { continue }
                var matches: [(JSONValue, String)] = []
                if step.isChoice {
                    for (key, value) in object where key.count > step.key.count && key.hasPrefix(step.key) {
                        let suffix = key.dropFirst(step.key.count)
                        guard let first = suffix.first, first.isUppercase else { continue }
                        let choiceType = first.lowercased() + suffix.dropFirst()
                        let isPrimitive = ElementPath.primitiveTypes.contains(choiceType)
                        matches.append((value, isPrimitive ? choiceType : String(suffix)))
                    }
                } else if let value = object[step.key] {
                    matches.append((value, type))
                }
                for (value, valueType) in matches {
                    var items = value.arrayValue ?? [value]
                    for filter in step.filters {
                        switch filter {
                        case .first: items = Array(items.prefix(1))
                        case .fieldEquals(let field, let expected):
                            items = items.filter { $0[field]?.stringValue == expected }
                        case .hasExtension(let url):
                            items = items.filter { item in
                                item["extension"]?.arrayValue?.contains { $0["url"]?.stringValue == url } ?? false
                            }
                        }
                    }
                    next.append(contentsOf: items.map { ($0, valueType) })
                }
            }
            current = next
        }
        return current
    }

    static let primitiveTypes: Set<String> = [
        "boolean", "integer", "string", "decimal", "uri", "url", "canonical", "base64Binary", "instant", "date",
        "dateTime", "time", "code", "oid", "id", "markdown", "unsignedInt", "positiveInt", "uuid",
    ]
}
