import FHIR
import Foundation

/// The store's operations on one connection, inside one database transaction where the
/// caller opened one: what a transaction Bundle needs, and what each single interaction uses.
struct SQLFHIRTransaction: FHIRTransaction {
    let store: SQLFHIRStore
    let executor: any SQLExecutor

    var dialect: SQLDialect { store.database.dialect }

    /// Reading the reference rows of given resources: SQLite, without statistics, would
    /// otherwise pick the value index and scan every reference of the type.
    var byResourceIndex: String { dialect == .sqlite ? " INDEXED BY idx_reference_resource" : "" }

    // MARK: Writes

    func create(_ resource: JSONValue, type: String, id: String?) async throws -> StoredResource {
        try await write(resource, type: type, id: id ?? ResourceIds.make(), version: 1, isNew: true)
    }

    func update(_ resource: JSONValue, type: String, id: String, ifMatch: Int?) async throws -> UpdateOutcome {
        let current = try await currentVersion(type: type, id: id)
        if let ifMatch, ifMatch != current?.version ?? 0 {
            throw FHIRError.preconditionFailed(
                "\(type)/\(id) is at version \(current.map { String($0.version) } ?? "none"), not \(ifMatch)")
        }
        let version = (current?.version ?? 0) + 1
        let stored = try await write(resource, type: type, id: id, version: version, isNew: current == nil)
        return UpdateOutcome(resource: stored, created: current == nil || current!.deleted)
    }

    func delete(type: String, id: String, ifMatch: Int?) async throws -> StoredResource? {
        guard let current = try await currentVersion(type: type, id: id) else { return nil }
        if let ifMatch, ifMatch != current.version {
            throw FHIRError.preconditionFailed("\(type)/\(id) is at version \(current.version), not \(ifMatch)")
        }
        if current.deleted {
            return StoredResource(
                type: type, id: id, versionId: current.version, lastUpdated: current.lastUpdated, deleted: true,
                body: nil)
        }
        let now = store.clock.now()
        let version = current.version + 1
        try await executor.execute(
            [
                SQLStatement(
                    "UPDATE resources SET version = ?, last_updated = ?, deleted = 1 WHERE type = ? AND id = ?",
                    [.integer(Int64(version)), .integer(now), .text(type), .text(id)]),
                SQLStatement(
                    "INSERT INTO resource_history (type, id, version, last_updated, deleted, body) VALUES (?, ?, ?, ?, 1, NULL)",
                    [.text(type), .text(id), .integer(Int64(version)), .integer(now)]),
            ] + Self.removeIndex(type: type, id: id))
        return StoredResource(type: type, id: id, versionId: version, lastUpdated: now, deleted: true, body: nil)
    }

    private struct VersionRow {
        var version: Int
        var lastUpdated: Int64
        var deleted: Bool
    }

    /// The current version row, locked against concurrent writers on PostgreSQL (SQLite has
    /// one writer at a time anyway).
    private func currentVersion(type: String, id: String) async throws -> VersionRow? {
        let lock = dialect == .postgres ? " FOR UPDATE" : ""
        let rows = try await executor.query(
            "SELECT version, last_updated, deleted FROM resources WHERE type = ? AND id = ?\(lock)",
            [.text(type), .text(id)])
        guard let row = rows.first else { return nil }
        return VersionRow(version: Int(row[0].int ?? 0), lastUpdated: row[1].int ?? 0, deleted: row[2].int == 1)
    }

    /// Stamps `id` and `meta`, writes the resource and its history row, and re-indexes it.
    private func write(_ resource: JSONValue, type: String, id: String, version: Int, isNew: Bool) async throws
        -> StoredResource
    {
        let prepared = try store.prepareWrite(resource, type: type, id: id, version: version, isNew: isNew)
        return try await write(prepared, stampedAt: store.clock.now())
    }

    static func containsNUL(_ value: JSONValue) -> Bool {
        switch value {
        case .string(let text): return text.utf8.contains(0)
        case .array(let items): return items.contains(where: containsNUL)
        case .object(let object): return object.contains { $0.key.utf8.contains(0) || containsNUL($0.value) }
        default: return false
        }
    }

    static func removeIndex(type: String, id: String) -> [SQLStatement] {
        IndexKinds.all.map {
            SQLStatement("DELETE FROM \($0.table) WHERE type = ? AND id = ?", [.text(type), .text(id)])
        }
    }

