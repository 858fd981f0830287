/// How much one search may ask for. Every chain link, `_has` level, OR value and AND'ed
/// parameter becomes a subquery or a term of the SQL; without bounds a short URL can ask the
/// database for more than it can plan or run (or more than SQLite's expression depth and
/// variable limits). A query over a limit is refused with 400 before any SQL runs.
///
/// The defaults are far above what real clients send (the suites and the Inferno-style
/// searches use at most 2 chain links, 2 nested `_has`, a handful of OR values and 2 sort keys).
public struct SearchLimits: Sendable, Hashable {
    /// Links of one chain (`subject.organization.name` has 2).
    public var chainLinks: Int
    /// Resource types all the chains of a query expand to: a link without a `:Type` leads to
    /// every type its reference may point at, so the expansion multiplies per link.
    public var chainTargets: Int
    /// `_has` inside `_has` (one `_has` is nesting 1).
    public var hasNesting: Int
    /// Comma-separated (OR'ed) values of one parameter. As many as ``totalValues`` by default:
    /// the SQL ORs them as a balanced tree, which SQLite's expression depth limit takes at
    /// any length (a flat list failed at about 500).
    public var orValues: Int
    /// Criteria (AND'ed parameters, each chain and `_has` counting once) of one query.
    public var parameters: Int
    /// Values of all criteria of one query together (the SQL gets a few bound variables for each).
    public var totalValues: Int
    /// `_include` and `_revinclude` parameters together.
    public var includes: Int
    /// Keys of `_sort`.
    public var sortKeys: Int

    public init(
        chainLinks: Int = 4, chainTargets: Int = 64, hasNesting: Int = 3, orValues: Int = 1000, parameters: Int = 100,
        totalValues: Int = 1000, includes: Int = 20, sortKeys: Int = 8
    ) {
        self.chainLinks = chainLinks
        self.chainTargets = chainTargets
        self.hasNesting = hasNesting
        self.orValues = orValues
        self.parameters = parameters
        self.totalValues = totalValues
        self.includes = includes
        self.sortKeys = sortKeys
    }

    /// The defaults.
    public static let standard = SearchLimits()

    /// The most `or-values` and `total-values` may be set to (``apply(_:)``): the default,
    /// which both stores run well within the statement time limit.
    public static let maximumValues = 1000

    /// Each limit by the name `caduceus serve --search-limit NAME=VALUE` gives it.
    public static let names: [(name: String, limit: WritableKeyPath<SearchLimits, Int> & Sendable)] = [
        ("chain-links", \.chainLinks), ("chain-targets", \.chainTargets), ("has-nesting", \.hasNesting),
        ("or-values", \.orValues),
        ("parameters", \.parameters), ("total-values", \.totalValues), ("includes", \.includes),
        ("sort-keys", \.sortKeys),
    ]

    /// Sets the limits named by `settings`, each `NAME=VALUE` with a VALUE of at least 1.
    public mutating func apply(_ settings: [String]) throws {
        for setting in settings {
            let parts = setting.split(separator: "=", maxSplits: 1).map(String.init)
            guard parts.count == 2, let entry = Self.names.first(where: { $0.name == parts[0] }) else {
                throw SearchLimitSettingError(
                    description:
                        "'\(setting)' is not NAME=VALUE with a NAME among \(Self.names.map(\.name).joined(separator: ", "))"
                )
            }
            guard let value = Int(parts[1]), value >= 1 else {
                throw SearchLimitSettingError(
                    description: "The search limit \(parts[0]) must be a whole number from 1, not '\(parts[1])'")
            }
            if ["or-values", "total-values"].contains(parts[0]), value > Self.maximumValues {
                throw SearchLimitSettingError(
                    description:
                        "The search limit \(parts[0]) can be at most \(Self.maximumValues): SQLite plans a list of 4,000 OR'ed values"
                        + " for longer than the statement time limit, and PostgreSQL takes at most 65,535 bound variables a statement"
                )
            }
            self[keyPath: entry.limit] = value
        }
    }

    /// `NAME (default), ...` for the option's help.
    public var summary: String {
        Self.names.map { "\($0.name) (\(self[keyPath: $0.limit]))" }.joined(separator: ", ")
    }
}

/// A `NAME=VALUE` that names no limit or gives no valid value.
public struct SearchLimitSettingError: Error, CustomStringConvertible {
    public var description: String
}

/// A search that asks for more than a ``SearchLimits`` allows: a 400 naming the limit.
struct SearchLimitExceeded: Error {
    var message: String

    init(_ what: String, limit: Int, option: String) {
        message = "\(what); this server allows at most \(limit) (caduceus serve --search-limit \(option)=N)"
    }

    var fhirError: FHIRError { FHIRError(status: 400, code: "too-costly", message) }
}

/// What one query has used of its ``SearchLimits`` so far.
struct SearchBudget {
    let limits: SearchLimits
    private(set) var chainTargets = 0
    private(set) var values = 0

    init(limits: SearchLimits) { self.limits = limits }

    func spendParameter(_ total: Int) throws {
        guard total <= limits.parameters else {
            throw SearchLimitExceeded(
                "The search has more than \(limits.parameters) criteria", limit: limits.parameters, option: "parameters"
            )
        }
    }

    func spendInclude(_ total: Int) throws {
        guard total <= limits.includes else {
            throw SearchLimitExceeded(
                "The search has more than \(limits.includes) _include and _revinclude parameters",
                limit: limits.includes, option: "includes")
        }
    }

    func spendSortKeys(_ total: Int) throws {
        guard total <= limits.sortKeys else {
            throw SearchLimitExceeded("_sort has \(total) keys", limit: limits.sortKeys, option: "sort-keys")
        }
    }

    mutating func spendChainTarget(chain: String) throws {
        chainTargets += 1
        guard chainTargets <= limits.chainTargets else {
            throw SearchLimitExceeded(
                "The chains of this search lead to more than \(limits.chainTargets) resource types (name the type of a link, as in subject:Patient.name, to narrow '\(Self.shortened(chain))')",
                limit: limits.chainTargets, option: "chain-targets")
        }
    }

    mutating func spendValues(_ count: Int) throws {
        values += count
        guard values <= limits.totalValues else {
            throw SearchLimitExceeded(
                "The search has more than \(limits.totalValues) values in all (chains count their values once per type they lead to)",
                limit: limits.totalValues, option: "total-values")
        }
    }

    /// Forgets the values of a chain alternative that did not parse (it adds nothing to the SQL).
    mutating func restoreValues(from earlier: SearchBudget) {
        values = earlier.values
    }

    /// A name for a message: hostile names can be tens of kilobytes.
    static func shortened(_ text: String) -> String {
        text.count <= 80 ? text : String(text.prefix(77)) + "..."
    }
}

/// How deep a clause is in chains and `_has`.
struct SearchNesting {
    var links = 0
    var has = 0

    func addingLink(within limits: SearchLimits, chain: String) throws -> SearchNesting {
        guard links < limits.chainLinks else {
            throw SearchLimitExceeded(
                "The chain '\(SearchBudget.shortened(chain))' has more than \(limits.chainLinks) links",
                limit: limits.chainLinks,
                option: "chain-links")
        }
        return SearchNesting(links: links + 1, has: has)
    }

    func addingHas(within limits: SearchLimits) throws -> SearchNesting {
        guard has < limits.hasNesting else {
            throw SearchLimitExceeded(
                "_has is nested more than \(limits.hasNesting) deep", limit: limits.hasNesting, option: "has-nesting")
        }
        return SearchNesting(links: links, has: has + 1)
    }
}
