import Foundation

/// Turns URL query parameters into a ``SearchQuery``, following the R4 search rules.
public struct SearchQueryParser: Sendable {
    public var registry: SearchParameterRegistry
    public var defaultCount: Int
    public var maximumCount: Int
    /// How much one query may ask for; over a limit the parse throws a 400.
    public var limits: SearchLimits

    public init(
        registry: SearchParameterRegistry = .r4, defaultCount: Int = 10, maximumCount: Int = 1000,
        limits: SearchLimits = .standard
    ) {
        self.registry = registry
        self.defaultCount = defaultCount
        self.maximumCount = maximumCount
        self.limits = limits
    }

    /// Result parameters this server recognises but does not apply yet.
    static let unsupportedResultParameters: Set<String> = [
        "_contained", "_containedType", "_list", "_query", "_text", "_content",
    ]
    /// The highest `_page`: with `_count` capped too, the row offset cannot overflow.
    public static let maximumPage = 1_000_000_000

    /// Parameters about the response format, handled by the HTTP layer.
    static let formatParameters: Set<String> = ["_format", "_pretty", "_totalMethod"]

    /// Parses `parameters` (decoded, in URL order). Unknown parameters throw under `strict`,
    /// and are listed in ``SearchQuery/ignored`` otherwise.
    public func parse(
        resourceType: String?, parameters: [(name: String, value: String)], strict: Bool
    ) throws -> SearchQuery {
        do {
            return try parseWithinLimits(resourceType: resourceType, parameters: parameters, strict: strict)
        } catch let exceeded as SearchLimitExceeded {
            throw exceeded.fhirError
        }
    }

