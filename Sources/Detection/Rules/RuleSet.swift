import Foundation
import Yams

/// Rules, macros and lists loaded from Falco-format YAML files, all or nothing: a file with
/// an error (YAML, an unknown or repeated key, a condition that does not parse, a macro or
/// list that does not exist, a rule defined twice, a bound of `RuleFileBounds` or
/// `ConditionParser.Limits` crossed) fails the whole load with its file, line and column.
///
/// Differences from Falco, so that a typo cannot silently disable a rule:
/// - a second `- rule:` of the same name is refused unless it says `append: true` or
///   `override:`, or only sets `enabled` (Falco replaces the first silently); when the first
///   has an `id:` of its own and is in another file (a built-in CAD rule named like Falco's),
///   the second is another rule and both stay;
/// - a macro or list a later file changes under rules already loaded is a warning;
/// - a second `- macro:` or `- list:` of a name in the same file is refused; a later file
///   may still redefine one (Falco's documented way to customise macros and lists);
/// - a key twice in one item is refused (YAML parsers keep one of them silently);
/// - an undefined name that reads as a list's (`shell_binaries`) alone in `in (...)` is a
///   warning with file:line:column (Falco takes it silently as the literal value; refusing
///   it would refuse Falco's own `proc.aname in (unicorn_launche)`); quote it to mean the
///   value. An undefined macro is refused, as before.
public struct RuleSet: Sendable {
    // Set only while loading (RuleSet+Build.swift builds them); read-only outside the module.
    public internal(set) var rules: [Rule] = []
    public internal(set) var macros: [String: Condition] = [:]
    public internal(set) var lists: [String: [String]] = [:]
    /// What loaded but is likely a mistake, with where: an undefined name that reads as a
    /// list's, alone in `in (...)`, is compared as a value (as Falco does).
    public internal(set) var warnings: [RuleError] = []

    /// Loads the files in order; later files append to or override earlier definitions.
    /// Conditions may name only `knownFields` (Caduceus's field table by default).
    ///
    /// `keeping` names files whose rules keep the macros and lists they were written against
    /// (the built-in files): a later file that plainly redefines one of those (no `override:`,
    /// no `append`) changes it for its own rules and the files after it, not for theirs, so
    /// loading Falco's files beside the built-in rules does not rewrite the built-in rules'
    /// `spawned_process` or `open_read`. `override:` and `append` still change them for all.
    public static func load(
        _ files: [(path: String, text: String)], knownFields: Set<String>? = FieldTable.names,
        keeping protected: Set<String> = []
    ) throws -> RuleSet {
        var collector = Collector(knownFields: knownFields, protectedFiles: protected)
        for file in files { try collector.read(file.path, file.text) }
        return try collector.build()
    }

    /// One definition as written, before conditions are parsed.
    struct Definition {
        var name: String
        var condition: String = ""
        var conditionLocation: SourceLocation
        /// Where each character of `condition` is in its file (see `positions(of:_:)`).
        var conditionPositions: [SourceLocation]? = nil
        var items: [String] = []
        var fields: [String: Node] = [:]
        var exceptions: [Node] = []
        var location: SourceLocation

        /// `append: true`: the condition goes on after a space, each part placed in its own file.
        mutating func appendCondition(_ more: String, _ morePositions: [SourceLocation]?) {
            if let mine = conditionPositions
                ?? (condition.contains(where: { $0 == "\n" }) ? nil : Self.counted(condition, from: conditionLocation)),
                let theirs = morePositions
            {
                conditionPositions = mine + [mine.last ?? conditionLocation] + theirs
            } else {
                conditionPositions = nil
            }
            condition += " " + more
        }

        /// Positions of a one-line condition counted from where it starts.
        static func counted(_ text: String, from start: SourceLocation) -> [SourceLocation] {
            (0..<text.count).map { SourceLocation(file: start.file, line: start.line, column: start.column + $0) }
        }
    }

