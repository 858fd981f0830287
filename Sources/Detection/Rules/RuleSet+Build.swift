import Foundation
import Yams

/// The second half of loading: once every file is read, the lists and macros are resolved and
/// every rule's condition parsed against them, into the ``RuleSet``.
extension RuleSet.Collector {
    /// Lists expanded (lists inside lists), then macros parsed in dependency order.
    func environment(lists: [String: RuleSet.Definition], macros: [String: RuleSet.Definition]) throws -> (
        lists: [String: [String]], macros: [String: Condition], costs: [String: ConditionParser.Cost],
        warnings: [RuleError]
    ) {
        var set = RuleSet()
        for name in lists.keys.sorted() {
            let list = lists[name]!
            var expanded: [String] = []
            var bytes = 0
            for item in list.items {
                // Falco pastes items into the condition, so a quoted item is one quoted value.
                let added = lists[item]?.items.map(Self.unquoted) ?? [Self.unquoted(item)]
                guard expanded.count + added.count <= RuleFileBounds.listItems else {
                    throw RuleError(
                        location: list.location,
                        message: "list '\(name)' expands to more than \(RuleFileBounds.listItems) items")
                }
                bytes += added.reduce(0) { $0 + $1.utf8.count }
                guard bytes <= RuleFileBounds.listBytes else {
                    throw RuleError(
                        location: list.location,
                        message: "list '\(name)' expands to more than \(RuleFileBounds.listBytes) bytes")
                }
                expanded += added
            }
            set.lists[name] = expanded
        }
        var costs: [String: ConditionParser.Cost] = [:]
        var parsing: Set<String> = []
        func macro(_ name: String) throws -> Condition? {
            if let done = set.macros[name] { return done }
            guard let definition = macros[name] else { return nil }
            guard !parsing.contains(name) else {
                throw RuleError(location: definition.location, message: "macro '\(name)' refers to itself")
            }
            guard parsing.count < RuleFileBounds.macroChain else {
                throw RuleError(
                    location: definition.location,
                    message: "macros name macros more than \(RuleFileBounds.macroChain) deep")
            }
            parsing.insert(name)
            defer { parsing.remove(name) }
            // Macros this one names are parsed first, so the parser can expand them.
            var parser = ConditionParser(macros: set.macros, lists: set.lists, knownFields: knownFields)
            parser.macroCosts = costs
            guard definition.condition.utf8.count <= ConditionParser.Limits.conditionBytes else {
                _ = try parse(definition.condition, at: definition.conditionLocation, with: parser)
                return nil
            }
            for word in definition.condition.split(whereSeparator: { " ()\n\t,".contains($0) }).map(String.init)
            where word != name && macros[word] != nil && set.macros[word] == nil {
                // `macro: chmod` with `evt.type in (chmod, ...)` names itself only as a value.
                if let inner = try macro(word) {
                    parser.macros[word] = inner
                    parser.macroCosts[word] = costs[word]
                }
            }
            let (condition, cost, warnings) = try parseWithCost(
                definition.condition, at: definition.conditionLocation, positions: definition.conditionPositions,
                with: parser)
            set.warnings += warnings.map { RuleError(location: $0.location, message: $0.message) }
            set.macros[name] = condition
            costs[name] = cost
            return condition
        }
        for name in macros.keys.sorted() { _ = try macro(name) }
        return (set.lists, set.macros, costs, set.warnings)
    }

