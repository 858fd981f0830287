import Foundation
import FHIR

/// Translates a ``SearchQuery`` into SQL over the index tables. Each clause becomes one
/// `IN (subquery)` test whose OR-ed conditions are the clause's values; clauses are AND-ed;
/// chains and `_has` nest the same tests. Nothing is filtered in Swift.
struct SearchSQLBuilder {
    let dialect: SQLDialect

    struct Statements {
        var count: String
        var select: String
        var binds: [SQLValue]
        var selectBinds: [SQLValue]
        /// One row per match, for a bounded count or the planner's estimate; takes `matchBinds`.
        var matches: String
        var matchBinds: [SQLValue]

        /// `select` with one more column after the page's, `column`, whose binds go first.
        func select(adding column: String) -> String {
            SearchSQLBuilder.pageColumns + ", " + column + select.dropFirst(SearchSQLBuilder.pageColumns.count)
        }
    }

    /// The columns of every page statement, as ``SQLFHIRStore/stored(type:id:row:)`` reads them.
    static let pageColumns = "SELECT p.version, p.last_updated, p.deleted, h.body, p.type, p.id"

    /// Upper bound for a prefix range: no valid UTF-8 text sorts above this code point.
    static let prefixEnd = "\u{10FFFF}"

    func build(_ query: SearchQuery) -> Statements {
        var conditions = ["r.deleted = 0"]
        var binds: [SQLValue] = []
        if let type = query.resourceType {
            conditions.append("r.type = ?")
            binds.append(.text(type))
        } else if !query.types.isEmpty {
            conditions.append("r.type IN (" + query.types.map { _ in "?" }.joined(separator: ", ") + ")")
            binds.append(contentsOf: query.types.map(SQLValue.text))
        }
        // One clause drives (its matches are read from the value index); the others probe each
        // candidate through the (type, id) index. Left to itself, SQLite would build the full
        // match list of every clause, which costs as much as the data when a clause is broad
        // (`date=ge2015`). PostgreSQL plans both forms as semi-joins.
        let driver = query.resourceType == nil ? nil : Self.driver(of: query.clauses)
        // Without the driver's test: what a walk of the driver's index rows adds to them.
        var others = conditions
        var otherBinds = binds
        for (index, clause) in query.clauses.enumerated() {
            let probe = query.resourceType != nil && index != driver
            let (sql, clauseBinds) = condition(for: clause, alias: "r", resourceType: query.resourceType, probe: probe)
            conditions.append(sql)
            binds.append(contentsOf: clauseBinds)
            if index != driver {
                others.append(sql)
                otherBinds.append(contentsOf: clauseBinds)
            }
        }
        let whereClause = conditions.joined(separator: " AND ")
        if let driver, let walk = driverWalk(query, driver: query.clauses[driver], others: others, otherBinds: otherBinds) {
            return Statements(
                count: "SELECT COUNT(*) FROM resources r WHERE \(whereClause)", select: walk.select, binds: binds,
                selectBinds: walk.binds, matches: walk.matches, matchBinds: walk.matchBinds)
        }
        // SQLite's planner prefers walking an index in the ORDER BY order and testing each row,
        // which costs a scan of the whole type when the match set is small. With index clauses,
        // sorting by expressions makes it start from the matches instead.
        let drivenByMatches = dialect == .sqlite && query.clauses.contains { clause in
            if case .id = clause.target { return false }
            if case .lastUpdated = clause.target { return false }
            return true
        }
        func key(_ column: String, numeric: Bool) -> String {
            drivenByMatches ? (numeric ? "r.\(column) + 0" : "r.\(column) || ''") : "r.\(column)"
        }
        // The page is chosen on the resource rows alone and only its rows are joined to their
        // bodies: joined before the LIMIT, every match's body would be read (and sorted).
        // Sort keys of parameters are computed once, as columns of the page, and the page is
        // put back in order by them.
        var keys: [String] = []
        var order: [String] = []
        var pageOrder: [String] = []
        var keyBinds: [SQLValue] = []
        for sort in query.sort {
            let direction = sort.descending ? "DESC" : "ASC"
            switch sort.key {
            case .id:
                order.append("\(key("id", numeric: false)) \(direction)")
                pageOrder.append("p.id \(direction)")
            case .lastUpdated:
                order.append("\(key("last_updated", numeric: true)) \(direction)")
                pageOrder.append("p.last_updated \(direction)")
            case .parameter(let definition):
                guard let (table, column) = Self.sortColumn(definition.type, descending: sort.descending) else { continue }
                let aggregate = sort.descending ? "MAX" : "MIN"
                let name = "s\(keys.count)"
                keys.append(
                    "(SELECT \(aggregate)(x.\(column)) FROM \(sortSource(table)) WHERE x.type = r.type AND x.id = r.id AND x.param = ?) AS \(name)")
                keyBinds.append(.text(definition.code))
                order.append("\(name) \(direction) NULLS LAST")
                pageOrder.append("p.\(name) \(direction) NULLS LAST")
            }
        }
        order.append(contentsOf: [key("last_updated", numeric: true) + " ASC", key("type", numeric: false) + " ASC", key("id", numeric: false) + " ASC"])
        pageOrder.append(contentsOf: ["p.last_updated ASC", "p.type ASC", "p.id ASC"])
        let page = "SELECT r.type, r.id, r.version, r.last_updated, r.deleted" + keys.map { ", " + $0 }.joined()
            + " FROM resources r WHERE \(whereClause) ORDER BY \(order.joined(separator: ", ")) LIMIT ? OFFSET ?"
        return Statements(
            count: "SELECT COUNT(*) FROM resources r WHERE \(whereClause)",
            select: Self.pageColumns + " FROM (\(page)) p"
                + " JOIN resource_history h ON h.type = p.type AND h.id = p.id AND h.version = p.version"
                + " ORDER BY \(pageOrder.joined(separator: ", "))",
            binds: binds,
            selectBinds: keyBinds + binds + [.integer(Int64(query.count)), .integer(Int64(query.offset))],
            matches: "SELECT 1 FROM resources r WHERE \(whereClause)", matchBinds: binds)
    }