    struct Collector {
        let knownFields: Set<String>?
        /// Files whose rules keep their macros and lists (see `load`).
        var protectedFiles: Set<String> = []
        /// A protected file's macro or list as it was before another file plainly redefined it:
        /// what the protected files' rules are built with.
        var keptLists: [String: Definition] = [:]
        var keptMacros: [String: Definition] = [:]
        var lists: [String: Definition] = [:]
        var macros: [String: Definition] = [:]
        var rules: [String: Definition] = [:]
        var ruleOrder: [String] = []
        /// Macros and lists a later file redefined under rules of an earlier one (warnings).
        var redefinitions: [RuleError] = []
        /// The file each macro and list was last defined in, to refuse a second definition in one file.
        var definedIn: [String: String] = [:]
        /// The lines of the file being read, to place each character of a condition.
        var lines: [Substring] = []
        var path = ""

        static let ruleKeys: Set<String> = [
            "rule", "desc", "condition", "output", "priority", "tags", "enabled", "exceptions", "append", "override",
            "source", "warn_evttypes", "skip-if-unknown-filter", "id", "mitre", "action",
        ]

        func location(_ path: String, _ node: Node?) -> SourceLocation {
            SourceLocation(file: path, line: node?.mark?.line ?? 1, column: node?.mark?.column ?? 1)
        }

        mutating func read(_ path: String, _ text: String) throws {
            guard text.utf8.count <= RuleFileBounds.fileBytes else {
                throw RuleError(
                    location: SourceLocation(file: path),
                    message:
                        "the file is \(text.utf8.count) bytes, more than the \(RuleFileBounds.fileBytes) a rule file may have"
                )
            }
            if let deep = RuleFileBounds.nestingProblem(text) {
                throw RuleError(
                    location: SourceLocation(file: path, line: deep.line, column: deep.column),
                    message: "the YAML nests more than \(RuleFileBounds.yamlNesting) levels deep")
            }
            lines = text.split(omittingEmptySubsequences: false, whereSeparator: { $0 == "\n" || $0 == "\r\n" })
            self.path = path
            let root: Node?
            do {
                root = try Yams.compose(yaml: text)
            } catch let error as YamlError {
                throw RuleError(location: SourceLocation(file: path), message: "not valid YAML: \(error)")
            }
            guard let root else { return }
            guard let items = root.sequence else {
                throw RuleError(
                    location: location(path, root), message: "a rule file is a list of rule, macro and list items")
            }
            for item in items {
                guard let mapping = item.mapping else {
                    throw RuleError(
                        location: location(path, item), message: "each item is a mapping with rule, macro or list")
                }
                let keys = Array(mapping.keys).compactMap(\.string)
                let here = location(path, item)
                try checkDuplicateKeys(mapping, path)
                for exception in mapping["exceptions"]?.sequence ?? [] {
                    if let inner = exception.mapping { try checkDuplicateKeys(inner, path) }
                }
                if let override = mapping["override"]?.mapping { try checkDuplicateKeys(override, path) }
                if keys.contains("required_engine_version") || keys.contains("required_plugin_versions") {
                    try checkKeys(keys, allowed: ["required_engine_version", "required_plugin_versions"], path, item)
                    try RuleFileRequirements.check(mapping) { location(path, $0) }
                    continue
                }
                let append = mapping["append"]?.bool ?? false
                if let name = mapping["list"]?.string {
                    try checkKeys(keys, allowed: ["list", "items", "append", "override"], path, item)
                    let values = (mapping["items"]?.sequence ?? []).compactMap(\.string)
                    if append || mapping["override"]?["items"]?.string == "append" {
                        guard lists[name] != nil else {
                            throw RuleError(location: here, message: "list '\(name)' is appended to but never defined")
                        }
                        lists[name]!.items += values
                    } else {
                        if mapping["override"]?["items"]?.string != "replace" {
                            try checkRedefinition(
                                "list", name, path, here, changed: lists[name].map { $0.items != values } ?? false)
                            if let kept = lists[name], keeps(kept), keptLists[name] == nil { keptLists[name] = kept }
                        }
                        lists[name] = Definition(name: name, conditionLocation: here, items: values, location: here)
                    }
                } else if let name = mapping["macro"]?.string {
                    try checkKeys(keys, allowed: ["macro", "condition", "append", "override"], path, item)
                    let condition = mapping["condition"]?.string ?? ""
                    let conditionHere = location(path, mapping["condition"])
                    if append || mapping["override"]?["condition"]?.string == "append" {
                        guard macros[name] != nil else {
                            throw RuleError(location: here, message: "macro '\(name)' is appended to but never defined")
                        }
                        macros[name]!.appendCondition(condition, positions(of: mapping["condition"], condition))
                    } else {
                        if mapping["override"]?["condition"]?.string != "replace" {
                            try checkRedefinition(
                                "macro", name, path, here,
                                changed: macros[name].map { $0.condition != condition } ?? false)
                            if let kept = macros[name], keeps(kept), keptMacros[name] == nil { keptMacros[name] = kept }
                        }
                        macros[name] = Definition(
                            name: name, condition: condition, conditionLocation: conditionHere,
                            conditionPositions: positions(of: mapping["condition"], condition), location: here)
                    }
                } else if let name = mapping["rule"]?.string {
                    try checkKeys(keys, allowed: Self.ruleKeys, path, item)
                    try readRule(name, mapping, append: append, path, item)
                } else {
                    throw RuleError(
                        location: here,
                        message: "an item needs a rule, macro or list key (found: \(keys.joined(separator: ", ")))")
                }
            }
        }

