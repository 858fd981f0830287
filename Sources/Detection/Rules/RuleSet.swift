import Yams

/// Rules, macros and lists loaded from Falco-format YAML files, all or nothing: a file with
/// an error (YAML, an unknown key, a condition that does not parse, a macro that does not
/// exist) fails the whole load with its file, line and column.
public struct RuleSet: Sendable {
    public private(set) var rules: [Rule] = []
    public private(set) var macros: [String: Condition] = [:]
    public private(set) var lists: [String: [String]] = [:]

    /// Loads the files in order; later files append to or override earlier definitions.
    /// Conditions may name only `knownFields` (Caduceus's field table by default).
    public static func load(_ files: [(path: String, text: String)], knownFields: Set<String>? = FieldTable.names) throws -> RuleSet {
        var collector = Collector(knownFields: knownFields)
        for file in files { try collector.read(file.path, file.text) }
        return try collector.build()
    }

    /// One definition as written, before conditions are parsed.
    struct Definition {
        var name: String
        var condition: String = ""
        var conditionLocation: SourceLocation
        var items: [String] = []
        var fields: [String: Node] = [:]
        var exceptions: [Node] = []
        var location: SourceLocation
    }

    struct Collector {
        let knownFields: Set<String>?
        var lists: [String: Definition] = [:]
        var macros: [String: Definition] = [:]
        var rules: [String: Definition] = [:]
        var ruleOrder: [String] = []

        static let ruleKeys: Set<String> = [
            "rule", "desc", "condition", "output", "priority", "tags", "enabled", "exceptions", "append", "override",
            "source", "warn_evttypes", "skip-if-unknown-filter", "id", "mitre", "action",
        ]

        func location(_ path: String, _ node: Node?) -> SourceLocation {
            SourceLocation(file: path, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1)
        }

        mutating func read(_ path: String, _ text: String) throws {
            let root: Node?
            do {
                root = try Yams.compose(yaml: text)
            } catch let error as YamlError {
                throw RuleError(location: SourceLocation(file: path), message: "not valid YAML: \(error)")
            }
            guard let root else { return }
            guard let items = root.sequence else {
                throw RuleError(location: location(path, root), message: "a rule file is a list of rule, macro and list items")
            }
            for item in items {
                guard let mapping = item.mapping else {
                    throw RuleError(location: location(path, item), message: "each item is a mapping with rule, macro or list")
                }
                let keys = Array(mapping.keys).compactMap(\.string)
                let here = location(path, item)
                if keys.contains("required_engine_version") || keys.contains("required_plugin_versions") { continue }
                let append = mapping["append"]?.bool ?? false
                if let name = mapping["list"]?.string {
                    try checkKeys(keys, allowed: ["list", "items", "append", "override"], path, item)
                    let values = (mapping["items"]?.sequence ?? []).compactMap(\.string)
                    if append || mapping["override"]?["items"]?.string == "append" {
                        guard lists[name] != nil else { throw RuleError(location: here, message: "list '\(name)' is appended to but never defined") }
                        lists[name]!.items += values
                    } else {
                        lists[name] = Definition(name: name, conditionLocation: here, items: values, location: here)
                    }
                } else if let name = mapping["macro"]?.string {
                    try checkKeys(keys, allowed: ["macro", "condition", "append", "override"], path, item)
                    let condition = mapping["condition"]?.string ?? ""
                    let conditionHere = location(path, mapping["condition"])
                    if append || mapping["override"]?["condition"]?.string == "append" {
                        guard macros[name] != nil else { throw RuleError(location: here, message: "macro '\(name)' is appended to but never defined") }
                        macros[name]!.condition += " " + condition
                    } else {
                        macros[name] = Definition(name: name, condition: condition, conditionLocation: conditionHere, location: here)
                    }
                } else if let name = mapping["rule"]?.string {
                    try checkKeys(keys, allowed: Self.ruleKeys, path, item)
                    try readRule(name, mapping, append: append, path, item)
                } else {
                    throw RuleError(location: here, message: "an item needs a rule, macro or list key (found: \(keys.joined(separator: ", ")))")
                }
            }
        }

        mutating func readRule(_ name: String, _ mapping: Node.Mapping, append: Bool, _ path: String, _ item: Node) throws {
            let here = location(path, item)
            var fields: [String: Node] = [:]
            for (key, value) in mapping { if let key = key.string { fields[key] = value } }
            let exceptions = mapping["exceptions"]?.sequence.map(Array.init) ?? []
            if append || mapping["override"] != nil || (rules[name] != nil && fields.keys.allSatisfy { ["rule", "enabled"].contains($0) }) {
                guard var existing = rules[name] else {
                    throw RuleError(location: here, message: "rule '\(name)' is appended to or overridden but never defined")
                }
                if let condition = mapping["condition"]?.string { existing.condition += " " + condition }
                existing.exceptions += exceptions
                for (key, value) in fields where !["rule", "condition", "exceptions", "append", "override"].contains(key) {
                    existing.fields[key] = value
                }
                rules[name] = existing
                return
            }
            for required in ["condition", "output", "priority"] where fields[required] == nil {
                throw RuleError(location: here, message: "rule '\(name)' has no \(required)")
            }
            if rules[name] == nil { ruleOrder.append(name) }
            rules[name] = Definition(
                name: name, condition: mapping["condition"]?.string ?? "",
                conditionLocation: location(path, mapping["condition"]), fields: fields, exceptions: exceptions,
                location: here)
        }