    /// Each index table's rows for `entries`, named by their kind: the values of `param` and
    /// the kind's value columns, without the resource's type and id.
    static func indexRows(_ entries: SearchIndexEntries) -> [IndexTableRows] {
        IndexKinds.rows(entries)
    }

    static func insertIndex(_ entries: SearchIndexEntries, type: String, id: String, dialect: SQLDialect)
        -> [SQLStatement]
    {
        insertIndex(rows: indexRows(entries), type: type, id: id, dialect: dialect)
    }

    static func insertIndex(rows: [IndexTableRows], type: String, id: String, dialect: SQLDialect) -> [SQLStatement] {
        var statements: [SQLStatement] = []
        for table in rows where !table.rows.isEmpty {
            let tableRows = table.rows
            let columnCount = table.kind.columns.count + 3
            // SQLite runs statements in-process and keeps them prepared: chunks of a power of
            // two rows (up to 32) keep the texts per table to six, and a statement a chunk
            // opens the table's indexes once for all its rows. PostgreSQL pays a round trip
            // per statement: one multi-row INSERT per table and chunk of 200.
            if dialect == .sqlite {
                statements += multiRowInserts(sqliteInsertTexts(table.kind), rows: tableRows.count) { row, binds in
                    binds.append(.text(type))
                    binds.append(.text(id))
                    binds += tableRows[row]
                }
                continue
            }
            var start = 0
            while start < tableRows.count {
                let size = min(200, tableRows.count - start)
                var binds: [SQLValue] = []
                binds.reserveCapacity(size * columnCount)
                for row in tableRows[start..<start + size] {
                    binds.append(.text(type))
                    binds.append(.text(id))
                    binds.append(contentsOf: row)
                }
                statements.append(SQLStatement(insertText(table.kind, rows: size, dialect), binds))
                start += size
            }
        }
        return statements
    }

    /// `rows` rows in statements of `texts[p]`, each the INSERT of 2^p rows: the largest that
    /// fits first, so that a table's texts are `texts.count` (six). `appendRow` appends row
    /// `n`'s values to a statement's binds.
    static func multiRowInserts(
        _ texts: [String], rows: Int, appendRow: (_ row: Int, _ binds: inout [SQLValue]) -> Void
    ) -> [SQLStatement] {
        var statements: [SQLStatement] = []
        var start = 0
        while start < rows {
            let power = min(texts.count - 1, Int.bitWidth - 1 - (rows - start).leadingZeroBitCount)
            var binds: [SQLValue] = []
            appendRow(start, &binds)
            binds.reserveCapacity(binds.count << power)
            for row in start + 1..<start + (1 << power) { appendRow(row, &binds) }
            statements.append(SQLStatement(texts[power], binds))
            start += 1 << power
        }
        return statements
    }

    /// The INSERT of `rows` rows into `kind`'s table.
    static func insertText(_ kind: any SearchIndexKind, rows: Int, _ dialect: SQLDialect) -> String {
        let columns = kind.columns
        let placeholders = "(" + Array(repeating: "?", count: columns.count + 3).joined(separator: ", ") + ")"
        // OR FAIL on SQLite: a multi-row INSERT that may abort on a NOT NULL column makes
        // SQLite copy every page it touches to a statement journal first, to undo the
        // statement alone (a fifth of an ingest's CPU while that journal spilled to a temp
        // file). No caller keeps a transaction after one of its statements failed: the
        // transaction or its savepoint is rolled back whole, so that undo is never needed.
        let verb = dialect == .sqlite ? "INSERT OR FAIL INTO" : "INSERT INTO"
        return "\(verb) \(kind.table) (type, id, param, \(columns.map(\.name).joined(separator: ", "))) VALUES "
            + Array(repeating: placeholders, count: rows).joined(separator: ", ")
    }

    /// SQLite's INSERT texts of `kind`'s table for 1, 2, 4, ..., 32 rows: built once per table
    /// (``IndexKinds/all``), not for every statement of every write (3% of a Synthea ingest's
    /// samples went to building them).
    static func sqliteInsertTexts(_ kind: any SearchIndexKind) -> [String] {
        builtInsertTexts[kind.table] ?? (0...5).map { insertText(kind, rows: 1 << $0, .sqlite) }
    }