    /// At most `bound` matches counted: `_total=estimate` stops there.
    static func boundedCount(_ statements: Statements, bound: Int) -> (String, [SQLValue]) {
        ("SELECT COUNT(*) FROM (\(statements.matches) LIMIT ?) c", statements.matchBinds + [.integer(Int64(bound))])
    }

    /// The index table a sort key reads, aliased `x`. The key is looked up once per resource
    /// row, so it must use the (type, id) index: SQLite otherwise picks the value index
    /// (type, param), which holds a row for every resource of the type, and one `_sort` costs
    /// n x n (5 s on 3,000 Patients). PostgreSQL already plans it on the (type, id) index.
    func sortSource(_ table: String) -> String {
        dialect == .sqlite ? "\(table) x INDEXED BY \(table)_resource" : "\(table) x"
    }

    static func table(for type: SearchParameterType) -> String? {
        switch type {
        case .string: return "idx_string"
        case .token: return "idx_token"
        case .reference: return "idx_reference"
        case .date: return "idx_date"
        case .uri: return "idx_uri"
        case .number, .quantity: return "idx_number"
        case .composite: return "idx_composite"
        case .special: return nil
        }
    }

    /// The index column a parameter sorts by: the earliest start of dates ascending, the
    /// latest end descending.
    static func sortColumn(_ type: SearchParameterType, descending: Bool) -> (table: String, column: String)? {
        guard let table = table(for: type) else { return nil }
        switch type {
        case .string: return (table, "normalized")
        case .token: return (table, "code")
        case .reference: return (table, "target_id")
        case .date: return (table, descending ? "high" : "low")
        case .uri, .number, .quantity: return (table, "value")
        case .composite, .special: return nil
        }
    }

    /// The SQL test of one clause against the resource row `alias` (of `resourceType`, or of
    /// any type at system level).
    /// The clause most likely to match fewest resources, by the kind of test, or `nil` when
    /// `_id` narrows the search already (the primary key then drives).
    static func driver(of clauses: [SearchClause]) -> Int? {
        func rank(_ clause: SearchClause) -> Int? {
            if clause.modifier == "not" || clause.values.contains(where: { if case .missing = $0 { return true } else { return false } }) {
                return 6
            }
            switch clause.target {
            case .id: return nil
            case .lastUpdated: return 5
            case .chain, .has: return 3
            case .indexed(let definition):
                switch definition.type {
                case .reference: return 1
                case .token, .uri, .composite: return clause.modifier == "text" || clause.modifier == "below" ? 3 : 2
                case .string: return clause.modifier == "exact" ? 2 : 3
                case .date, .number, .quantity, .special: return 4
                }
            }
        }
        if clauses.contains(where: { if case .id = $0.target { return $0.modifier != "not" } else { return false } }) { return nil }
        return clauses.indices.compactMap { index in rank(clauses[index]).map { (index, $0) } }.min { $0.1 < $1.1 }?.0
    }

