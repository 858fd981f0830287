/// The comparison prefixes of number, date and quantity parameters.
public enum SearchPrefix: String, Sendable, CaseIterable {
    case eq, ne, gt, lt, ge, le, sa, eb, ap
}

/// One value of a search parameter, parsed according to the parameter's type.
public enum SearchValue: Sendable, Hashable {
    case string(String)
    /// `code` (any system), `system|code`, `|code` (no system: `system` is ""), `system|` (any code).
    case token(system: String?, code: String?)
    /// `Type/id`, a bare `id` (type nil), or an absolute URL (kept in `url`).
    case reference(type: String?, id: String?, url: String?)
    case date(SearchPrefix, FHIRDateRange)
    /// Numbers and quantities: the value, and the range its significant digits cover.
    case number(SearchPrefix, value: Double, low: Double, high: Double, system: String?, code: String?)
    case uri(String)
    /// `:missing=true|false`.
    case missing(Bool)
}

/// What a search clause tests.
public enum SearchTarget: Sendable, Hashable {
    /// `_id`, answered from the resource table.
    case id
    /// `_lastUpdated`, answered from the resource table.
    case lastUpdated
    /// An indexed parameter.
    case indexed(SearchParameterDefinition)
}

/// One `name[:modifier]=v1,v2` of a query: the values are ORed; clauses are ANDed.
public struct SearchClause: Sendable, Hashable {
    public var name: String
    public var target: SearchTarget
    public var modifier: String?
    public var values: [SearchValue]
}

/// A sort key from `_sort`.
public struct SearchSort: Sendable, Hashable {
    public enum Key: String, Sendable { case id = "_id", lastUpdated = "_lastUpdated" }
    public var key: Key
    public var descending: Bool
}

/// A parsed search: what to match and which page to return.
public struct SearchQuery: Sendable {
    public var resourceType: String?
    /// Restriction to these types on system-level search (`_type`).
    public var types: [String] = []
    public var clauses: [SearchClause] = []
    public var count: Int
    /// The page, from 1.
    public var page: Int = 1
    public var sort: [SearchSort] = []
    /// `_summary=count`: only the total is wanted.
    public var countOnly = false
    /// The query parameters that took effect, in order, for the bundle's links.
    public var appliedParameters: [(name: String, value: String)] = []
    /// Parameters that were ignored under lenient handling, with the reason.
    public var ignored: [String] = []

    public var offset: Int { (page - 1) * count }
}

/// Turns URL query parameters into a ``SearchQuery``, following the R4 search rules.
public struct SearchQueryParser: Sendable {
    public var registry: SearchParameterRegistry
    public var defaultCount: Int
    public var maximumCount: Int

    public init(registry: SearchParameterRegistry = .r4, defaultCount: Int = 10, maximumCount: Int = 1000) {
        self.registry = registry
        self.defaultCount = defaultCount
        self.maximumCount = maximumCount
    }

    /// Result parameters this server recognises but does not apply yet.
    static let unsupportedResultParameters: Set<String> = [
        "_include", "_revinclude", "_elements", "_contained", "_containedType", "_has", "_list", "_query",
        "_filter", "_text", "_content",
    ]
    /// Parameters about the response format, handled by the HTTP layer.
    static let formatParameters: Set<String> = ["_format", "_pretty", "_totalMethod"]