        mutating func readRule(_ name: String, _ mapping: Node.Mapping, append: Bool, _ path: String, _ item: Node)
            throws
        {
            let here = location(path, item)
            var fields: [String: Node] = [:]
            for (key, value) in mapping { if let key = key.string { fields[key] = value } }
            let exceptions = mapping["exceptions"]?.sequence.map(Array.init) ?? []
            if append || mapping["override"] != nil
                || (rules[name] != nil && fields.keys.allSatisfy { ["rule", "enabled"].contains($0) })
            {
                guard var existing = rules[name] else {
                    throw RuleError(
                        location: here, message: "rule '\(name)' is appended to or overridden but never defined")
                }
                let modes = try overrideModes(mapping, fields: fields, legacyAppend: append, path)
                for (key, mode) in modes.sorted(by: { $0.key < $1.key }) {
                    guard let value = fields[key] else { continue }
                    switch (key, mode) {
                    case ("condition", .append):
                        existing.appendCondition(value.string ?? "", positions(of: value, value.string ?? ""))
                    case ("condition", .replace):
                        existing.condition = value.string ?? ""
                        existing.conditionLocation = location(path, value)
                        existing.conditionPositions = positions(of: value, existing.condition)
                    case ("exceptions", .append):
                        try appendExceptions(value.sequence.map(Array.init) ?? [], to: &existing, path)
                    case ("exceptions", .replace):
                        existing.exceptions = value.sequence.map(Array.init) ?? []
                    case ("tags", .append):
                        let tags =
                            (existing.fields["tags"]?.sequence.map(Array.init) ?? [])
                            + (value.sequence.map(Array.init) ?? [])
                        existing.fields["tags"] = Node.sequence(Node.Sequence(tags))
                    case ("output", .append), ("desc", .append):
                        existing.fields[key] = Node(
                            ((existing.fields[key]?.string).map { $0 + " " } ?? "") + (value.string ?? ""))
                    default:
                        existing.fields[key] = value
                    }
                }
                rules[name] = existing
                return
            }
            for required in ["condition", "output", "priority"] where fields[required] == nil {
                throw RuleError(location: here, message: "rule '\(name)' has no \(required)")
            }
            if let first = rules[name], let firstID = first.fields["id"]?.string, first.location.file != path,
                mapping["id"]?.string != firstID
            {
                // A rule of another file that has its own id (a built-in CAD rule named like
                // Falco's) is another rule: both stay; override and append by name now reach
                // this later one.
                let kept = name + "\u{0}" + firstID
                guard rules[kept] == nil else {
                    throw RuleError(
                        location: here, message: "rule '\(name)' is defined a third time (first at \(first.location))")
                }
                rules[kept] = first
                ruleOrder = ruleOrder.map { $0 == name ? kept : $0 }
                rules[name] = nil
            }
            if let first = rules[name] {
                throw RuleError(
                    location: here,
                    message:
                        "rule '\(name)' is already defined at \(first.location); say 'override:' (or 'append: true') to change it"
                )
            }
            ruleOrder.append(name)
            let condition = mapping["condition"]?.string ?? ""
            rules[name] = Definition(
                name: name, condition: condition,
                conditionLocation: location(path, mapping["condition"]),
                conditionPositions: positions(of: mapping["condition"], condition),
                fields: fields, exceptions: exceptions, location: here)
        }