    /// `_id`: its token values are ids of any type; its `reference` values, which only the
    /// server builds (an access restriction across types), are ids of one type each, or with
    /// no id every resource of the type.
    func idCondition(_ values: [SearchValue], alias: String) -> (String, [SQLValue]) {
        var binds: [SQLValue] = []
        var parts: [String] = []
        let ids = values.compactMap { value -> String? in
            if case .token(_, let code?) = value { return code } else { return nil }
        }
        if !ids.isEmpty {
            parts.append("\(alias).id IN (\(Array(repeating: "?", count: ids.count).joined(separator: ", ")))")
            binds += ids.map(SQLValue.text)
        }
        var typed: [String: [String]] = [:]
        var wholeTypes: [String] = []
        for value in values {
            guard case .reference(let type?, let id, _) = value else { continue }
            if let id { typed[type, default: []].append(id) } else { wholeTypes.append(type) }
        }
        if !wholeTypes.isEmpty {
            parts.append("\(alias).type IN (\(Array(repeating: "?", count: wholeTypes.count).joined(separator: ", ")))")
            binds += wholeTypes.map(SQLValue.text)
        }
        for type in typed.keys.sorted() {
            let typeIds = typed[type]!
            parts.append("(\(alias).type = ? AND \(alias).id IN (\(Array(repeating: "?", count: typeIds.count).joined(separator: ", "))))")
            binds.append(.text(type))
            binds += typeIds.map(SQLValue.text)
        }
        return (parts.isEmpty ? "1 = 0" : "(" + parts.joined(separator: " OR ") + ")", binds)
    }

    func condition(for clause: SearchClause, alias: String, resourceType: String?, probe: Bool = false) -> (String, [SQLValue]) {
        switch clause.target {
        case .id:
            let (test, binds) = idCondition(clause.values, alias: alias)
            return (clause.modifier == "not" ? "NOT (\(test))" : test, binds)
        case .lastUpdated:
            var binds: [SQLValue] = []
            let parts = clause.values.compactMap { value -> String? in
                guard case .date(let prefix, let range) = value else { return nil }
                return dateCondition(prefix, range, low: "\(alias).last_updated", high: "(\(alias).last_updated + 1)", binds: &binds)
            }
            return ("(" + (parts.isEmpty ? "1 = 0" : parts.joined(separator: " OR ")) + ")", binds)
        case .indexed(let definition):
            return indexedCondition(clause, definition: definition, alias: alias, resourceType: resourceType, probe: probe)
        case .chain(let reference, let targets):
            // The reference leads to a resource of one of the types that matches the chained clause.
            let inner = alias + "x"
            var binds: [SQLValue] = [.text(resourceType ?? ""), .text(reference.code)]
            var alternatives: [String] = []
            for target in targets {
                let (test, testBinds) = condition(for: target.clause, alias: inner, resourceType: target.type)
                alternatives.append(
                    "(i.target_type = ? AND i.target_id IN (SELECT \(inner).id FROM resources \(inner)"
                        + " WHERE \(inner).type = ? AND \(inner).deleted = 0 AND \(test)))")
                binds.append(contentsOf: [.text(target.type), .text(target.type)] + testBinds)
            }
            return (
                "\(alias).id IN (SELECT i.id FROM idx_reference i WHERE i.type = ? AND i.param = ? AND (\(alternatives.joined(separator: " OR "))))",
                binds)
        case .has(let sourceType, let reference, let innerClause):
            // Some resource of sourceType refers here through `reference` and matches the inner clause.
            let inner = alias + "x"
            let (test, testBinds) = condition(for: innerClause, alias: inner, resourceType: sourceType)
            return (
                "\(alias).id IN (SELECT i.target_id FROM idx_reference i WHERE i.type = ? AND i.param = ? AND i.target_type = ?"
                    + " AND i.id IN (SELECT \(inner).id FROM resources \(inner) WHERE \(inner).type = ? AND \(inner).deleted = 0 AND \(test)))",
                [.text(sourceType), .text(reference.code), .text(resourceType ?? ""), .text(sourceType)] + testBinds)
        }
    }

