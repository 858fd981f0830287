import Yams

extension RuleSet.Collector {
    /// Falco exceptions: `fields` and `comps` name the comparisons, each of `values` is
    /// one tuple that, when all its comparisons hold, excuses the event.
    func exceptionCondition(_ node: Node, rule: RuleSet.Definition, nodes: inout Int, bytes: inout Int) throws
        -> Condition?
    {
        let here = location(rule.location.file, node)
        let fields = (node["fields"]?.sequence.map(Array.init) ?? node["fields"].map { [$0] } ?? []).compactMap(
            \.string)
        let comps = (node["comps"]?.sequence.map(Array.init) ?? node["comps"].map { [$0] } ?? []).compactMap(\.string)
        let references = try fields.map { name -> FieldReference in
            guard let field = FieldReference(parsing: name), knownFields?.contains(field.name) ?? true else {
                throw RuleError(location: here, message: "exception field '\(name)' is not a field")
            }
            return field
        }
        let operators = try references.indices.map { index -> ConditionOperator in
            let text = index < comps.count ? comps[index] : "="
            guard let op = ConditionOperator(rawValue: text == "==" ? "=" : text) else {
                throw RuleError(location: here, message: "exception comparison '\(text)' is not an operator")
            }
            if knownFields != nil, let type = FieldTable.byName[references[index].name]?.type, !type.allows(op) {
                throw RuleError(
                    location: here,
                    message:
                        "exception: operator '\(op.rawValue)' does not apply to \(references[index]), a \(type.rawValue) field"
                )
            }
            return op
        }
        var alternatives: [Condition] = []
        for tuple in node["values"]?.sequence ?? [] {
            let values =
                tuple.sequence.map { $0.map { $0.sequence.map { $0.compactMap(\.string) } ?? [$0.string ?? ""] } }
                ?? [[tuple.string ?? ""]]
            guard values.count == references.count else {
                throw RuleError(
                    location: location(rule.location.file, tuple),
                    message: "an exception value has \(values.count) parts for \(references.count) fields")
            }
            nodes += values.reduce(values.count * 2) { $0 + $1.count }
            bytes += values.reduce(0) { $0 + $1.reduce(0) { $0 + $1.utf8.count } }
            guard nodes <= ConditionParser.Limits.expandedNodes, bytes <= ConditionParser.Limits.expandedBytes else {
                throw RuleError(
                    location: location(rule.location.file, tuple),
                    message:
                        "the rule's condition with its exceptions expands to more than \(ConditionParser.Limits.expandedNodes) nodes or \(ConditionParser.Limits.expandedBytes) bytes of values"
                )
            }
            for index in references.indices where knownFields != nil {
                guard let type = FieldTable.byName[references[index].name]?.type else { continue }
                if let problem = values[index].lazy.compactMap({ type.problem(with: $0, operators[index]) }).first {
                    throw RuleError(
                        location: location(rule.location.file, tuple),
                        message: "exception: \(references[index]) (\(type.rawValue)): \(problem)")
                }
            }
            let parts = references.indices.map { Condition.compare(references[$0], operators[$0], values[$0]) }
            alternatives.append(ConditionParser.chain(parts, and: true)!)
        }
        return ConditionParser.chain(alternatives, and: false)
    }
}
