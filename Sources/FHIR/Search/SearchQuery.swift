import Foundation

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
    /// A composite's value `a$b`: one value per component, in the definition's order.
    indirect case composite([SearchValue])
}

/// What a search clause tests.
public indirect enum SearchTarget: Sendable, Hashable {
    /// `_id`, answered from the resource table.
    case id
    /// `_lastUpdated`, answered from the resource table.
    case lastUpdated
    /// An indexed parameter.
    case indexed(SearchParameterDefinition)
    /// `reference:Type.parameter=...`: the reference points at a resource, of one of the
    /// listed types, that matches the inner clause (parsed against that type).
    case chain(reference: SearchParameterDefinition, targets: [ChainTarget])
    /// `_has:Type:reference:parameter=...`: some resource of `sourceType` whose `reference`
    /// points here matches the inner clause.
    case has(sourceType: String, reference: SearchParameterDefinition, inner: SearchClause)
    /// Membership of the compartment of `owner/id` (`Patient/123/Observation`): the resource
    /// refers to the owner through one of the reference parameters `links` lists for its
    /// type, or is the owner itself. Built by the server from a ``Compartment``, never parsed.
    case compartment(owner: String, id: String, links: [String: [String]])
    /// Visible to a `patient/` token of `Patient/patient`, by the reference index: the patient
    /// itself; a resource of a type `links` lists that refers to the patient through one of
    /// the listed parameters, or of a type it does not list through any reference parameter;
    /// and in both cases none of whose indexed references names another Patient. Built by the
    /// server (an access restriction), never parsed; its SQL binds a fixed number of values
    /// however many resources the patient has.
    case patientVisible(patient: String, links: [String: [String]])
    /// `_filter`: a boolean tree of tests (SearchFilter.swift).
    case filter(SearchFilter)
}

/// One resource type a chain may lead to, with the chained clause as that type reads it.
public struct ChainTarget: Sendable, Hashable {
    public var type: String
    public var clause: SearchClause
}

/// `_include` and `_revinclude`: resources to add to a page beside its matches.
public struct SearchInclude: Sendable, Hashable {
    /// The type whose references are followed (for `_revinclude`, the type that refers).
    public var sourceType: String
    /// The reference parameter, or `nil` for `*` (all of them).
    public var parameter: String?
    /// Only references to this type.
    public var targetType: String?
    /// `_revinclude`: resources that refer to the matches, rather than those they refer to.
    public var reverse: Bool
    /// `:iterate`: apply to included resources too, not only to matches.
    public var iterate: Bool
}

/// `_summary` and `_elements`: which elements of each resource to return.
public enum SearchSummary: Sendable, Hashable {
    case full
    case summary
    case text
    case data
    case elements([String])
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
    public enum Key: Sendable, Hashable {
        case id, lastUpdated
        /// Sorted by the smallest (ascending) or largest (descending) indexed value.
        case parameter(SearchParameterDefinition)
    }
    public var key: Key
    public var descending: Bool
}

/// What a search does for `Bundle.total`. A count of every match costs as much as the
/// matches, however small the page.
public enum TotalMode: String, Sendable {
    /// No total.
    case none
    /// Exact when the answer ends on this page or has at most ``SearchQuery/estimateBound``
    /// matches (counted up to the bound); past the bound, PostgreSQL gives its planner's
    /// estimate and SQLite gives none. The default.
    case estimate
    /// Every match counted.
    case accurate
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
    /// `_total`: how hard to work for `Bundle.total` (see ``TotalMode``).
    public var total: TotalMode = .estimate
    /// `_total=none`: the total is not wanted.
    public var omitTotal: Bool {
        get { total == .none }
        set { total = newValue ? .none : .estimate }
    }
    public var includes: [SearchInclude] = []
    public var summary: SearchSummary = .full
    /// The query parameters that took effect, in order, for the bundle's links.
    public var appliedParameters: [(name: String, value: String)] = []
    /// Parameters that were ignored under lenient handling, with the reason.
    public var ignored: [String] = []

    /// Where the page starts, from the `next` link of the page before (without `_sort`):
    /// then ``offset`` is not used.
    public var cursor: SearchCursor?

    public var offset: Int { (page - 1) * count }

    /// How many matches `_total=estimate` counts before it stops counting.
    public var estimateBound = SearchQuery.defaultEstimateBound
    public static let defaultEstimateBound = 100
}

extension SearchClause {
    /// `_id` is one of `ids`, built by the server (an access restriction, say) rather than
    /// parsed from a client, so that no search limit applies: the SQL is one flat `IN` list.
    public static func id(in ids: [String]) -> SearchClause {
        SearchClause(name: "_id", target: .id, modifier: nil, values: ids.map { .token(system: nil, code: $0) })
    }

    /// In the compartment of `owner/id`, whose member types link to the owner through `links`
    /// (``Compartment/members``): built by the server for `GET [owner]/[id]/[type]`.
    public static func compartment(owner: String, id: String, links: [String: [String]]) -> SearchClause {
        SearchClause(
            name: "_compartment", target: .compartment(owner: owner, id: id, links: links), modifier: nil, values: [])
    }

    /// Visible to a `patient/` token of `Patient/patient` (see ``SearchTarget/patientVisible(patient:links:)``).
    public static func patientVisible(_ patient: String, links: [String: [String]]) -> SearchClause {
        SearchClause(
            name: "_patient-visible", target: .patientVisible(patient: patient, links: links), modifier: nil, values: []
        )
    }
}