        func checkKeys(_ keys: [String], allowed: Set<String>, _ path: String, _ item: Node) throws {
            if let unknown = keys.first(where: { !allowed.contains($0) }) {
                let node = item.mapping?.keys.first { $0.string == unknown }
                throw RuleError(location: location(path, node), message: "unknown key '\(unknown)'")
            }
        }

        /// Lists (with lists inside lists), then macros in dependency order, then rules.
        func build() throws -> RuleSet {
            var set = RuleSet()
            for (name, list) in lists {
                set.lists[name] = list.items.flatMap { lists[$0]?.items ?? [$0] }
            }
            var parsing: Set<String> = []
            func macro(_ name: String) throws -> Condition? {
                if let done = set.macros[name] { return done }
                guard let definition = macros[name] else { return nil }
                guard !parsing.contains(name) else {
                    throw RuleError(location: definition.location, message: "macro '\(name)' refers to itself")
                }
                parsing.insert(name)
                defer { parsing.remove(name) }
                // Macros this one names are parsed first, so the parser can expand them.
                var parser = ConditionParser(macros: set.macros, lists: set.lists, knownFields: knownFields)
                for word in definition.condition.split(whereSeparator: { " ()\n\t,".contains($0) }).map(String.init)
                where word != name && macros[word] != nil && set.macros[word] == nil {
                    // `macro: chmod` with `evt.type in (chmod, ...)` names itself only as a value.
                    if let inner = try macro(word) { parser.macros[word] = inner }
                }
                let condition = try parse(definition.condition, at: definition.conditionLocation, with: parser)
                set.macros[name] = condition
                return condition
            }
            for name in macros.keys.sorted() { _ = try macro(name) }
            let parser = ConditionParser(macros: set.macros, lists: set.lists, knownFields: knownFields)
            for name in ruleOrder {
                let definition = rules[name]!
                var condition = try parse(definition.condition, at: definition.conditionLocation, with: parser)
                for exception in definition.exceptions {
                    if let excluded = try exceptionCondition(exception, rule: definition) {
                        condition = .and(condition, .not(excluded))
                    }
                }
                let priorityNode = definition.fields["priority"]
                guard let priority = priorityNode?.string.flatMap(RulePriority.init(falco:)) else {
                    throw RuleError(
                        location: SourceLocation(file: definition.location.file, line: priorityNode?.mark?.line ?? 1, column: priorityNode?.mark?.column ?? 1),
                        message: "priority '\(priorityNode?.string ?? "")' is not one of \(RulePriority.allCases.map(\.rawValue).joined(separator: ", "))")
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
                    throw RuleError(location: location(definition.location.file, outputNode), message: "output: \(error.message)")
                }
                var action: RuleAction?
                if let actionNode = definition.fields["action"] {
                    guard let parsed = actionNode.string.flatMap(RuleAction.init(rawValue:)) else {
                        throw RuleError(
                            location: location(definition.location.file, actionNode),
                            message: "action '\(actionNode.string ?? "")' is not one of \(RuleAction.allCases.map(\.rawValue).joined(separator: ", "))")
                    }
                    action = parsed
                }
                set.rules.append(Rule(
                    id: definition.fields["id"]?.string ?? name, name: name,
                    description: definition.fields["desc"]?.string ?? "", condition: condition,
                    output: output, priority: priority, tags: tags, mitre: techniques,
                    enabled: definition.fields["enabled"]?.bool ?? true, location: definition.location, action: action))
            }
            return set
        }

        /// `T1059` or `T1059.004`.
        static func isTechnique(_ tag: String) -> Bool {
            let parts = tag.split(separator: ".", omittingEmptySubsequences: false)
            guard let head = parts.first, head.count == 5, head.first == "T", head.dropFirst().allSatisfy(\.isNumber) else { return false }
            return parts.count == 1 || (parts.count == 2 && parts[1].count == 3 && parts[1].allSatisfy(\.isNumber))
        }

        func parse(_ text: String, at location: SourceLocation, with parser: ConditionParser) throws -> Condition {
            do {
                return try parser.parse(text, origin: location)
            } catch let error as ConditionError {
                throw RuleError(location: error.location, message: error.message)
            }
        }

        /// Falco exceptions: `fields` and `comps` name the comparisons, each of `values` is
        /// one tuple that, when all its comparisons hold, excuses the event.
        func exceptionCondition(_ node: Node, rule: Definition) throws -> Condition? {
            let here = location(rule.location.file, node)
            let fields = (node["fields"]?.sequence.map(Array.init) ?? node["fields"].map { [$0] } ?? []).compactMap(\.string)
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
                return op
            }
            var alternatives: [Condition] = []
            for tuple in node["values"]?.sequence ?? [] {
                let values = tuple.sequence.map { $0.map { $0.sequence.map { $0.compactMap(\.string) } ?? [$0.string ?? ""] } }
                    ?? [[tuple.string ?? ""]]
                guard values.count == references.count else {
                    throw RuleError(location: location(rule.location.file, tuple), message: "an exception value has \(values.count) parts for \(references.count) fields")
                }
                let parts = references.indices.map { Condition.compare(references[$0], operators[$0], values[$0]) }
                alternatives.append(parts.dropFirst().reduce(parts[0]) { .and($0, $1) })
            }
            guard let first = alternatives.first else { return nil }
            return alternatives.dropFirst().reduce(first) { .or($0, $1) }
        }
    }
}
