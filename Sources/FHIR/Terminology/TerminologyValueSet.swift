/// A value set as its `compose` defines it: evaluated when it is expanded or asked about a
/// code, against the code systems of a ``Terminology``.
public struct TerminologyValueSet: Sendable {
    public let url: String
    public let version: String
    public let name: String
    public let id: String
    public let status: String
    var includes: [ComposeRule] = []
    var excludes: [ComposeRule] = []

    init(url: String, version: String, name: String, id: String, status: String) {
        self.url = url
        self.version = version
        self.name = name
        self.id = id
        self.status = status
    }

    mutating func lastRule(_ change: (inout ComposeRule) -> Void) {
        if !excludes.isEmpty {
            change(&excludes[excludes.count - 1])
        } else if !includes.isEmpty {
            change(&includes[includes.count - 1])
        }
    }

    /// Whether `code` of `system` is in the value set: `nil` when that cannot be told (the
    /// value set takes all of a code system r4-core does not enumerate, such as LOINC, or a
    /// filter this server does not evaluate). A `nil` system matches any system the value set
    /// draws on.
    public func contains(system: String?, code: String, in terminology: Terminology = .r4) -> Bool? {
        membership(system: system, code: code, terminology: terminology, depth: 0)
    }

    func membership(system: String?, code: String, terminology: Terminology, depth: Int) -> Bool? {
        guard depth <= Terminology.maximumImportDepth else { return nil }
        var included: Bool? = false
        for rule in includes {
            included = Kleene.or(
                included, rule.matches(system: system, code: code, terminology: terminology, depth: depth))
            if included == true { break }
        }
        guard included != false else { return false }
        var excluded: Bool? = false
        for rule in excludes {
            excluded = Kleene.or(
                excluded, rule.matches(system: system, code: code, terminology: terminology, depth: depth))
            if excluded == true { return false }
        }
        return Kleene.and(included, excluded.map { !$0 })
    }

    /// Every concept of the value set, in the order of its includes; throws a 422 naming
    /// why when it cannot be listed (a whole external code system, an unsupported filter,
    /// an unknown imported value set) and a 422 `too-costly` beyond `limit` concepts.
    public func expand(in terminology: Terminology = .r4, limit: Int) throws -> [ExpansionEntry] {
        try expansion(terminology: terminology, depth: 0, limit: limit)
    }

    func expansion(terminology: Terminology, depth: Int, limit: Int) throws -> [ExpansionEntry] {
        guard depth <= Terminology.maximumImportDepth else {
            throw FHIRError(
                status: 422, code: "too-costly",
                "\(label) imports value sets more than \(Terminology.maximumImportDepth) deep")
        }
        var entries: [ExpansionEntry] = []
        var seen = Set<ExpansionEntry.Key>()
        for rule in includes {
            for entry in try rule.entries(terminology: terminology, depth: depth, limit: limit, owner: label)
            where seen.insert(entry.key).inserted {
                entries.append(entry)
                if entries.count > limit {
                    throw FHIRError(
                        status: 422, code: "too-costly", "\(label) has more than \(limit) concepts: too many to expand")
                }
            }
        }
        guard !excludes.isEmpty else { return entries }
        // Each exclude is listed once (not asked about each concept): its cost is that of an include.
        var excludedSystems = Set<String>()
        var excludedKeys = Set<ExpansionEntry.Key>()
        for rule in excludes {
            if let system = rule.system, rule.concepts.isEmpty, rule.filters.isEmpty, rule.valueSets.isEmpty {
                excludedSystems.insert(system)
                continue
            }
            for entry in try rule.entries(terminology: terminology, depth: depth, limit: limit, owner: label) {
                excludedKeys.insert(entry.key)
            }
        }
        return entries.filter { !excludedSystems.contains($0.system) && !excludedKeys.contains($0.key) }
    }

    /// The value set's name in messages: its url, or what a posted one without url is.
    var label: String { url.isEmpty ? "The ValueSet" : url }

    /// The code systems the value set draws on directly.
    public var systems: [String] { includes.compactMap(\.system) }
}

/// One concept of an expansion.
public struct ExpansionEntry: Sendable, Equatable {
    public var system: String
    public var version: String?
    public var code: String
    public var display: String?
    public var abstract = false
    public var inactive = false

    struct Key: Hashable {
        var system: String
        var code: String
    }

    var key: Key { Key(system: system, code: code) }
}

/// One `compose.include` or `compose.exclude`.
struct ComposeRule: Sendable {
    struct Concept: Sendable {
        var code: String
        var display: String?
    }

    struct Filter: Sendable {
        var property: String
        var op: String
        var value: String
    }

    var system: String?
    var version: String?
    var concepts: [Concept] = []
    var filters: [Filter] = []
    var valueSets: [String] = []

    init(system: String?, version: String?) {
        self.system = system
        self.version = version
    }

    func matches(system askedSystem: String?, code: String, terminology: Terminology, depth: Int) -> Bool? {
        var result: Bool? = true
        if let system {
            if let askedSystem, askedSystem != system { return false }
            if !concepts.isEmpty {
                result = concepts.contains { $0.code == code }
            } else if let codeSystem = terminology.codeSystem(url: system), codeSystem.isEnumerated {
                if codeSystem.index[code] != nil {
                    for filter in filters where result != false {
                        result = Kleene.and(result, filter.matches(code, in: codeSystem))
                    }
                } else {
                    result = codeSystem.isComplete ? false : nil
                }
            } else {
                result = nil
            }
        }
        for imported in valueSets where result != false {
            let answer = terminology.valueSet(url: imported)?.membership(
                system: askedSystem, code: code, terminology: terminology, depth: depth + 1)
            result = Kleene.and(result, answer)
        }
        return result
    }