    /// Parses `parameters` (decoded, in URL order). Unknown parameters throw under `strict`,
    /// and are listed in ``SearchQuery/ignored`` otherwise.
    public func parse(
        resourceType: String?, parameters: [(name: String, value: String)], strict: Bool
    ) throws -> SearchQuery {
        var query = SearchQuery(resourceType: resourceType, count: defaultCount)
        func ignore(_ message: String) throws {
            if strict { throw FHIRError.badRequest(message) }
            query.ignored.append(message)
        }
        for (rawName, value) in parameters {
            let name: String
            let modifier: String?
            if let colon = rawName.firstIndex(of: ":") {
                name = String(rawName[..<colon])
                modifier = String(rawName[rawName.index(after: colon)...])
            } else {
                name = rawName
                modifier = nil
            }
            switch name {
            case "_count":
                guard let count = Int(value), count >= 0 else { throw FHIRError.badRequest("_count must be a non-negative integer, not '\(value)'") }
                query.count = min(count, maximumCount)
                continue
            case "_page":
                guard let page = Int(value), page >= 1 else { throw FHIRError.badRequest("_page must be a positive integer, not '\(value)'") }
                query.page = page
                continue
            case "_sort":
                for key in value.split(separator: ",") {
                    let descending = key.hasPrefix("-")
                    let keyName = descending ? String(key.dropFirst()) : String(key)
                    guard let sortKey = SearchSort.Key(rawValue: keyName) else {
                        try ignore("Sorting by '\(keyName)' is not supported; use _id or _lastUpdated")
                        continue
                    }
                    query.sort.append(SearchSort(key: sortKey, descending: descending))
                }
                query.appliedParameters.append((rawName, value))
                continue
            case "_total":
                guard ["none", "estimate", "accurate"].contains(value) else { throw FHIRError.badRequest("_total must be none, estimate or accurate") }
                continue
            case "_summary":
                if value == "count" {
                    query.countOnly = true
                    query.appliedParameters.append((rawName, value))
                } else if value != "false" {
                    try ignore("_summary=\(value) is not supported")
                }
                continue
            case "_type" where resourceType == nil:
                for type in value.split(separator: ",").map(String.init) {
                    guard FHIRResourceType.isKnown(type) else { throw FHIRError.badRequest("Unknown resource type '\(type)' in _type") }
                    query.types.append(type)
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
            let target: SearchTarget
            let type: SearchParameterType
            if name == "_id" {
                target = .id
                type = .token
            } else if name == "_lastUpdated" {
                target = .lastUpdated
                type = .date
            } else if let definition = resourceType.flatMap({ registry.parameter(name, of: $0) })
                ?? registry.common[name]
            {
                guard resourceType != nil || registry.common[name] != nil else {
                    try ignore("Unknown search parameter '\(name)'")
                    continue
                }
                target = .indexed(definition)
                type = definition.type
                if type == .composite || type == .special {
                    try ignore("The \(type.rawValue) parameter '\(name)' is not supported")
                    continue
                }
            } else {
                try ignore("Unknown search parameter '\(name)' for \(resourceType ?? "system-level search")")
                continue
            }
            let values = try parseValues(value, type: type, modifier: modifier, name: rawName)
            query.clauses.append(SearchClause(name: name, target: target, modifier: modifier, values: values))
            query.appliedParameters.append((rawName, value))
        }
        return query
    }

    static let modifiers: [SearchParameterType: Set<String>] = [
        .string: ["exact", "contains", "missing"],
        .token: ["missing", "not"],
        .reference: ["missing"],
        .date: ["missing"],
        .uri: ["missing", "below", "above"],
        .number: ["missing"],
        .quantity: ["missing"],
    ]

    func parseValues(_ text: String, type: SearchParameterType, modifier: String?, name: String) throws -> [SearchValue] {
        if let modifier {
            let allowedForType = SearchQueryParser.modifiers[type] ?? []
            let isTypeModifier = type == .reference && FHIRResourceType.isKnown(modifier)
            guard allowedForType.contains(modifier) || isTypeModifier else {
                throw FHIRError.badRequest("The modifier ':\(modifier)' is not supported for the \(type.rawValue) parameter '\(name)'")
            }
            if modifier == "missing" {
                guard text == "true" || text == "false" else { throw FHIRError.badRequest("\(name) takes true or false") }
                return [.missing(text == "true")]
            }
        }
        let parts = SearchQueryParser.splitUnescaped(text, on: ",")
        guard !parts.isEmpty, !parts.allSatisfy(\.isEmpty) else {
            throw FHIRError.badRequest("The parameter '\(name)' has no value")
        }
        return try parts.map { part in
            switch type {
            case .string: return .string(part)
            case .uri: return .uri(part)
            case .token:
                let pieces = SearchQueryParser.splitUnescaped(part, on: "|")
                if pieces.count == 1 { return .token(system: nil, code: pieces[0]) }
                guard pieces.count == 2 else { throw FHIRError.badRequest("Invalid token '\(part)' for '\(name)'") }
                return .token(system: pieces[0], code: pieces[1].isEmpty ? nil : pieces[1])
            case .reference:
                if let modifier, FHIRResourceType.isKnown(modifier) {
                    return .reference(type: modifier, id: part, url: nil)
                }
                if part.contains("://") {
                    let parsed = ResourceReference(parsing: part)
                    return .reference(type: parsed?.type, id: parsed?.id, url: part)
                }
                if let parsed = ResourceReference(parsing: part) {
                    return .reference(type: parsed.type, id: parsed.id, url: nil)
                }
                guard FHIRResourceType.isValidId(part) else {
                    throw FHIRError.badRequest("Invalid reference '\(part)' for '\(name)'")
                }
                return .reference(type: nil, id: part, url: nil)
            case .date:
                let (prefix, rest) = SearchQueryParser.prefix(of: part)
                guard let range = FHIRDateRange(parsing: rest) else {
                    throw FHIRError.badRequest("Invalid date '\(part)' for '\(name)'")
                }
                return .date(prefix, range)
            case .number, .quantity:
                let (prefix, rest) = SearchQueryParser.prefix(of: part)
                let pieces = SearchQueryParser.splitUnescaped(rest, on: "|")
                guard let value = Double(pieces[0]), pieces.count == 1 || (type == .quantity && pieces.count == 3) else {
                    throw FHIRError.badRequest("Invalid \(type.rawValue) '\(part)' for '\(name)'")
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

    static func prefix(of text: String) -> (SearchPrefix, String) {
        if text.count > 2, let prefix = SearchPrefix(rawValue: String(text.prefix(2))),
            let third = text.dropFirst(2).first, third.isNumber || third == "-"
        {
            return (prefix, String(text.dropFirst(2)))
        }
        return (.eq, text)
    }

    /// The implicit range of a number: `100` means [99.5, 100.5), `1.50` means [1.495, 1.505).
    static func precisionRange(_ text: String, value: Double) -> (Double, Double) {
        let mantissa = text.split(whereSeparator: { $0 == "e" || $0 == "E" }).first ?? Substring(text)
        let decimals = mantissa.split(separator: ".").dropFirst().first?.count ?? 0
        var half = 0.5
        for _ in 0..<decimals { half /= 10 }
        return (value - half, value + half)
    }

    /// Splits at `separator` where it is not escaped by a backslash, and unescapes `\,` `\|` `\$` `\\`.
    static func splitUnescaped(_ text: String, on separator: Character) -> [String] {
        var parts: [String] = []
        var current = ""
        var escaping = false
        for character in text {
            if escaping {
                current.append(character)
                escaping = false
            } else if character == "\\" {
                escaping = true
            } else if character == separator {
                parts.append(current)
                current = ""
            } else {
                current.append(character)
            }
        }
        if escaping { current.append("\\") }
        parts.append(current)
        return parts
    }
}