    /// `alias.id [NOT] IN (SELECT id FROM idx_* WHERE type = ? AND param = ? AND (v1 OR v2))`:
    /// the subquery starts from the index on (type, param, value), so the cost follows the
    /// number of matches, not the number of resources of the type.
    ///
    /// As a `probe`, the same test is asked of one candidate resource:
    /// `[NOT] EXISTS (SELECT 1 FROM idx_* WHERE type = ? AND id = alias.id AND param = ? ...)`.
    func indexedCondition(
        _ clause: SearchClause, definition: SearchParameterDefinition, alias: String, resourceType: String?, probe: Bool = false
    ) -> (String, [SQLValue]) {
        guard let table = Self.table(for: definition.type) else { return ("1 = 0", []) }
        if probe, let resourceType {
            return probeCondition(clause, definition: definition, table: table, alias: alias, resourceType: resourceType)
        }
        // At type level the type is fixed and the id alone identifies a resource; at system
        // level (common parameters only) the pair does.
        var binds: [SQLValue] = []
        let column: String
        let matches: String
        if let resourceType {
            column = "\(alias).id"
            matches = "SELECT i.id FROM \(table) i WHERE i.type = ? AND i.param = ?"
            binds = [.text(resourceType), .text(definition.code)]
        } else {
            column = "(\(alias).type, \(alias).id)"
            matches = "SELECT i.type, i.id FROM \(table) i WHERE i.param = ?"
            binds = [.text(definition.code)]
        }
        if case .missing(let missing)? = clause.values.first {
            return ("\(column) \(missing ? "NOT " : "")IN (\(matches))", binds)
        }
        if definition.type == .composite {
            return compositeCondition(clause, definition: definition, column: column, resourceType: resourceType)
        }
        var parts: [String] = []
        for value in clause.values {
            if let part = valueCondition(value, modifier: clause.modifier, binds: &binds) { parts.append(part) }
        }
        let test = parts.isEmpty ? "1 = 0" : parts.map { "(\($0))" }.joined(separator: " OR ")
        let negate = clause.modifier == "not"
        return ("\(column) \(negate ? "NOT " : "")IN (\(matches) AND (\(test)))", binds)
    }

    func probeCondition(
        _ clause: SearchClause, definition: SearchParameterDefinition, table: String, alias: String, resourceType: String
    ) -> (String, [SQLValue]) {
        let first = definition.type == .composite ? "c0" : "i"
        // Without statistics SQLite prefers the value index (more equality columns) and then
        // scans every row with that value for each candidate; the (type, id) index is the one
        // a probe wants.
        let resourceIndex = definition.type == .composite ? "idx_composite_instance" : "\(table)_resource"
        var from = dialect == .sqlite ? "\(table) \(first) INDEXED BY \(resourceIndex)" : "\(table) \(first)"
        if definition.type == .composite {
            for position in definition.components.indices.dropFirst() {
                let joined = "c\(position)"
                from += " JOIN idx_composite \(joined) ON \(joined).type = c0.type AND \(joined).id = c0.id"
                    + " AND \(joined).param = c0.param AND \(joined).inst = c0.inst AND \(joined).comp = \(position)"
            }
        }
        var candidate = "SELECT 1 FROM \(from) WHERE \(first).type = ? AND \(first).id = \(alias).id AND \(first).param = ?"
        if definition.type == .composite { candidate += " AND c0.comp = 0" }
        var binds: [SQLValue] = [.text(resourceType), .text(definition.code)]
        if case .missing(let missing)? = clause.values.first {
            return ("\(missing ? "NOT " : "")EXISTS (\(candidate))", binds)
        }
        var alternatives: [String] = []
        for value in clause.values {
            if case .composite(let parts) = value {
                guard parts.count == definition.components.count else { continue }
                var tests: [String] = []
                for (position, part) in parts.enumerated() {
                    if let test = valueCondition(part, modifier: nil, alias: "c\(position)", numberHigh: "value_high", binds: &binds) {
                        tests.append("(\(test))")
                    }
                }
                alternatives.append(tests.isEmpty ? "1 = 1" : tests.joined(separator: " AND "))
            } else if let test = valueCondition(value, modifier: clause.modifier, binds: &binds) {
                alternatives.append(test)
            }
        }
        let test = alternatives.isEmpty ? "1 = 0" : alternatives.map { "(\($0))" }.joined(separator: " OR ")
        return ("\(clause.modifier == "not" ? "NOT " : "")EXISTS (\(candidate) AND (\(test)))", binds)
    }

