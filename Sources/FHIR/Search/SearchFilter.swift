/// A parsed `_filter` (http://hl7.org/fhir/R4/search_filter.html): a boolean tree over the
/// same search parameters a search has, answered from the search index like any clause (a
/// ``SearchTarget/filter(_:)`` clause, AND-ed with the query's others).
public indirect enum SearchFilter: Sendable, Hashable {
    case and([SearchFilter])
    case or([SearchFilter])
    case not(SearchFilter)
    /// `parameter op value` on the resource itself.
    case test(SearchFilterTest)
    /// `reference.rest`: the reference points at a resource, of one of the types, that
    /// matches the rest (a chain, as `subject.name co "pet"`).
    case chain(reference: SearchParameterDefinition, targets: [SearchFilterChainTarget])
    /// A clause built by the server, not parsed from the filter (an access restriction that
    /// replaces a chain's inner filter by the ids it may match).
    case clause(SearchClause)
    /// `token in url`: the parameter has a code of the value set: one of `codes` in its
    /// system, or one of `unqualified` without a system (a `code` element's).
    case member(parameter: SearchParameterDefinition, codes: [String: [String]], unqualified: [String])
}

/// One resource type a `_filter` chain may lead to, with the rest of the filter as that type reads it.
public struct SearchFilterChainTarget: Sendable, Hashable {
    public var type: String
    public var filter: SearchFilter

    public init(type: String, filter: SearchFilter) {
        self.type = type
        self.filter = filter
    }
}

/// The comparison operators of `_filter`. `in` and `ni` take the value sets R4 core's required
/// bindings expand to (others are a 400); `[filter]` paths are refused (400): they need
/// element-level matching the index does not hold.
public enum SearchFilterOperator: String, Sendable, CaseIterable {
    case eq, ne, co, sw, ew, gt, lt, ge, le, ap, sa, eb, pr, po, ss, sb, `in`, ni, re

    /// The search prefix the operator means for number, quantity and date parameters.
    var prefix: SearchPrefix? { SearchPrefix(rawValue: rawValue) }

    /// The operators each kind of parameter answers (the rest are a 400 naming the parameter).
    static func allowed(for type: SearchParameterType) -> Set<SearchFilterOperator> {
        switch type {
        case .string: return [.eq, .ne, .co, .sw, .ew, .gt, .lt, .ge, .le, .pr]
        case .token: return [.eq, .ne, .ss, .sb, .in, .ni, .pr]
        case .reference: return [.eq, .ne, .re, .pr]
        case .date: return [.eq, .ne, .gt, .lt, .ge, .le, .ap, .sa, .eb, .po, .pr]
        case .number, .quantity: return [.eq, .ne, .gt, .lt, .ge, .le, .ap, .sa, .eb, .pr]
        case .uri: return [.eq, .ne, .co, .sw, .ew, .pr]
        case .composite, .special: return []
        }
    }
}

/// `parameter op value`: `target` is `_id`, `_lastUpdated` or an indexed parameter; `value`
/// is the compared value read by the parameter's type (a `.missing(false)` for `pr true`).
public struct SearchFilterTest: Sendable, Hashable {
    public var name: String
    public var target: SearchTarget
    public var op: SearchFilterOperator
    public var value: SearchValue

    public init(name: String, target: SearchTarget, op: SearchFilterOperator, value: SearchValue) {
        self.name = name
        self.target = target
        self.op = op
        self.value = value
    }
}

/// How much one `_filter` may be: its text, its nesting (parentheses, `not`, chains) and its
/// tests. Each test is one subquery of the SQL; the query's own limits apply on top (chain
/// links and targets, values). Over a limit: 400.
public struct SearchFilterLimits: Sendable, Hashable {
    /// Characters of the `_filter` value.
    public var length = 4096
    /// Parentheses and `not` inside one another (a run of `and`/`or` is one level).
    public var depth = 16
    /// Tests (`parameter op value`) in all.
    public var tests = 64

    public init() {}

    public static let standard = SearchFilterLimits()
}

extension SearchClause {
    /// `_filter=...` as one clause of a query.
    public static func filter(_ filter: SearchFilter) -> SearchClause {
        SearchClause(name: "_filter", target: .filter(filter), modifier: nil, values: [])
    }
}
