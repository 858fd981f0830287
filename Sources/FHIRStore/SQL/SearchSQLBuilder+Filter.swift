import FHIR

/// `_filter` in SQL: `and`, `or` and `not` become the same words over one subquery a test,
/// each the `IN (SELECT id FROM idx_* ...)` form of an ordinary clause, so the index answers
/// every test and nothing is filtered in Swift.
///
/// What a test means, by the parameter's type (R4 search_filter.html):
/// - string: `eq` equal, `co` contains, `sw` starts with, `ew` ends with, `gt lt ge le` ordered,
///   all on the normalized text (case and accents folded) as string search compares;
/// - token: `eq` as `system|code`, `ss` / `sb` as `:above` / `:below`;
/// - reference: `eq` and `re` as a reference search;
/// - date, number, quantity: the operator is the search prefix (`po`: the ranges overlap);
/// - uri: `eq`, `sw`, `co`, `ew` on the text;
/// - `ne` on string, token, reference, uri and `_id` is `not (eq)`, as `:not` (a resource
///   without the parameter matches); on dates and numbers it is the prefix `ne` (some value
///   outside the range), as in a search;
/// - `pr true|false`: the parameter has a value or not (`:missing`).
extension SearchSQLBuilder {
    func filterCondition(_ filter: SearchFilter, alias: String, resourceType: String?) -> (String, [SQLValue]) {
        switch filter {
        case .and(let terms), .or(let terms):
            var binds: [SQLValue] = []
            var parts: [String] = []
            for term in terms {
                let (sql, termBinds) = filterCondition(term, alias: alias, resourceType: resourceType)
                parts.append("(\(sql))")
                binds += termBinds
            }
            // Parenthesized whole: the caller ANDs it with the query's other clauses.
            return (
                "(" + parts.joined(separator: { if case .and = filter { return " AND " } else { return " OR " } }())
                    + ")", binds
            )
        case .not(let inner):
            let (sql, binds) = filterCondition(inner, alias: alias, resourceType: resourceType)
            return ("NOT (\(sql))", binds)
        case .clause(let clause):
            return condition(for: clause, alias: alias, resourceType: resourceType)
        case .chain(let reference, let targets):
            // As a chained clause: the reference leads to a resource of one of the types that
            // matches the rest of the filter.
            let inner = alias + "f"
            var binds: [SQLValue] = [.text(resourceType ?? ""), .text(reference.code)]
            var alternatives: [String] = []
            for target in targets {
                let (test, testBinds) = filterCondition(target.filter, alias: inner, resourceType: target.type)
                alternatives.append(
                    "(i.target_type = ? AND i.target_id IN (SELECT \(inner).id FROM resources \(inner)"
                        + " WHERE \(inner).type = ? AND \(inner).deleted = 0 AND (\(test))))")
                binds += [.text(target.type), .text(target.type)] + testBinds
            }
            return (
                "\(alias).id IN (SELECT i.id FROM idx_reference i WHERE i.type = ? AND i.param = ? AND (\(alternatives.joined(separator: " OR "))))",
                binds
            )
        case .test(let test):
            return filterTest(test, alias: alias, resourceType: resourceType)
        case .member(let parameter, let codes, let unqualified):
            return memberCondition(
                parameter, codes: codes, unqualified: unqualified, alias: alias, resourceType: resourceType)
        }
    }

    /// The token has a code of a value set: `IN` lists, one a system and one without a system.
    func memberCondition(
        _ parameter: SearchParameterDefinition, codes: [String: [String]], unqualified: [String], alias: String,
        resourceType: String?
    ) -> (String, [SQLValue]) {
        var binds: [SQLValue] = []
        var parts: [String] = []
        func list(_ values: [String]) -> String {
            binds += values.map(SQLValue.text)
            return "(" + values.map { _ in "?" }.joined(separator: ", ") + ")"
        }
        for system in codes.keys.sorted() where !(codes[system]?.isEmpty ?? true) {
            binds.append(.text(system))
            parts.append("(i.system = ? AND i.code IN \(list(codes[system]!)))")
        }
        if !unqualified.isEmpty { parts.append("(i.system IS NULL AND i.code IN \(list(unqualified)))") }
        let test = parts.isEmpty ? "1 = 0" : parts.joined(separator: " OR ")
        let (parameterTest, parameterBinds) = Self.parameterTest(parameter, column: "i.param")
        if let resourceType {
            return (
                "\(alias).id IN (SELECT i.id FROM idx_token i WHERE i.type = ? AND \(parameterTest) AND (\(test)))",
                [.text(resourceType)] + parameterBinds + binds
            )
        }
        return (
            "(\(alias).type, \(alias).id) IN (SELECT i.type, i.id FROM idx_token i WHERE \(parameterTest) AND (\(test)))",
            parameterBinds + binds
        )
    }