    /// A composite: some element instance has, for every component, a row of that instance
    /// matching the component's value. The first component's rows (`c0`) drive the search from
    /// the value index; the other components' rows of the same instance join to them.
    func compositeCondition(
        _ clause: SearchClause, definition: SearchParameterDefinition, column: String, resourceType: String?
    ) -> (String, [SQLValue]) {
        var from = "idx_composite c0"
        for position in definition.components.indices.dropFirst() {
            let alias = "c\(position)"
            from += " JOIN idx_composite \(alias) ON \(alias).type = c0.type AND \(alias).id = c0.id"
                + " AND \(alias).param = c0.param AND \(alias).inst = c0.inst AND \(alias).comp = \(position)"
        }
        var binds: [SQLValue]
        let matches: String
        if let resourceType {
            matches = "SELECT c0.id FROM \(from) WHERE c0.type = ? AND c0.param = ? AND c0.comp = 0"
            binds = [.text(resourceType), .text(definition.code)]
        } else {
            matches = "SELECT c0.type, c0.id FROM \(from) WHERE c0.param = ? AND c0.comp = 0"
            binds = [.text(definition.code)]
        }
        var alternatives: [String] = []
        for value in clause.values {
            guard case .composite(let parts) = value, parts.count == definition.components.count else { continue }
            var tests: [String] = []
            for (position, part) in parts.enumerated() {
                if let test = valueCondition(part, modifier: nil, alias: "c\(position)", numberHigh: "value_high", binds: &binds) {
                    tests.append("(\(test))")
                }
            }
            alternatives.append(tests.isEmpty ? "1 = 1" : tests.joined(separator: " AND "))
        }
        let test = alternatives.isEmpty ? "1 = 0" : alternatives.map { "(\($0))" }.joined(separator: " OR ")
        return ("\(column) IN (\(matches) AND (\(test)))", binds)
    }