    func entries(terminology: Terminology, depth: Int, limit: Int, owner: String) throws -> [ExpansionEntry] {
        var entries: [ExpansionEntry]?
        if let system {
            let codeSystem = terminology.codeSystem(url: system)
            if !concepts.isEmpty {
                guard concepts.count <= limit else {
                    throw FHIRError(
                        status: 422, code: "too-costly",
                        "\(owner) lists more than \(limit) concepts: too many to expand")
                }
                entries = concepts.map { listed in
                    let known = codeSystem?.concept(listed.code)
                    return ExpansionEntry(
                        system: system, version: version, code: listed.code, display: listed.display ?? known?.display,
                        abstract: known?.abstract ?? false, inactive: known?.inactive ?? false)
                }
            } else {
                guard let codeSystem, codeSystem.isEnumerated else {
                    throw FHIRError(
                        status: 422, code: "not-supported",
                        "\(owner) includes all of \(system), whose concepts this server does not hold (r4-core does not enumerate them): it cannot be expanded"
                    )
                }
                var positions = Array(codeSystem.concepts.indices)
                for filter in filters {
                    guard let narrowed = filter.narrow(positions, in: codeSystem) else {
                        throw FHIRError(
                            status: 422, code: "not-supported",
                            "\(owner) filters \(system) by '\(filter.property) \(filter.op) \(filter.value)', which this server does not evaluate"
                        )
                    }
                    positions = narrowed
                }
                entries = positions.map { position in
                    let concept = codeSystem.concepts[position]
                    return ExpansionEntry(
                        system: system, version: version ?? codeSystem.version, code: concept.code,
                        display: concept.display,
                        abstract: concept.abstract, inactive: concept.inactive)
                }
            }
        }
        for imported in valueSets {
            guard let valueSet = terminology.valueSet(url: imported) else {
                // Imports resolve among R4's value sets only: a stored ValueSet importing another
                // stored one (or itself) is refused here, which also keeps import cycles out.
                throw FHIRError(
                    status: 422, code: "not-supported",
                    "\(owner) imports \(imported), which is not one of R4's value sets (imports resolve among R4's value sets only, not stored ones)"
                )
            }
            let more = try valueSet.expansion(terminology: terminology, depth: depth + 1, limit: limit)
            if let current = entries {
                let keys = Set(more.map(\.key))
                entries = current.filter { keys.contains($0.key) }
            } else {
                entries = more
            }
        }
        return entries ?? []
    }
}

extension ComposeRule.Filter {
    /// The `positions` (in order) of the concepts the filter keeps; `nil` for a filter not
    /// evaluated. Each filter builds a set of the concepts it names only (a subtree, the
    /// ancestors, the listed codes), never one of the whole code system, and keeps the
    /// positions still in play, so many filters narrow one list instead of each walking every
    /// concept again.
    func narrow(_ positions: [Int], in codeSystem: TerminologyCodeSystem) -> [Int]? {
        switch (property, op) {
        case ("concept", "is-a"), ("code", "is-a"):
            let subtree = Set(codeSystem.descendantIndices(of: value))
            return positions.filter(subtree.contains)
        case ("concept", "descendent-of"), ("code", "descendent-of"):
            let subtree = Set(codeSystem.descendantIndices(of: value).dropFirst())
            return positions.filter(subtree.contains)
        case ("concept", "is-not-a"), ("code", "is-not-a"):
            let subtree = Set(codeSystem.descendantIndices(of: value))
            return positions.filter { !subtree.contains($0) }
        case ("concept", "generalizes"), ("code", "generalizes"):
            let ancestors = Set(codeSystem.ancestorIndices(of: value))
            return positions.filter(ancestors.contains)
        case ("concept", "="), ("code", "="):
            guard let position = codeSystem.index[value] else { return [] }
            return positions.filter { $0 == position }
        case ("concept", "in"), ("code", "in"):
            let listed = Set(value.split(separator: ",").compactMap { codeSystem.index[String($0)] })
            return positions.filter(listed.contains)
        case ("parent", "="):
            guard let parent = codeSystem.index[value] else { return [] }
            let children = Set(codeSystem.childIndices[parent].map(Int.init))
            return positions.filter(children.contains)
        default:
            return nil
        }
    }

    /// Whether the concept `code` passes; `nil` for a filter not evaluated. Walks up from
    /// the code only (not the whole code system), so a membership test stays cheap.
    func matches(_ code: String, in codeSystem: TerminologyCodeSystem) -> Bool? {
        switch (property, op) {
        case ("concept", "is-a"), ("code", "is-a"): return codeSystem.subsumes(value, code)
        case ("concept", "descendent-of"), ("code", "descendent-of"):
            return code != value && codeSystem.subsumes(value, code)
        case ("concept", "is-not-a"), ("code", "is-not-a"): return !codeSystem.subsumes(value, code)
        case ("concept", "generalizes"), ("code", "generalizes"): return codeSystem.subsumes(code, value)
        case ("concept", "="), ("code", "="): return code == value
        case ("concept", "in"), ("code", "in"): return value.split(separator: ",").contains { $0 == code }
        case ("parent", "="): return codeSystem.parents(of: code).contains(value)
        default: return nil
        }
    }
}

/// Three-valued logic: `nil` is "unknown".
enum Kleene {
    static func or(_ a: Bool?, _ b: Bool?) -> Bool? {
        if a == true || b == true { return true }
        if a == nil || b == nil { return nil }
        return false
    }

    static func and(_ a: Bool?, _ b: Bool?) -> Bool? {
        if a == false || b == false { return false }
        if a == nil || b == nil { return nil }
        return true
    }
}