    func filterTest(_ test: SearchFilterTest, alias: String, resourceType: String?) -> (String, [SQLValue]) {
        switch test.target {
        case .id:
            guard case .token(_, let code?) = test.value else { return ("1 = 0", []) }
            return ("\(alias).id \(test.op == .ne ? "<>" : "=") ?", [.text(code)])
        case .lastUpdated:
            if case .missing(let missing) = test.value { return (missing ? "1 = 0" : "1 = 1", []) }
            guard case .date(let prefix, let range) = test.value else { return ("1 = 0", []) }
            var binds: [SQLValue] = []
            let low = "\(alias).last_updated", high = "(\(alias).last_updated + 1)"
            if test.op == .po {
                return ("(" + DateIndex.overlap(range, low: low, high: high, binds: &binds) + ")", binds)
            }
            return ("(" + DateIndex.condition(prefix, range, low: low, high: high, binds: &binds) + ")", binds)
        case .indexed(let definition):
            guard let kind = IndexKinds.kind(for: definition.type) else { return ("1 = 0", []) }
            var (column, matches, binds) = Self.indexRows(
                of: definition, in: kind.table, alias: alias, resourceType: resourceType)
            if case .missing(let missing) = test.value {
                return ("\(column) \(missing ? "NOT " : "")IN (\(matches))", binds)
            }
            let row = rowTest(test, type: definition.type, binds: &binds)
            matches += " AND (\(row))"
            let negated = test.op == .ne && [.string, .token, .reference, .uri].contains(definition.type)
            return ("\(column) \(negated ? "NOT " : "")IN (\(matches))", binds)
        case .chain, .has, .filter, .compartment, .patientVisible:
            return ("1 = 0", [])  // never built by the filter parser
        }
    }

    /// The test of one index row `i` (`ne` of the text types is answered as `eq`, negated by the caller).
    func rowTest(_ test: SearchFilterTest, type: SearchParameterType, binds: inout [SQLValue]) -> String {
        switch (test.value, test.op) {
        case (.string(let text), _):
            let normalized = SearchIndexer.normalize(text)
            switch test.op {
            case .co, .sw:
                return valueCondition(test.value, modifier: test.op == .co ? "contains" : nil, binds: &binds) ?? "1 = 0"
            case .ew:
                binds.append(.text("%" + Self.escapeLike(normalized)))
                return "i.normalized LIKE ? ESCAPE '\\'"
            default:
                // Compared with the index row's value, which keeps its first bytes only.
                binds.append(.text(IndexKinds.bounded(normalized)))
                let comparison = [SearchFilterOperator.gt: ">", .lt: "<", .ge: ">=", .le: "<="][test.op] ?? "="
                return "i.normalized \(comparison) ?"
            }
        case (.uri(let text), .co), (.uri(let text), .ew):
            binds.append(.text("%" + Self.escapeLike(text) + (test.op == .co ? "%" : "")))
            return "i.value LIKE ? ESCAPE '\\'"
        case (.uri, .sw):
            return valueCondition(test.value, modifier: "below", binds: &binds) ?? "1 = 0"
        case (.token, .ss), (.token, .sb):
            return valueCondition(test.value, modifier: test.op == .ss ? "above" : "below", binds: &binds) ?? "1 = 0"
        case (.date(_, let range), .po):
            return DateIndex.overlap(range, low: "i.low", high: "i.high", binds: &binds)
        default:
            return valueCondition(test.value, modifier: nil, binds: &binds) ?? "1 = 0"
        }
    }
}