    /// The lists and macros, then the rules, each parsed with the definitions it sees.
    func build() throws -> RuleSet {
        var set = RuleSet()
        set.warnings = redefinitions
        let all = try environment(lists: lists, macros: macros)
        (set.lists, set.macros) = (all.lists, all.macros)
        set.warnings += all.warnings
        var allParser = ConditionParser(macros: all.macros, lists: all.lists, knownFields: knownFields)
        allParser.macroCosts = all.costs
        var keptParser = allParser
        if !keptLists.isEmpty || !keptMacros.isEmpty {
            // The protected files' rules see their own definitions of what was redefined.
            let kept = try environment(
                lists: lists.merging(keptLists) { _, kept in kept },
                macros: macros.merging(keptMacros) { _, kept in kept })
            keptParser = ConditionParser(macros: kept.macros, lists: kept.lists, knownFields: knownFields)
            keptParser.macroCosts = kept.costs
        }
        var totalNodes = 0
        for name in ruleOrder {
            let definition = rules[name]!
            let parser = protectedFiles.contains(definition.location.file) ? keptParser : allParser
            var (condition, cost, warnings) = try parseWithCost(
                definition.condition, at: definition.conditionLocation, positions: definition.conditionPositions,
                with: parser)
            set.warnings += warnings.map { RuleError(location: $0.location, message: $0.message) }
            var exclusions: [Condition] = []
            var nodes = cost.nodes
            var bytes = cost.bytes
            for exception in definition.exceptions {
                if let excluded = try exceptionCondition(exception, rule: definition, nodes: &nodes, bytes: &bytes) {
                    exclusions.append(.not(excluded))
                }
            }
            if let excluded = ConditionParser.chain(exclusions, and: true) { condition = .and(condition, excluded) }
            totalNodes += nodes
            guard totalNodes <= RuleFileBounds.totalNodes else {
                throw RuleError(
                    location: definition.location,
                    message: "the rules' conditions expand to more than \(RuleFileBounds.totalNodes) nodes in all")
            }
            let priorityNode = definition.fields["priority"]
            guard let priority = priorityNode?.string.flatMap(RulePriority.init(falco:)) else {
                throw RuleError(
                    location: SourceLocation(
                        file: definition.location.file, line: priorityNode?.mark?.line ?? 1,
                        column: priorityNode?.mark?.column ?? 1),
                    message:
                        "priority '\(priorityNode?.string ?? "")' is not one of \(RulePriority.allCases.map(\.rawValue).joined(separator: ", "))"
                )
            }
            let tags = (definition.fields["tags"]?.sequence ?? []).compactMap(\.string)
            let mitreNode = definition.fields["mitre"]
            let declared = mitreNode?.sequence.map { $0.compactMap(\.string) } ?? mitreNode?.string.map { [$0] } ?? []
            let techniques = declared + tags.filter { Self.isTechnique($0) && !declared.contains($0) }
            let outputNode = definition.fields["output"]
            let output: OutputTemplate
            do {
                output = try OutputTemplate(outputNode?.string ?? "", knownFields: knownFields)
            } catch let error as OutputTemplate.FieldError {
                throw RuleError(
                    location: location(definition.location.file, outputNode), message: "output: \(error.message)")
            }
            var action: RuleAction?
            if let actionNode = definition.fields["action"] {
                guard let parsed = actionNode.string.flatMap(RuleAction.init(rawValue:)) else {
                    throw RuleError(
                        location: location(definition.location.file, actionNode),
                        message:
                            "action '\(actionNode.string ?? "")' is not one of \(RuleAction.allCases.map(\.rawValue).joined(separator: ", "))"
                    )
                }
                action = parsed
            }
            set.rules.append(
                Rule(
                    id: definition.fields["id"]?.string ?? name, name: definition.name,
                    description: definition.fields["desc"]?.string ?? "", condition: condition,
                    output: output, priority: priority, tags: tags, mitre: techniques,
                    enabled: definition.fields["enabled"]?.bool ?? true, location: definition.location, action: action))
        }
        return set
    }

    /// `"value"` or `'value'` as `value`; anything else as it is.
    static func unquoted(_ item: String) -> String {
        guard item.count >= 2, let first = item.first, first == "\"" || first == "'", item.last == first else {
            return item
        }
        return String(item.dropFirst().dropLast())
    }

    /// `T1059` or `T1059.004`.
    static func isTechnique(_ tag: String) -> Bool {
        let parts = tag.split(separator: ".", omittingEmptySubsequences: false)
        guard let head = parts.first, head.count == 5, head.first == "T", head.dropFirst().allSatisfy(\.isNumber) else {
            return false
        }
        return parts.count == 1 || (parts.count == 2 && parts[1].count == 3 && parts[1].allSatisfy(\.isNumber))
    }

    func parse(_ text: String, at location: SourceLocation, with parser: ConditionParser) throws -> Condition {
        try parseWithCost(text, at: location, with: parser).condition
    }

    func parseWithCost(
        _ text: String, at location: SourceLocation, positions: [SourceLocation]? = nil, with parser: ConditionParser
    ) throws -> (condition: Condition, cost: ConditionParser.Cost, warnings: [ConditionError]) {
        do {
            return try parser.parseWithCost(text, origin: location, positions: positions)
        } catch let error as ConditionError {
            throw RuleError(location: error.location, message: error.message)
        }
    }
}