        enum OverrideMode: String { case append, replace }

        /// What each key of an overriding rule does, as Falco reads it: `override: {key:
        /// append|replace}` for each key given (`enabled` may stand alone), only keys Falco lets
        /// append (condition, output, desc, tags, exceptions) or replace (those, priority,
        /// enabled, ...); legacy `append: true` appends condition and exceptions.
        func overrideModes(_ mapping: Node.Mapping, fields: [String: Node], legacyAppend: Bool, _ path: String) throws
            -> [String: OverrideMode]
        {
            let appendable: Set<String> = ["condition", "output", "desc", "tags", "exceptions"]
            let replaceable = appendable.union([
                "priority", "enabled", "warn_evttypes", "skip-if-unknown-filter", "source", "mitre", "action", "id",
            ])
            var modes: [String: OverrideMode] = [:]
            if let override = mapping["override"] {
                guard let entries = override.mapping, !legacyAppend else {
                    throw RuleError(
                        location: location(path, override),
                        message: "override is a mapping of keys to append or replace, and not beside append: true")
                }
                for (key, value) in entries {
                    guard let name = key.string, let mode = value.string.flatMap(OverrideMode.init(rawValue:)) else {
                        throw RuleError(
                            location: location(path, value),
                            message:
                                "override of '\(key.string?.prefix(40) ?? "")' is '\(value.string?.prefix(40) ?? "")', not append or replace"
                        )
                    }
                    guard mode == .append ? appendable.contains(name) : replaceable.contains(name) else {
                        throw RuleError(
                            location: location(path, key),
                            message: "a rule's '\(name.prefix(40))' cannot be overridden with \(mode.rawValue)")
                    }
                    guard fields[name] != nil else {
                        throw RuleError(
                            location: location(path, key),
                            message: "override names '\(name.prefix(40))', which the item does not give")
                    }
                    modes[name] = mode
                }
            } else {
                for key in ["condition", "exceptions"] where fields[key] != nil {
                    modes[key] = legacyAppend ? .append : .replace
                }
            }
            for key in fields.keys where !["rule", "override", "append", "enabled"].contains(key) && modes[key] == nil {
                if legacyAppend { continue }  // Falco's legacy append ignores the other keys
                throw RuleError(
                    location: location(path, mapping.keys.first { $0.string == key }),
                    message: "'\(key)' is given but not named in override")
            }
            if fields["enabled"] != nil && modes["enabled"] == nil { modes["enabled"] = .replace }
            return modes
        }

        /// Falco's exception append: values of an exception already defined (by name) go on
        /// after its values; a new name adds the exception, which must then give its fields.
        func appendExceptions(_ more: [Node], to rule: inout Definition, _ path: String) throws {
            for exception in more {
                guard let name = exception["name"]?.string else {
                    throw RuleError(location: location(path, exception), message: "an exception needs a name")
                }
                if let index = rule.exceptions.firstIndex(where: { $0["name"]?.string == name }),
                    var mapping = rule.exceptions[index].mapping
                {
                    let values =
                        (mapping["values"]?.sequence.map(Array.init) ?? [])
                        + (exception["values"]?.sequence.map(Array.init) ?? [])
                    mapping["values"] = Node.sequence(Node.Sequence(values))
                    rule.exceptions[index] = Node.mapping(mapping)
                } else {
                    guard exception["fields"] != nil else {
                        throw RuleError(
                            location: location(path, exception),
                            message:
                                "exception '\(name.prefix(80))' is appended but the rule has none of that name, and it gives no fields"
                        )
                    }
                    rule.exceptions.append(exception)
                }
            }
        }