    /// The test of one value against the index row `alias`. Number columns are read as the
    /// range [value, numberHigh] (the same column for the single values of `idx_number`), so
    /// that the prefixes compare ranges as the R4 rules say and single values as before.
    func valueCondition(
        _ value: SearchValue, modifier: String?, alias: String = "i", numberHigh: String = "value", binds: inout [SQLValue]
    ) -> String? {
        let i = alias
        switch value {
        case .string(let text):
            switch modifier {
            case "exact":
                binds.append(.text(text))
                return "\(i).exact = ?"
            case "contains":
                binds.append(.text("%" + SearchSQLBuilder.escapeLike(SearchIndexer.normalize(text)) + "%"))
                return "\(i).normalized LIKE ? ESCAPE '\\'"
            case "text":
                // token:text, a prefix of the code's display or the concept's text.
                let normalized = SearchIndexer.normalize(text)
                binds.append(.text(normalized))
                binds.append(.text(normalized + SearchSQLBuilder.prefixEnd))
                return "\(i).display >= ? AND \(i).display < ?"
            default:
                // A prefix match as a range, which both databases answer from the index.
                let normalized = SearchIndexer.normalize(text)
                binds.append(.text(normalized))
                binds.append(.text(normalized + SearchSQLBuilder.prefixEnd))
                return "\(i).normalized >= ? AND \(i).normalized < ?"
            }
        case .token(let system, let code):
            // reference:identifier compares Reference.identifier as a token.
            let (systemColumn, codeColumn) = modifier == "identifier" ? ("identifier_system", "identifier_value") : ("system", "code")
            var tests: [String] = []
            if let system {
                if system.isEmpty {
                    tests.append("\(i).\(systemColumn) IS NULL")
                } else {
                    tests.append("\(i).\(systemColumn) = ?")
                    binds.append(.text(system))
                }
            }
            if let code {
                // :below and :above widen the code to what it subsumes, or what subsumes it.
                var codes = [code]
                if let system, !system.isEmpty, modifier == "below" {
                    codes = CodeHierarchy.r4.descendants(of: code, in: system)
                } else if let system, !system.isEmpty, modifier == "above" {
                    codes = CodeHierarchy.r4.ancestors(of: code, in: system)
                }
                if codes.count == 1 {
                    tests.append("\(i).\(codeColumn) = ?")
                } else {
                    tests.append("\(i).\(codeColumn) IN (\(codes.map { _ in "?" }.joined(separator: ", ")))")
                }
                binds.append(contentsOf: codes.map(SQLValue.text))
            }
            return tests.isEmpty ? nil : tests.joined(separator: " AND ")
        case .reference(let type, let id, let url):
            var alternatives: [String] = []
            if let url {
                alternatives.append("\(i).url = ?")
                binds.append(.text(url))
            }
            if let id {
                if let type {
                    alternatives.append("\(i).target_type = ? AND \(i).target_id = ?")
                    binds.append(.text(type))
                } else {
                    alternatives.append("\(i).target_id = ?")
                }
                binds.append(.text(id))
            }
            return alternatives.isEmpty ? nil : alternatives.map { "(\($0))" }.joined(separator: " OR ")
        case .date(let prefix, let range):
            return dateCondition(prefix, range, low: "\(i).low", high: "\(i).high", binds: &binds)
        case .uri(let text):
            switch modifier {
            case "below":
                binds.append(.text(text))
                binds.append(.text(text + SearchSQLBuilder.prefixEnd))
                return "\(i).value >= ? AND \(i).value < ?"
            case "above":
                binds.append(.text(text))
                return "? LIKE (\(i).value || '%')"
            default:
                binds.append(.text(text))
                return "\(i).value = ?"
            }
        case .number(let prefix, let number, let low, let high, let system, let code):
            // The target range [lo, hi] against the search value (and the range [low, high)
            // its precision covers); for a single value lo = hi.
            let lo = "\(i).value", hi = "\(i).\(numberHigh)"
            var tests: [String] = []
            switch prefix {
            case .eq:
                tests.append("\(lo) >= ? AND \(hi) < ?")
                binds.append(contentsOf: [.double(low), .double(high)])
            case .ne:
                tests.append("(\(lo) < ? OR \(hi) >= ?)")
                binds.append(contentsOf: [.double(low), .double(high)])
            case .gt:
                tests.append("\(hi) > ?")
                binds.append(.double(number))
            case .sa:
                tests.append("\(lo) > ?")
                binds.append(.double(number))
            case .lt:
                tests.append("\(lo) < ?")
                binds.append(.double(number))
            case .eb:
                tests.append("\(hi) < ?")
                binds.append(.double(number))
            case .ge:
                tests.append("\(hi) >= ?")
                binds.append(.double(number))
            case .le:
                tests.append("\(lo) <= ?")
                binds.append(.double(number))
            case .ap:
                let margin = max(abs(number) * 0.1, high - low)
                tests.append("\(lo) <= ? AND \(hi) >= ?")
                binds.append(contentsOf: [.double(number + margin), .double(number - margin)])
            }
            if let system {
                tests.append("\(i).system = ?")
                binds.append(.text(system))
            }
            if let code {
                tests.append("\(i).code = ?")
                binds.append(.text(code))
            }
            return tests.joined(separator: " AND ")
        case .composite:
            return nil  // answered by compositeCondition
        case .missing:
            return nil
        }
    }

    /// The R4 prefix rules as range comparisons: the target range [low, high) against the
    /// range the search value's precision covers.
    func dateCondition(_ prefix: SearchPrefix, _ range: FHIRDateRange, low: String, high: String, binds: inout [SQLValue]) -> String {
        switch prefix {
        case .eq:
            binds.append(contentsOf: [.integer(range.low), .integer(range.high)])
            return "\(low) >= ? AND \(high) <= ?"
        case .ne:
            binds.append(contentsOf: [.integer(range.low), .integer(range.high)])
            return "(\(low) < ? OR \(high) > ?)"
        case .gt:
            binds.append(.integer(range.high))
            return "\(high) > ?"
        case .lt:
            binds.append(.integer(range.low))
            return "\(low) < ?"
        case .ge:
            binds.append(.integer(range.low))
            return "\(high) > ?"
        case .le:
            binds.append(.integer(range.high))
            return "\(low) < ?"
        case .sa:
            binds.append(.integer(range.high))
            return "\(low) >= ?"
        case .eb:
            binds.append(.integer(range.low))
            return "\(high) <= ?"
        case .ap:
            // Approximately: within 10% of the distance between the value and now, and at
            // least a day, on either side.
            let now = Int64(Date().timeIntervalSince1970 * 1000)
            let margin = max(abs(now - range.low) / 10, 86_400_000)
            binds.append(contentsOf: [.integer(range.high + margin), .integer(range.low - margin)])
            return "\(low) < ? AND \(high) > ?"
        }
    }

    static func escapeLike(_ text: String) -> String {
        var escaped = ""
        for character in text {
            if character == "%" || character == "_" || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}