    private static let builtInsertTexts: [String: [String]] = Dictionary(
        uniqueKeysWithValues: IndexKinds.all.map { kind in
            (kind.table, (0...5).map { insertText(kind, rows: 1 << $0, .sqlite) })
        })

    // MARK: Reads

    func read(type: String, id: String) async throws -> StoredResource {
        let rows = try await executor.query(
            "SELECT r.version, r.last_updated, r.deleted, h.body FROM resources r \(SQLFHIRStore.joinCurrentBody)"
                + " WHERE r.type = ? AND r.id = ?", [.text(type), .text(id)])
        guard let row = rows.first else { throw FHIRError.notFound("\(type)/\(id) is not known") }
        let stored = SQLFHIRStore.stored(type: type, id: id, row: row)
        if stored.deleted { throw FHIRError.gone("\(type)/\(id) was deleted") }
        return stored
    }

    func search(_ query: SearchQuery) async throws -> SearchPage {
        try await search(query, includingOnly: { _ in true })
    }

    func search(_ query: SearchQuery, includingOnly visible: @escaping @Sendable (StoredResource) -> Bool) async throws
        -> SearchPage
    {
        let sql = SearchSQLBuilder(dialect: dialect).build(query)
        if case .walk? = query.cursor, sql.walkTable == nil {
            // A walk's page link for a search this server no longer walks (made by an older
            // version: `combo-*` searches walked their own rows): its rowids place nothing in the
            // ordered form, which would answer the first page again.
            throw FHIRError.badRequest(
                "_cursor is a page link of an earlier version of this server for this search; run the search again")
        }
        let wantsPage = !query.countOnly && query.count > 0
        var counted: Int?
        var rows: [SQLRow] = []
        var walkBound: Int64?
        var changedMayExist = true
        if wantsPage, dialect == .postgres, query.total == .accurate || sql.changedProbe != nil {
            // On PostgreSQL an exact count rides in the page's statement (an InitPlan run once):
            // one round trip instead of two. `_total=estimate`'s count does not: most pages end
            // the answer and need none, and planning the filters a second time inside the page
            // doubled its planning (1.2 to 2.5 ms for Observation by patient, code and date).
            let (counting, countBinds) = query.total == .accurate ? (sql.count, sql.binds) : ("NULL", [])
            if let probe = sql.changedProbe {
                // Whether the keyset's rows written since its snapshot need a statement of their own.
                rows = try await executor.query(
                    sql.select(adding: "(\(counting)) AS n, (\(probe)) AS c"),
                    countBinds + sql.changedProbeBinds + sql.selectBinds)
                if let first = rows.first { changedMayExist = first[7].int != nil }
            } else {
                rows = try await executor.query(sql.select(adding: "(\(counting)) AS n"), countBinds + sql.selectBinds)
            }
            counted = rows.first.flatMap { $0[6].int }.map { Int($0) }
        } else if wantsPage {
            // The walk's snapshot is the index rows that exist before the first page is read.
            if let table = sql.walkTable, query.cursor == nil {
                walkBound = try await executor.query("SELECT MAX(rowid) FROM \(table)", []).first?.first?.int ?? 0
            }
            rows = try await executor.query(sql.select, sql.selectBinds)
        }
        var matches = rows.map { SQLFHIRStore.stored(type: $0[4].string ?? "", id: $0[5].string ?? "", row: $0) }
        var next: SearchCursor?
        if wantsPage, query.sort.isEmpty {
            (matches, next) = try await keysetPage(
                query, sql: sql, rows: rows, matches: matches, walkBound: walkBound, changedMayExist: changedMayExist)
        }
        let (total, exact) = try await total(of: query, sql: sql, pageSize: matches.count, counted: counted)
        let (included, warnings) = try await resolveIncludes(query.includes, matches: matches, visible: visible)
        var page = SearchPage(total: total, resources: matches, included: included, totalIsExact: exact)
        page.warnings = warnings
        page.nextCursor = next
        return page
    }

