import FHIR

/// The page of a search on SQLite read in the order of its driving clause's index rows.
///
/// Sorted by `last_updated`, a page of 10 costs a look at every match: each is found, probed
/// and sorted before the first 10 are known, so a search by patient slows as the patient's
/// record grows (the soak benchmark's decay). Rows of an index with the same key are kept
/// in rowid order, the order they were written in, and a resource's index rows are written
/// again with each version: walked in that order, the driver's rows give the resources in
/// the order of their last write, and the walk stops once the page is full. The order
/// differs from `last_updated` only for writes in the same millisecond or concurrent ones.
extension SearchSQLBuilder {
    struct Walk {
        var select: String
        var binds: [SQLValue]
        /// One row per match in walk order, without the page's LIMIT; takes `matchBinds`.
        /// A bounded count over it stops after the bound (the `IN` form builds the driver's
        /// whole match list first, whatever the LIMIT).
        var matches: String
        var matchBinds: [SQLValue]
        /// The driving index table, whose rowids are the walk's keyset.
        var table: String
    }

    /// The walk, when SQLite, no `_sort` and a driver of one index table (not a composite,
    /// `:missing` or `:not`) allow it; `others` are the rest of the WHERE clause.
    ///
    /// Past the first page, a walk cursor (``SearchCursor/walk(row:bound:)``) starts the walk
    /// after the last row of the page before, up to the rows that existed at the first page;
    /// an ordered cursor (from a search that did not walk) keeps to the ordered form.
    func driverWalk(_ query: SearchQuery, driver clause: SearchClause, others: [String], otherBinds: [SQLValue])
        -> Walk?
    {
        if case .ordered? = query.cursor { return nil }
        guard dialect == .sqlite, query.sort.isEmpty, let resourceType = query.resourceType, clause.modifier != "not",
            case .indexed(let definition) = clause.target, definition.type != .composite,
            // A union's rows come from two parameters' index ranges, not in one rowid order.
            definition.unionOf == nil,
            let table = IndexKinds.kind(for: definition.type)?.table,
            !clause.values.contains(where: { if case .missing = $0 { return true } else { return false } })
        else { return nil }
        var binds: [SQLValue] = [.text(resourceType), .text(definition.code)]
        let test = valueTests(clause, alias: "d", binds: &binds)
        // A resource with several matching rows (two values of the clause, say) is taken at
        // its first one.
        let earlier = valueTests(clause, alias: "e", binds: &binds)
        binds += otherBinds
        // CROSS JOIN keeps the index rows as the outer loop: SQLite has no statistics to see
        // that starting from them is cheaper than from the resources of the type.
        let from =
            " FROM \(table) d CROSS JOIN resources r ON r.type = d.type AND r.id = d.id"
            + " WHERE d.type = ? AND d.param = ? AND (\(test))"
            + " AND NOT EXISTS (SELECT 1 FROM \(table) e INDEXED BY \(table)_resource WHERE e.type = d.type AND e.id = d.id"
            + " AND e.param = d.param AND e.rowid < d.rowid AND (\(earlier)))"
            + " AND " + others.joined(separator: " AND ")
        var keyset = ""
        var keysetBinds: [SQLValue] = []
        var offset = query.offset
        if case .walk(let row, let bound)? = query.cursor {
            keyset = " AND d.rowid > ? AND d.rowid <= ?"
            keysetBinds = [.integer(row), .integer(bound)]
            offset = 0
        }
        let page =
            "SELECT r.type, r.id, r.version, r.last_updated, r.deleted, d.rowid AS k" + from + keyset
            + " ORDER BY d.rowid LIMIT ? OFFSET ?"
        return Walk(
            select: Self.pageColumns + ", p.k FROM (\(page)) p"
                + " JOIN resource_history h ON h.type = p.type AND h.id = p.id AND h.version = p.version ORDER BY p.k",
            binds: binds + keysetBinds + [.integer(Int64(query.count)), .integer(Int64(offset))],
            matches: "SELECT 1" + from, matchBinds: binds, table: table)
    }

    /// The clause's values OR-ed, as tests of the index row `alias`.
    func valueTests(_ clause: SearchClause, alias: String, binds: inout [SQLValue]) -> String {
        var parts: [String] = []
        for value in clause.values {
            if let part = valueCondition(value, modifier: clause.modifier, alias: alias, binds: &binds) {
                parts.append(part)
            }
        }
        return Self.anyOf(parts)
    }
}
