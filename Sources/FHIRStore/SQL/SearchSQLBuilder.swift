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
        /// The driving index table when the page is SQLite's walk of it (its rows' rowids are
        /// the keyset, and `select` has them as a 7th column).
        var walkTable: String? = nil
        /// With an ordered cursor: the matches written since its snapshot, up to a page, each
        /// with the key its version before the snapshot had (`type, id, k`), after the cursor.
        var changed: String? = nil
        var changedBinds: [SQLValue] = []
        /// One row when some match was written since the snapshot (`changed` may find rows);
        /// takes `changedProbeBinds`. PostgreSQL asks it in the page's statement.
        var changedProbe: String? = nil
        var changedProbeBinds: [SQLValue] = []

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
        if let driver,
            let walk = driverWalk(query, driver: query.clauses[driver], others: others, otherBinds: otherBinds)
        {
            return Statements(
                count: "SELECT COUNT(*) FROM resources r WHERE \(whereClause)", select: walk.select, binds: binds,
                selectBinds: walk.binds, matches: walk.matches, matchBinds: walk.matchBinds, walkTable: walk.table)
        }
        // SQLite's planner prefers walking an index in the ORDER BY order and testing each row,
        // which costs a scan of the whole type when the match set is small. With index clauses,
        // sorting by expressions makes it start from the matches instead.
        let drivenByMatches =
            dialect == .sqlite
            && query.clauses.contains { clause in
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
                guard let kind = IndexKinds.kind(for: definition.type),
                    let column = kind.sortColumn(descending: sort.descending)
                else { continue }
                let aggregate = sort.descending ? "MAX" : "MIN"
                let name = "s\(keys.count)"
                let (parameterTest, parameterBinds) = Self.parameterTest(definition, column: "x.param")
                keys.append(
                    "(SELECT \(aggregate)(x.\(column)) FROM \(sortSource(kind)) WHERE x.type = r.type AND x.id = r.id AND \(parameterTest)) AS \(name)"
                )
                keyBinds.append(contentsOf: parameterBinds)
                order.append("\(name) \(direction) NULLS LAST")
                pageOrder.append("p.\(name) \(direction) NULLS LAST")
            }
        }
        order.append(contentsOf: [
            key("last_updated", numeric: true) + " ASC", key("type", numeric: false) + " ASC",
            key("id", numeric: false) + " ASC",
        ])
        pageOrder.append(contentsOf: ["p.last_updated ASC", "p.type ASC", "p.id ASC"])
        // Past the first page of a search without `_sort`: after the cursor's key, among what
        // was written before its snapshot (what was written since comes from `changed`, placed
        // by its version before the snapshot).
        var keyset = ""
        var keysetBinds: [SQLValue] = []
        var changed: String?
        var changedBinds: [SQLValue] = []
        var changedProbe: String?
        var changedProbeBinds: [SQLValue] = []
        if query.sort.isEmpty, case .ordered(let lastUpdated, let type, let id, let snapshot)? = query.cursor {
            // The first test is a range of the (type, last_updated) index; a row comparison alone
            // is not one (its columns are not the index's), and PostgreSQL scanned every row.
            keyset =
                " AND r.last_updated >= ? AND r.last_updated < ? AND (r.last_updated > ? OR (r.type, r.id) > (?, ?))"
            keysetBinds = [.integer(lastUpdated), .integer(snapshot), .integer(lastUpdated), .text(type), .text(id)]
            changed =
                "SELECT c.type, c.id, c.k FROM (SELECT r.type, r.id,"
                + " (SELECT MAX(v.last_updated) FROM resource_history v WHERE v.type = r.type AND v.id = r.id AND v.last_updated < ?) AS k"
                + " FROM resources r WHERE \(whereClause) AND r.last_updated >= ?) c"
                + " WHERE c.k IS NOT NULL AND (c.k, c.type, c.id) > (?, ?, ?) ORDER BY c.k, c.type, c.id LIMIT ?"
            changedBinds =
                [.integer(snapshot)] + binds
                + [.integer(snapshot), .integer(lastUpdated), .text(type), .text(id), .integer(Int64(query.count))]
            changedProbe = "SELECT 1 FROM resources r WHERE \(whereClause) AND r.last_updated >= ? LIMIT 1"
            changedProbeBinds = binds + [.integer(snapshot)]
        }
        let offset = keyset.isEmpty ? query.offset : 0
        let page =
            "SELECT r.type, r.id, r.version, r.last_updated, r.deleted" + keys.map { ", " + $0 }.joined()
            + " FROM resources r WHERE \(whereClause)\(keyset) ORDER BY \(order.joined(separator: ", ")) LIMIT ? OFFSET ?"
        return Statements(
            count: "SELECT COUNT(*) FROM resources r WHERE \(whereClause)",
            select: Self.pageColumns + " FROM (\(page)) p"
                + " JOIN resource_history h ON h.type = p.type AND h.id = p.id AND h.version = p.version"
                + " ORDER BY \(pageOrder.joined(separator: ", "))",
            binds: binds,
            selectBinds: keyBinds + binds + keysetBinds + [.integer(Int64(query.count)), .integer(Int64(offset))],
            matches: "SELECT 1 FROM resources r WHERE \(whereClause)", matchBinds: binds, changed: changed,
            changedBinds: changedBinds,
            changedProbe: changedProbe, changedProbeBinds: changedProbeBinds)
    }

    /// At most `bound` matches counted: `_total=estimate` stops there.
    static func boundedCount(_ statements: Statements, bound: Int) -> (String, [SQLValue]) {
        ("SELECT COUNT(*) FROM (\(statements.matches) LIMIT ?) c", statements.matchBinds + [.integer(Int64(bound))])
    }

    /// The index table a sort key reads, aliased `x`. The key is looked up once per resource
    /// row, so it must use the (type, id) index: SQLite otherwise picks the value index
    /// (type, param), which holds a row for every resource of the type, and one `_sort` costs
    /// n x n (5 s on 3,000 Patients). PostgreSQL already plans it on the (type, id) index.
    func sortSource(_ kind: any SearchIndexKind) -> String {
        dialect == .sqlite ? "\(kind.table) x INDEXED BY \(kind.resourceIndex)" : "\(kind.table) x"
    }

    /// The resources a parameter's index rows belong to: the column to test with `IN`, the
    /// subquery selecting from `table` (the caller appends its value test), and its binds. At
    /// type level the type is fixed and the id alone identifies a resource; at system level
    /// (common parameters only) the pair does.
    static func indexRows(
        of definition: SearchParameterDefinition, in table: String, alias: String, resourceType: String?
    ) -> (column: String, matches: String, binds: [SQLValue]) {
        let (parameterTest, parameterBinds) = Self.parameterTest(definition, column: "i.param")
        if let resourceType {
            return (
                "\(alias).id", "SELECT i.id FROM \(table) i WHERE i.type = ? AND \(parameterTest)",
                [.text(resourceType)] + parameterBinds
            )
        }
        return (
            "(\(alias).type, \(alias).id)", "SELECT i.type, i.id FROM \(table) i WHERE \(parameterTest)",
            parameterBinds
        )
    }

    /// `column = ?` on a parameter's own index rows, `column IN (?, ?)` on the rows of the two
    /// parameters a union parameter is made of (``SearchParameterDefinition/indexedAs``).
    static func parameterTest(_ definition: SearchParameterDefinition, column: String) -> (String, [SQLValue]) {
        let codes = definition.indexedAs
        guard codes.count > 1 else { return ("\(column) = ?", [.text(definition.code)]) }
        return ("\(column) IN (" + codes.map { _ in "?" }.joined(separator: ", ") + ")", codes.map(SQLValue.text))
    }

    /// The clause most likely to match fewest resources, by the kind of test, or `nil` when
    /// `_id` narrows the search already (the primary key then drives).
    static func driver(of clauses: [SearchClause]) -> Int? {
        func rank(_ clause: SearchClause) -> Int? {
            if clause.modifier == "not"
                || clause.values.contains(where: { if case .missing = $0 { return true } else { return false } })
            {
                return 6
            }
            switch clause.target {
            case .id: return nil
            case .lastUpdated: return 5
            case .chain, .has: return 3
            case .compartment, .patientVisible: return 1
            case .filter: return 6
            case .indexed(let definition):
                switch definition.type {
                case .reference: return 1
                case .token, .uri, .composite: return clause.modifier == "text" || clause.modifier == "below" ? 3 : 2
                case .string: return clause.modifier == "exact" ? 2 : 3
                case .date, .number, .quantity, .special: return 4
                }
            }
        }
        if clauses.contains(where: { if case .id = $0.target { return $0.modifier != "not" } else { return false } }) {
            return nil
        }
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
            parts.append(
                "(\(alias).type = ? AND \(alias).id IN (\(Array(repeating: "?", count: typeIds.count).joined(separator: ", "))))"
            )
            binds.append(.text(type))
            binds += typeIds.map(SQLValue.text)
        }
        return (Self.anyOf(parts), binds)
    }

    /// The SQL test of one clause against the resource row `alias` (of `resourceType`, or of
    /// any type at system level).
    func condition(for clause: SearchClause, alias: String, resourceType: String?, probe: Bool = false) -> (
        String, [SQLValue]
    ) {
        switch clause.target {
        case .id:
            let (test, binds) = idCondition(clause.values, alias: alias)
            return (clause.modifier == "not" ? "NOT (\(test))" : test, binds)
        case .lastUpdated:
            var binds: [SQLValue] = []
            let parts = clause.values.compactMap { value -> String? in
                guard case .date(let prefix, let range) = value else { return nil }
                return DateIndex.condition(
                    prefix, range, low: "\(alias).last_updated", high: "(\(alias).last_updated + 1)", binds: &binds)
            }
            return (Self.anyOf(parts), binds)
        case .indexed(let definition):
            return indexedCondition(
                clause, definition: definition, alias: alias, resourceType: resourceType, probe: probe)
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
                "\(alias).id IN (SELECT i.id FROM idx_reference i WHERE i.type = ? AND i.param = ? AND \(Self.anyOf(alternatives)))",
                binds
            )
        case .filter(let filter):
            return filterCondition(filter, alias: alias, resourceType: resourceType)
        case .has(let sourceType, let reference, let innerClause):
            // Some resource of sourceType refers here through `reference` and matches the inner clause.
            let inner = alias + "x"
            let (test, testBinds) = condition(for: innerClause, alias: inner, resourceType: sourceType)
            return (
                "\(alias).id IN (SELECT i.target_id FROM idx_reference i WHERE i.type = ? AND i.param = ? AND i.target_type = ?"
                    + " AND i.id IN (SELECT \(inner).id FROM resources \(inner) WHERE \(inner).type = ? AND \(inner).deleted = 0 AND \(test)))",
                [.text(sourceType), .text(reference.code), .text(resourceType ?? ""), .text(sourceType)] + testBinds
            )
        case .compartment(let owner, let id, let links):
            return compartmentCondition(owner: owner, id: id, links: links, alias: alias, resourceType: resourceType)
        case .patientVisible(let patient, let links):
            return patientVisibleCondition(
                patient: patient, links: links, alias: alias, resourceType: resourceType, probe: probe)
        }
    }

    /// `alias.id [NOT] IN (SELECT id FROM idx_* WHERE type = ? AND param = ? AND (v1 OR v2))`:
    /// the subquery starts from the index on (type, param, value), so the cost follows the
    /// number of matches, not the number of resources of the type.
    ///
    /// As a `probe`, the same test is asked of one candidate resource:
    /// `[NOT] EXISTS (SELECT 1 FROM idx_* WHERE type = ? AND id = alias.id AND param = ? ...)`.
    func indexedCondition(
        _ clause: SearchClause, definition: SearchParameterDefinition, alias: String, resourceType: String?,
        probe: Bool = false
    ) -> (String, [SQLValue]) {
        guard let kind = IndexKinds.kind(for: definition.type) else { return ("1 = 0", []) }
        if probe, let resourceType {
            return probeCondition(clause, definition: definition, kind: kind, alias: alias, resourceType: resourceType)
        }
        var (column, matches, binds) = Self.indexRows(
            of: definition, in: kind.table, alias: alias, resourceType: resourceType)
        if case .missing(let missing)? = clause.values.first {
            return ("\(column) \(missing ? "NOT " : "")IN (\(matches))", binds)
        }
        if definition.type == .composite {
            return CompositeIndex.condition(clause, definition: definition, column: column, resourceType: resourceType)
        }
        var parts: [String] = []
        for value in clause.values {
            if let part = valueCondition(value, modifier: clause.modifier, binds: &binds) { parts.append(part) }
        }
        let negate = clause.modifier == "not"
        return ("\(column) \(negate ? "NOT " : "")IN (\(matches) AND \(Self.anyOf(parts)))", binds)
    }

    func probeCondition(
        _ clause: SearchClause, definition: SearchParameterDefinition, kind: any SearchIndexKind, alias: String,
        resourceType: String
    ) -> (String, [SQLValue]) {
        let first = definition.type == .composite ? "c0" : "i"
        // Without statistics SQLite prefers the value index (more equality columns) and then
        // scans every row with that value for each candidate; the (type, id) index is the one
        // a probe wants.
        var from =
            dialect == .sqlite ? "\(kind.table) \(first) INDEXED BY \(kind.resourceIndex)" : "\(kind.table) \(first)"
        if definition.type == .composite {
            from += CompositeIndex.instanceJoins(components: definition.components.count)
        }
        let (parameterTest, parameterBinds) = Self.parameterTest(definition, column: "\(first).param")
        var candidate =
            "SELECT 1 FROM \(from) WHERE \(first).type = ? AND \(first).id = \(alias).id AND \(parameterTest)"
        if definition.type == .composite { candidate += " AND c0.comp = 0" }
        var binds: [SQLValue] = [.text(resourceType)] + parameterBinds
        if case .missing(let missing)? = clause.values.first {
            return ("\(missing ? "NOT " : "")EXISTS (\(candidate))", binds)
        }
        var alternatives: [String] = []
        for value in clause.values {
            if case .composite(let parts) = value {
                guard parts.count == definition.components.count else { continue }
                alternatives.append(CompositeIndex.valueTest(parts, binds: &binds))
            } else if let test = valueCondition(value, modifier: clause.modifier, binds: &binds) {
                alternatives.append(test)
            }
        }
        return ("\(clause.modifier == "not" ? "NOT " : "")EXISTS (\(candidate) AND \(Self.anyOf(alternatives)))", binds)
    }

    /// The test of one value against the index row `alias`, by the kind that owns the
    /// value's form (see ``IndexKinds/condition(_:modifier:alias:numberHigh:binds:)``).
    func valueCondition(
        _ value: SearchValue, modifier: String?, alias: String = "i", numberHigh: String = "value",
        binds: inout [SQLValue]
    ) -> String? {
        IndexKinds.condition(value, modifier: modifier, alias: alias, numberHigh: numberHigh, binds: &binds)
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