    /// `Bundle.total` as `query.total` asks, and whether it is exact. `_summary=count` and
    /// `_count=0` (unless `_total=none`) ask for the total alone, and always count.
    /// `counted`: the count (exact, or bounded for `estimate`) when the page's statement
    /// brought it.
    func total(of query: SearchQuery, sql: SearchSQLBuilder.Statements, pageSize: Int, counted: Int? = nil) async throws
        -> (Int?, Bool)
    {
        let mode = query.countOnly || (query.count == 0 && query.total != .none) ? .accurate : query.total
        switch mode {
        case .none:
            return (nil, true)
        case .accurate:
            if let counted { return (counted, true) }
            return (Int(try await executor.query(sql.count, sql.binds).first?.first?.int ?? 0), true)
        case .estimate:
            // The answer ends on this page: its total costs nothing.
            if query.count > 0, pageSize < query.count, pageSize > 0 || query.offset == 0 {
                return (query.offset + pageSize, true)
            }
            let bound = query.estimateBound
            var upToBound = counted ?? 0
            if counted == nil {
                let (counting, binds) = SearchSQLBuilder.boundedCount(sql, bound: bound + 1)
                upToBound = Int(try await executor.query(counting, binds).first?.first?.int ?? 0)
            }
            if upToBound <= bound {
                // A whole count below what the pages hold: it ran after the page, and writes
                // came between (a statement of its own, outside the page's snapshot). Not a
                // total to trust, nor to end the paging on.
                guard upToBound >= query.offset + pageSize else {
                    return dialect == .postgres ? (query.offset + pageSize, false) : (nil, true)
                }
                return (upToBound, true)
            }
            guard dialect == .postgres else { return (nil, true) }
            return (max(bound + 1, try await plannedRows(sql.matches, sql.matchBinds) ?? 0), false)
        }
    }

    /// PostgreSQL's estimate of the rows `select` returns, from its plan (nothing runs).
    func plannedRows(_ select: String, _ binds: [SQLValue]) async throws -> Int? {
        let plan = try await executor.query("EXPLAIN " + select, binds)
        guard let line = plan.first?.first?.string, let range = line.range(of: "rows=") else { return nil }
        return Int(line[range.upperBound...].prefix { $0.isNumber })
    }

    /// The most resources `_include`/`_revinclude` add to one page, and how many times
    /// `:iterate` follows them.
    static let includeLimit = 1000
    static let iterationLimit = 4

    /// Follows `_include` and `_revinclude` from the page's matches (and, with `:iterate`,
    /// from what they brought in), through the reference index; each round keeps only what
    /// `visible` accepts before the next one follows its references.
    ///
    /// At most ``includeLimit`` resources in all: each round shares what is left equally
    /// among its includes (a first `_revinclude` with thousands of referrers leaves the
    /// second its share), and an include that had more than its share says so in a warning,
    /// as does an `:iterate` stopped by the bounds. Never silently cut.
    func resolveIncludes(
        _ includes: [SearchInclude], matches: [StoredResource], visible: (StoredResource) -> Bool = { _ in true }
    ) async throws -> (included: [StoredResource], warnings: [String]) {
        guard !includes.isEmpty, !matches.isEmpty else { return ([], []) }
        var seen = Set(matches.map { "\($0.type)/\($0.id)" })
        var included: [StoredResource] = []
        var warnings: [String] = []
        var frontier = matches
        for round in 0..<Self.iterationLimit where !frontier.isEmpty {
            let active = includes.filter { round == 0 || $0.iterate }
            guard !active.isEmpty else { break }
            let left = Self.includeLimit - included.count
            guard left > 0 else {
                warnings.append(
                    "_include:iterate stopped: this page already includes \(Self.includeLimit) resources, the most one page takes"
                )
                break
            }
            let share = max(1, left / active.count)
            var fresh: [(type: String, id: String)] = []
            for include in active {
                // One more than the share tells whether there were more.
                let wanted = try await references(for: include, from: frontier, limit: share + 1)
                var taken = 0
                for key in wanted where taken < share && seen.insert("\(key.type)/\(key.id)").inserted {
                    fresh.append(key)
                    taken += 1
                }
                if wanted.count > share {
                    warnings.append(
                        "\(include.reverse ? "_revinclude" : "_include")=\(include.sourceType):\(include.parameter ?? "*") found more than \(share) resources"
                            + " for this page; only \(taken) are included (at most \(Self.includeLimit) a page, shared among the includes): ask for fewer matches a page with _count"
                    )
                }
            }
            frontier = try await fetch(Array(fresh.prefix(left))).filter(visible)
            included += frontier
        }
        if !frontier.isEmpty, includes.contains(where: \.iterate), included.count < Self.includeLimit {
            warnings.append(
                "_include:iterate stopped after \(Self.iterationLimit) rounds: what the last round included was not followed further"
            )
        }
        return (included, warnings)
    }