        /// Where each character of a condition scalar's `value` is in the file: the value is
        /// matched, character by character, against the text from the scalar's start (a block
        /// scalar's from the line after `|` or `>`), where indentation, line breaks folded to
        /// spaces and quotes are skipped. nil when the two cannot be matched closely.
        func positions(of node: Node?, _ value: String) -> [SourceLocation]? {
            guard let mark = node?.mark, !value.isEmpty, value.utf8.count <= ConditionParser.Limits.conditionBytes,
                mark.line >= 1, mark.line <= lines.count
            else { return nil }
            var line = mark.line - 1
            var current = Array(lines[line])
            var column = max(mark.column - 1, 0)
            if column < current.count && (current[column] == "|" || current[column] == ">") {
                line += 1
                guard line < lines.count else { return nil }
                current = Array(lines[line])
                column = 0
            } else if column < current.count && (current[column] == "\"" || current[column] == "'") {
                column += 1
            }
            var result: [SourceLocation] = []
            result.reserveCapacity(value.count)
            for character in value {
                var skipped = 0
                while true {
                    let raw: Character = column < current.count ? current[column] : "\n"
                    let here = SourceLocation(file: path, line: line + 1, column: column + 1)
                    if column < current.count {
                        column += 1
                    } else {
                        line += 1
                        guard line < lines.count else { return nil }
                        current = Array(lines[line])
                        column = 0
                    }
                    if raw == character || (raw.isWhitespace && character.isWhitespace) {
                        result.append(here)
                        break
                    }
                    skipped += 1
                    if skipped > 512 { return nil }
                }
            }
            return result
        }

        /// A key twice in one mapping: YAML parsers keep one silently, so a typo'd copy would win.
        func checkDuplicateKeys(_ mapping: Node.Mapping, _ path: String) throws {
            var seen: Set<String> = []
            for key in mapping.keys {
                guard let text = key.string else { continue }
                guard seen.insert(text).inserted else {
                    throw RuleError(
                        location: location(path, key), message: "key '\(text.prefix(80))' appears twice in one item")
                }
            }
        }

        /// A definition of a protected file that the file being read replaces without `override:`.
        func keeps(_ definition: Definition) -> Bool {
            protectedFiles.contains(definition.location.file) && !protectedFiles.contains(path)
        }

        /// A macro or list defined twice in one file (a later file may redefine it, as in Falco).
        /// `changed`: the new definition differs from the one it replaces (worth a warning
        /// when rules of earlier files use it).
        mutating func checkRedefinition(
            _ kind: String, _ name: String, _ path: String, _ here: SourceLocation, changed: Bool
        ) throws {
            let key = kind + "\u{0}" + name
            if definedIn[key] == path {
                let first = kind == "list" ? lists[name]?.location : macros[name]?.location
                throw RuleError(
                    location: here,
                    message:
                        "\(kind) '\(name)' is already defined at \(first.map(String.init(describing:)) ?? path) in this file; say 'append: true' or 'override:' to change it"
                )
            }
            if changed, let earlier = definedIn[key], protectedFiles.contains(earlier), !protectedFiles.contains(path) {
                let first = kind == "list" ? lists[name]?.location : macros[name]?.location
                redefinitions.append(
                    RuleError(
                        location: here,
                        message:
                            "\(kind) '\(name)' (defined at \(first.map(String.init(describing:)) ?? earlier)) is redefined here for the rules of this file and later ones; the built-in rules keep theirs (say 'override:' to change it for them too)"
                    ))
            } else if changed, let earlier = definedIn[key], rules.values.contains(where: { $0.location.file != path })
            {
                let first = kind == "list" ? lists[name]?.location : macros[name]?.location
                redefinitions.append(
                    RuleError(
                        location: here,
                        message:
                            "\(kind) '\(name)' (defined at \(first.map(String.init(describing:)) ?? earlier)) is redefined here: rules of earlier files that use it use this definition now, as in Falco"
                    ))
            }
            definedIn[key] = path
        }

        func checkKeys(_ keys: [String], allowed: Set<String>, _ path: String, _ item: Node) throws {
            if let unknown = keys.first(where: { !allowed.contains($0) }) {
                let node = item.mapping?.keys.first { $0.string == unknown }
                throw RuleError(location: location(path, node), message: "unknown key '\(unknown)'")
            }
        }
    }
}