    func parseWithinLimits(
        resourceType: String?, parameters: [(name: String, value: String)], strict: Bool
    ) throws -> SearchQuery {
        var query = SearchQuery(resourceType: resourceType, count: defaultCount)
        var budget = SearchBudget(limits: limits)
        func ignore(_ message: String) throws {
            if strict { throw FHIRError.badRequest(message) }
            query.ignored.append(message)
        }
        for (rawName, value) in parameters {
            guard !rawName.contains("\u{0}"), !value.contains("\u{0}") else {
                throw FHIRError.badRequest("Search parameters may not contain NUL characters")
            }
            try Self.checkSyntax(rawName)
            let (name, modifier) = Self.splitModifier(rawName)
            switch name {
            case "_count":
                query.count = try pageSize(value)
                continue
            case "_page":
                query.page = try Self.page(value)
                continue
            case "_sort":
                var appliedKeys: [String] = []
                let keys = value.split(separator: ",")
                try budget.spendSortKeys(query.sort.count + keys.count)
                for key in keys {
                    let descending = key.hasPrefix("-")
                    let keyName = descending ? String(key.dropFirst()) : String(key)
                    let sortKey: SearchSort.Key
                    if keyName == "_id" {
                        sortKey = .id
                    } else if keyName == "_lastUpdated" {
                        sortKey = .lastUpdated
                    } else if let definition = resourceType.flatMap({ registry.parameter(keyName, of: $0) })
                        ?? registry.common[keyName],
                        definition.type != .composite, definition.type != .special
                    {
                        sortKey = .parameter(definition)
                    } else {
                        try ignore(
                            "Cannot sort by '\(keyName)': it is not a search parameter of \(resourceType ?? "every type")"
                        )
                        continue
                    }
                    query.sort.append(SearchSort(key: sortKey, descending: descending))
                    appliedKeys.append(String(key))
                }
                // The self link shows only what took effect.
                if !appliedKeys.isEmpty {
                    query.appliedParameters.append((rawName, appliedKeys.joined(separator: ",")))
                }
                continue
            case "_total":
                guard ["none", "estimate", "accurate"].contains(value) else {
                    throw FHIRError.badRequest("_total must be none, estimate or accurate")
                }
                query.total = TotalMode(rawValue: value) ?? .estimate
                query.appliedParameters.append((rawName, value))
                continue
            case "_summary":
                switch value {
                case "count": query.countOnly = true
                case "true": query.summary = .summary
                case "text": query.summary = .text
                case "data": query.summary = .data
                case "false": query.summary = .full
                default: throw FHIRError.badRequest("_summary must be true, text, data, count or false")
                }
                query.appliedParameters.append((rawName, value))
                continue
            case "_elements":
                let elements = value.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }.filter {
                    !$0.isEmpty
                }
                guard !elements.isEmpty else { throw FHIRError.badRequest("_elements needs element names") }
                query.summary = .elements(elements)
                query.appliedParameters.append((rawName, value))
                continue
            case "_include", "_revinclude":
                try budget.spendInclude(query.includes.count + 1)
                query.includes.append(
                    try parseInclude(
                        value, reverse: name == "_revinclude", modifier: modifier, resourceType: resourceType))
                query.appliedParameters.append((rawName, value))
                continue
            case "_filter":
                // One criterion, whatever its size: its tests are bounded by SearchFilterLimits.
                try budget.spendParameter(query.clauses.count + 1)
                query.clauses.append(try parseFilter(value, resourceType: resourceType, budget: &budget))
                query.appliedParameters.append((rawName, value))
                continue
            case "_type" where resourceType == nil:
                for type in value.split(separator: ",").map(String.init) {
                    guard FHIRResourceType.isKnown(type) else {
                        throw FHIRError.badRequest("Unknown resource type '\(type)' in _type")
                    }
                    // Repeats would only lengthen the SQL; the known types bound the list.
                    if !query.types.contains(type) { query.types.append(type) }
                }
                query.appliedParameters.append((rawName, value))
                continue
            default:
                break
            }
            if SearchQueryParser.formatParameters.contains(name) { continue }
            if SearchQueryParser.unsupportedResultParameters.contains(name) {
                try ignore("The parameter '\(rawName)' is not supported")
                continue
            }
            do {
                try budget.spendParameter(query.clauses.count + 1)
                query.clauses.append(
                    try parseClause(rawName: rawName, value: value, resourceType: resourceType, budget: &budget))
                query.appliedParameters.append((rawName, value))
            } catch let unknown as UnknownParameter {
                try ignore(unknown.message)
            }
        }
        return query
    }

    /// A parameter this server does not know, which `Prefer: handling` decides about.
    struct UnknownParameter: Error {
        var message: String
    }

    /// A `_count`, capped at ``maximumCount``.
    public func pageSize(_ value: String) throws -> Int {
        guard let count = Int(value), count >= 0 else {
            throw FHIRError.badRequest("_count must be a non-negative integer, not '\(value)'")
        }
        return min(count, maximumCount)
    }

    /// A `_page`, from 1 to ``maximumPage``.
    public static func page(_ value: String) throws -> Int {
        guard let page = Int(value), (1...maximumPage).contains(page) else {
            throw FHIRError.badRequest("_page must be an integer from 1 to \(maximumPage), not '\(value)'")
        }
        return page
    }

    /// Refuses names no parameter can have: empty, or with an empty name, modifier or chain
    /// link (`:x`, `x:`, `.x`, `x.`, `a..b`, `a.:b`); the rest is checked as each part is read.
    static func checkSyntax(_ rawName: String) throws {
        guard let first = rawName.first, let last = rawName.last else {
            throw FHIRError.badRequest("A search parameter needs a name")
        }
        let emptyPart =
            [first, last].contains { $0 == ":" || $0 == "." }
            || ["..", "::", ".:", ":."].contains { rawName.contains($0) }
        guard !emptyPart else {
            throw FHIRError.badRequest(
                "'\(SearchBudget.shortened(rawName))' is not a search parameter name: a name, modifier or chain link in it is empty"
            )
        }
    }

    /// `name:modifier` as its two parts.
    static func splitModifier(_ rawName: String) -> (name: String, modifier: String?) {
        guard let colon = rawName.firstIndex(of: ":") else { return (rawName, nil) }
        return (String(rawName[..<colon]), String(rawName[rawName.index(after: colon)...]))
    }

    /// One criterion, `name[:modifier][.chained...]=value`, for `resourceType`; `nesting`
    /// says how deep in chains and `_has` it is, `budget` what the query has used so far.
    func parseClause(
        rawName: String, value: String, resourceType: String?, budget: inout SearchBudget,
        nesting: SearchNesting = SearchNesting()
    ) throws -> SearchClause {
        if rawName.hasPrefix("_has:") {
            return try parseHas(
                rawName: rawName, value: value, resourceType: resourceType, budget: &budget, nesting: nesting)
        }
        if let dot = rawName.firstIndex(of: "."), let resourceType {
            return try parseChain(
                head: String(rawName[..<dot]), tail: String(rawName[rawName.index(after: dot)...]), value: value,
                resourceType: resourceType, budget: &budget, nesting: nesting)
        }
        let (name, modifier) = Self.splitModifier(rawName)
        let target: SearchTarget
        let type: SearchParameterType
        if name == "_id" {
            target = .id
            type = .token
        } else if name == "_lastUpdated" {
            target = .lastUpdated
            type = .date
        } else if let definition = resourceType.flatMap({ registry.parameter(name, of: $0) }) ?? registry.common[name] {
            guard definition.type != .special else {
                throw UnknownParameter(message: "The \(definition.type.rawValue) parameter '\(name)' is not supported")
            }
            target = .indexed(definition)
            type = definition.type
        } else {
            throw UnknownParameter(
                message: "Unknown search parameter '\(name)' for \(resourceType ?? "system-level search")")
        }
        let components: [CompositeComponent]
        if case .indexed(let definition) = target { components = definition.components } else { components = [] }
        let values = try parseValues(value, type: type, modifier: modifier, name: rawName, components: components)
        // A `:below`/`:above` token counts as the codes it widens to (each is bound in the SQL).
        try budget.spendValues(
            values.reduce(0) { count, value in
                guard case .token(let system, let code?) = value else { return count + 1 }
                return count + CodeHierarchy.r4.codes(code, system: system, modifier: modifier).count
            })
        return SearchClause(name: name, target: target, modifier: modifier, values: values)
    }

    /// `reference[:Type].rest=value`: the chained clause is parsed against each type the
    /// reference may point at that has the chained parameter.
    func parseChain(
        head: String, tail: String, value: String, resourceType: String, budget: inout SearchBudget,
        nesting: SearchNesting
    ) throws -> SearchClause {
        let nesting = try nesting.addingLink(within: limits, chain: head + "." + tail)
        let parts = head.split(separator: ":", maxSplits: 1, omittingEmptySubsequences: false).map(String.init)
        guard let name = parts.first, !name.isEmpty, parts.count == 1 || !parts[1].isEmpty, !tail.isEmpty else {
            throw FHIRError.badRequest("A chain takes the form reference[:Type].parameter, not '\(head).\(tail)'")
        }
        guard let definition = registry.parameter(name, of: resourceType), definition.type == .reference else {
            throw UnknownParameter(
                message: "'\(name)' is not a reference parameter of \(resourceType), so it cannot be chained")
        }
        let candidates: [String]
        if parts.count == 2 {
            guard FHIRResourceType.isKnown(parts[1]) else {
                throw FHIRError.badRequest("Unknown resource type '\(parts[1])' in '\(head)'")
            }
            candidates = [parts[1]]
        } else {
            candidates = definition.targets.isEmpty ? Array(FHIRResourceType.all).sorted() : definition.targets
        }
        let tailName = Self.splitModifier(String(tail.prefix { $0 != "." })).name
        var targets: [ChainTarget] = []
        for type in candidates where tailName == "_has" || hasParameter(tailName, type) {
            // Every type tried counts, matched or not: untyped links multiply the work per link.
            try budget.spendChainTarget(chain: head + "." + tail)
            let before = budget
            do {
                let clause = try parseClause(
                    rawName: tail, value: value, resourceType: type, budget: &budget, nesting: nesting)
                targets.append(ChainTarget(type: type, clause: clause))
            } catch let exceeded as SearchLimitExceeded {
                throw exceeded
            } catch {
                // This type reads the value differently or lacks the rest of the chain; others may not.
                budget.restoreValues(from: before)
            }
        }
        guard !targets.isEmpty else {
            // Parse once more against the first candidate to surface a value error if that was it.
            if let first = candidates.first {
                _ = try parseClause(rawName: tail, value: value, resourceType: first, budget: &budget, nesting: nesting)
            }
            throw UnknownParameter(message: "No type that '\(head)' points at has the parameter '\(tail)'")
        }
        return SearchClause(
            name: head, target: .chain(reference: definition, targets: targets), modifier: nil, values: [])
    }

    /// Whether `type` has the search parameter `name` (or one every type has).
    func hasParameter(_ name: String, _ type: String) -> Bool {
        SearchParameterRegistry.columnParameters.contains(name) || registry.parameter(name, of: type) != nil
    }

    /// `_has:Type:reference:rest=value`.
    func parseHas(
        rawName: String, value: String, resourceType: String?, budget: inout SearchBudget, nesting: SearchNesting
    ) throws -> SearchClause {
        let nesting = try nesting.addingHas(within: limits)
        let parts = rawName.split(separator: ":", maxSplits: 3, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 4, FHIRResourceType.isKnown(parts[1]), !parts[3].isEmpty else {
            throw FHIRError.badRequest("_has takes the form _has:Type:reference:parameter, not '\(rawName)'")
        }
        guard let resourceType else { throw FHIRError.badRequest("_has needs a resource type to search") }
        guard let reference = registry.parameter(parts[2], of: parts[1]), reference.type == .reference else {
            throw FHIRError.badRequest("'\(parts[2])' is not a reference parameter of \(parts[1])")
        }
        guard reference.targets.isEmpty || reference.targets.contains(resourceType) else {
            throw FHIRError.badRequest("\(parts[1]).\(parts[2]) never points at a \(resourceType)")
        }
        let inner = try parseClause(
            rawName: parts[3], value: value, resourceType: parts[1], budget: &budget, nesting: nesting)
        return SearchClause(
            name: "_has", target: .has(sourceType: parts[1], reference: reference, inner: inner), modifier: nil,
            values: [])
    }

    /// `Type:parameter[:Target]` or `*`, with `:iterate` as the modifier.
    func parseInclude(_ value: String, reverse: Bool, modifier: String?, resourceType: String?) throws -> SearchInclude
    {
        let iterate = modifier == "iterate" || modifier == "recurse"
        guard modifier == nil || iterate else {
            throw FHIRError.badRequest("_include takes only the :iterate modifier")
        }
        let parts = value.split(separator: ":").map(String.init)
        let name = reverse ? "_revinclude" : "_include"
        if value == "*" {
            guard let resourceType, !reverse else { throw FHIRError.badRequest("\(name)=* needs a resource type") }
            return SearchInclude(
                sourceType: resourceType, parameter: nil, targetType: nil, reverse: false, iterate: iterate)
        }
        guard (2...3).contains(parts.count), FHIRResourceType.isKnown(parts[0]) else {
            throw FHIRError.badRequest("\(name) takes Type:parameter[:targetType], not '\(value)'")
        }
        var parameter: String? = parts[1]
        if parts[1] == "*" {
            parameter = nil
        } else {
            guard let definition = registry.parameter(parts[1], of: parts[0]), definition.type == .reference else {
                throw FHIRError.badRequest("'\(parts[1])' is not a reference parameter of \(parts[0])")
            }
        }
        if parts.count == 3 {
            guard FHIRResourceType.isKnown(parts[2]) else {
                throw FHIRError.badRequest("Unknown type '\(parts[2])' in \(name)")
            }
        }
        return SearchInclude(
            sourceType: parts[0], parameter: parameter, targetType: parts.count == 3 ? parts[2] : nil, reverse: reverse,
            iterate: iterate)
    }

    static let modifiers: [SearchParameterType: Set<String>] = [
        .string: ["exact", "contains", "missing"],
        .token: ["missing", "not", "text", "below", "above"],
        .reference: ["missing", "identifier"],
        .date: ["missing"],
        .uri: ["missing", "below", "above"],
        .number: ["missing"],
        .quantity: ["missing"],
        .composite: ["missing"],
    ]

    /// The values of `name[:modifier]=text`, split at unescaped commas. For a composite,
    /// `components` gives the type of each `$`-separated part.
    func parseValues(
        _ text: String, type: SearchParameterType, modifier: String?, name: String,
        components: [CompositeComponent] = []
    ) throws -> [SearchValue] {
        if let modifier {
            let allowedForType = SearchQueryParser.modifiers[type] ?? []
            let isTypeModifier = type == .reference && FHIRResourceType.isKnown(modifier)
            guard allowedForType.contains(modifier) || isTypeModifier else {
                throw FHIRError.badRequest(
                    "The modifier ':\(modifier)' is not supported for the \(type.rawValue) parameter '\(name)'")
            }
            if modifier == "missing" {
                guard text == "true" || text == "false" else {
                    throw FHIRError.badRequest("\(name) takes true or false")
                }
                return [.missing(text == "true")]
            }
        }
        // Escapes are kept through the splits and removed by the parse of each part, so that
        // `\,` `\$` and `\|` each stay literal however deep the separator they escape.
        let parts = SearchQueryParser.splitKeepingEscapes(text, on: ",")
        guard !parts.isEmpty, !parts.allSatisfy(\.isEmpty) else {
            throw FHIRError.badRequest("The parameter '\(name)' has no value")
        }
        if parts.count > limits.orValues {
            throw SearchLimitExceeded(
                "The parameter '\(name)' has \(parts.count) values (OR'ed)", limit: limits.orValues, option: "or-values"
            )
        }
        return try parts.map { part in
            guard type == .composite else { return try parseValue(part, type: type, modifier: modifier, name: name) }
            let pieces = SearchQueryParser.splitKeepingEscapes(part, on: "$")
            guard pieces.count == components.count, !components.isEmpty else {
                throw FHIRError.badRequest(
                    "The composite parameter '\(name)' takes \(components.count) values joined by '$', not '\(part)'")
            }
            return .composite(
                try zip(pieces, components).map { piece, component in
                    guard !piece.isEmpty else {
                        throw FHIRError.badRequest("Every part of the composite '\(name)' needs a value, not '\(part)'")
                    }
                    return try parseValue(piece, type: component.type, modifier: nil, name: name)
                })
        }
    }

    /// Whether a search compares `text` with the reference's text (`url` of the index rows):
    /// only for absolute URLs; `Type/id` and bare ids are compared by the target's type and id.
    /// Scans bytes: it runs for every reference a write indexes, where Foundation's `contains`
    /// was 1.6% of a Synthea ingest's samples.
    public static func isURLReference(_ text: String) -> Bool {
        var last: (UInt8, UInt8) = (0, 0)
        for byte in text.utf8 {
            if byte == UInt8(ascii: "/"), last == (UInt8(ascii: ":"), UInt8(ascii: "/")) { return true }
            last = (last.1, byte)
        }
        return false
    }

    /// A reference value as searches and `_filter` read it: an absolute URL (its type and id
    /// when it ends in them), `Type/id`, or a bare id; nil when it is none of these.
    static func referenceValue(_ text: String) -> SearchValue? {
        if isURLReference(text) {
            let parsed = ResourceReference(parsing: text)
            return .reference(type: parsed?.type, id: parsed?.id, url: text)
        }
        if let parsed = ResourceReference(parsing: text) {
            return .reference(type: parsed.type, id: parsed.id, url: nil)
        }
        return FHIRResourceType.isValidId(text) ? .reference(type: nil, id: text, url: nil) : nil
    }

    /// One value, still escaped, of a parameter of `type`.
    func parseValue(_ part: String, type: SearchParameterType, modifier: String?, name: String) throws -> SearchValue {
        let plain = SearchQueryParser.unescape(part)
        switch type {
        case .string: return .string(plain)
        case .uri: return .uri(plain)
        case .token:
            if modifier == "text" { return .string(plain) }
            let pieces = SearchQueryParser.splitUnescaped(part, on: "|")
            if pieces.count == 1 { return .token(system: nil, code: pieces[0]) }
            guard pieces.count == 2 else { throw FHIRError.badRequest("Invalid token '\(plain)' for '\(name)'") }
            return .token(system: pieces[0], code: pieces[1].isEmpty ? nil : pieces[1])
        case .reference:
            if modifier == "identifier" {
                let pieces = SearchQueryParser.splitUnescaped(part, on: "|")
                if pieces.count == 1 { return .token(system: nil, code: pieces[0]) }
                guard pieces.count == 2 else {
                    throw FHIRError.badRequest("Invalid identifier '\(plain)' for '\(name)'")
                }
                return .token(system: pieces[0], code: pieces[1].isEmpty ? nil : pieces[1])
            }
            if let modifier, FHIRResourceType.isKnown(modifier) {
                return .reference(type: modifier, id: plain, url: nil)
            }
            guard let value = Self.referenceValue(plain) else {
                throw FHIRError.badRequest("Invalid reference '\(plain)' for '\(name)'")
            }
            return value
        case .date:
            let (prefix, rest) = SearchQueryParser.prefix(of: plain)
            guard let range = FHIRDateRange(parsing: rest) else {
                throw FHIRError.badRequest("Invalid date '\(plain)' for '\(name)'")
            }
            return .date(prefix, range)
        case .number, .quantity:
            let (prefix, rest) = SearchQueryParser.prefix(of: part)
            let pieces = SearchQueryParser.splitUnescaped(rest, on: "|")
            guard let value = Double(pieces[0]), value.isFinite,
                pieces.count == 1 || (type == .quantity && pieces.count == 3)
            else {
                throw FHIRError.badRequest("Invalid \(type.rawValue) '\(plain)' for '\(name)'")
            }
            let (low, high) = SearchQueryParser.precisionRange(pieces[0], value: value)
            let system = pieces.count == 3 && !pieces[1].isEmpty ? pieces[1] : nil
            let code = pieces.count == 3 && !pieces[2].isEmpty ? pieces[2] : nil
            return .number(prefix, value: value, low: low, high: high, system: system, code: code)
        case .composite, .special:
            throw FHIRError.badRequest("The parameter '\(name)' is not supported")
        }
    }
}