    /// The (type, id) pairs one include names, starting from `resources`, each once; at most
    /// `limit` of them.
    private func references(
        for include: SearchInclude, from resources: [StoredResource], limit: Int
    ) async throws -> [(type: String, id: String)] {
        var keys: [(type: String, id: String)] = []
        var unique = Set<String>()
        func add(_ type: String, _ id: String) {
            if keys.count < limit, unique.insert("\(type)/\(id)").inserted { keys.append((type, id)) }
        }
        var parameterTest = ""
        var parameterBinds: [SQLValue] = []
        if let parameter = include.parameter {
            parameterTest = " AND param = ?"
            parameterBinds = [.text(parameter)]
        }
        if include.reverse {
            // Resources of sourceType that refer to these.
            for (type, group) in Dictionary(grouping: resources, by: \.type).sorted(by: { $0.key < $1.key })
            where include.targetType == nil || include.targetType == type {
                for chunk in Self.chunks(group.map(\.id)) where keys.count < limit {
                    let rows = try await executor.query(
                        "SELECT DISTINCT id FROM idx_reference WHERE type = ?\(parameterTest) AND target_type = ? AND target_id IN (\(Self.placeholders(chunk.count)))"
                            + " LIMIT ?",
                        [.text(include.sourceType)] + parameterBinds + [.text(type)] + chunk.map(SQLValue.text) + [
                            .integer(Int64(limit))
                        ])
                    for row in rows { if let id = row[0].string { add(include.sourceType, id) } }
                }
            }
        } else {
            // What these resources of sourceType refer to.
            let sources = resources.filter { $0.type == include.sourceType }.map(\.id)
            for chunk in Self.chunks(sources) where keys.count < limit {
                let rows = try await executor.query(
                    "SELECT DISTINCT target_type, target_id FROM idx_reference\(byResourceIndex) WHERE type = ?\(parameterTest)"
                        + " AND target_id IS NOT NULL AND id IN (\(Self.placeholders(chunk.count)))",
                    [.text(include.sourceType)] + parameterBinds + chunk.map(SQLValue.text))
                for row in rows {
                    guard let type = row[0].string, let id = row[1].string else { continue }
                    if let wanted = include.targetType, wanted != type { continue }
                    add(type, id)
                }
            }
        }
        return keys
    }

    /// The current, non-deleted resources named by `keys`: one statement per 500 keys,
    /// whatever their types (a round trip per type made `$everything` slow on PostgreSQL).
    func fetch(_ keys: [(type: String, id: String)]) async throws -> [StoredResource] {
        var found: [StoredResource] = []
        for start in stride(from: 0, to: keys.count, by: 500) {
            let (test, binds) = Self.keysCondition(keys[start..<min(start + 500, keys.count)], alias: "r.")
            let rows = try await executor.query(
                "SELECT r.version, r.last_updated, r.deleted, h.body, r.type, r.id FROM resources r \(SQLFHIRStore.joinCurrentBody)"
                    + " WHERE r.deleted = 0 AND (\(test))", binds)
            found += rows.map { SQLFHIRStore.stored(type: $0[4].string ?? "", id: $0[5].string ?? "", row: $0) }
        }
        return found
    }

    /// `(type = ? AND id IN (...)) OR ...`, one term per type of `keys`, on columns `alias`type
    /// and `alias`id: each term is one index range.
    static func keysCondition(_ keys: ArraySlice<(type: String, id: String)>, alias: String) -> (String, [SQLValue]) {
        var terms: [String] = []
        var binds: [SQLValue] = []
        for (type, group) in Dictionary(grouping: keys, by: \.type).sorted(by: { $0.key < $1.key }) {
            terms.append("(\(alias)type = ? AND \(alias)id IN (\(placeholders(group.count))))")
            binds.append(.text(type))
            binds += group.map { SQLValue.text($0.id) }
        }
        return (terms.isEmpty ? "1 = 0" : terms.joined(separator: " OR "), binds)
    }

    static func chunks(_ ids: [String], size: Int = 500) -> [[String]] {
        stride(from: 0, to: ids.count, by: size).map { Array(ids[$0..<min($0 + size, ids.count)]) }
    }

    static func placeholders(_ count: Int) -> String {
        Array(repeating: "?", count: count).joined(separator: ", ")
    }
}
