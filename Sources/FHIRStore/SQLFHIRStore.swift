import FHIR
import Foundation

/// The FHIR store on any ``SQLDatabase``: resources as versioned JSON text, search answered
/// from index tables filled in the same transaction as each write.
public final class SQLFHIRStore: FHIRStore, @unchecked Sendable {
    public let database: any SQLDatabase
    let indexer: SearchIndexer
    private let clock = MonotonicClock()

    /// Wraps `database`, creating the tables when they are missing.
    public init(database: any SQLDatabase, registry: SearchParameterRegistry = .r4) async throws {
        self.database = database
        indexer = SearchIndexer(registry: registry)
        let statements = Schema.statements(for: database.dialect)
        try await database.withTransaction { executor in
            for statement in statements { try await executor.query(statement, []) }
            let found = try await executor.query("SELECT version FROM caduceus_schema", []).first?.first?.int
            if found == nil {
                try await executor.query("INSERT INTO caduceus_schema (version) VALUES (?)", [.integer(Schema.version)])
            } else if found != Schema.version {
                throw StoreError.configuration(
                    "The database has schema version \(found!), this Caduceus uses \(Schema.version); use a new database")
            }
        }
    }

    /// Opens the store named by `url`: `postgres://...`, `sqlite:path`, or a file path.
    public static func open(url: String) async throws -> SQLFHIRStore {
        if url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") {
            return try await SQLFHIRStore(database: try await PostgresDatabase.connect(url: url))
        }
        var path = url.hasPrefix("sqlite:") ? String(url.dropFirst("sqlite:".count)) : url
        if path.hasPrefix("//") { path.removeFirst(2) }
        if path != ":memory:" {
            let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        }
        return try await SQLFHIRStore(database: try await SQLiteDatabase.open(path: path))
    }

    public func close() async throws {
        try await database.close()
    }

    // MARK: Writes

    public func create(_ resource: JSONValue, type: String) async throws -> StoredResource {
        let id = UUID().uuidString.lowercased()
        return try await database.withTransaction { executor in
            try await self.write(resource, type: type, id: id, version: 1, isNew: true, executor: executor)
        }
    }

    public func update(_ resource: JSONValue, type: String, id: String, ifMatch: Int?) async throws -> UpdateOutcome {
        do {
            return try await attemptUpdate(resource, type: type, id: id, ifMatch: ifMatch)
        } catch is SQLUniqueViolation {
            // Another request created the same id between our read and our insert: the row
            // exists now, so a second attempt takes the update path.
            do {
                return try await attemptUpdate(resource, type: type, id: id, ifMatch: ifMatch)
            } catch is SQLUniqueViolation {
                throw FHIRError.conflict("\(type)/\(id) was written concurrently; retry the update")
            }
        }
    }

    private func attemptUpdate(_ resource: JSONValue, type: String, id: String, ifMatch: Int?) async throws -> UpdateOutcome {
        try await database.withTransaction { executor in
            let current = try await self.currentVersion(type: type, id: id, executor: executor, forUpdate: true)
            if let ifMatch, ifMatch != current?.version ?? 0 {
                throw FHIRError.preconditionFailed(
                    "\(type)/\(id) is at version \(current.map { String($0.version) } ?? "none"), not \(ifMatch)")
            }
            let version = (current?.version ?? 0) + 1
            let stored = try await self.write(
                resource, type: type, id: id, version: version, isNew: current == nil, executor: executor)
            return UpdateOutcome(resource: stored, created: current == nil || current!.deleted)
        }
    }

    public func delete(type: String, id: String, ifMatch: Int?) async throws -> StoredResource? {
        try await database.withTransaction { executor in
            guard let current = try await self.currentVersion(type: type, id: id, executor: executor, forUpdate: true) else {
                return nil
            }
            if let ifMatch, ifMatch != current.version {
                throw FHIRError.preconditionFailed("\(type)/\(id) is at version \(current.version), not \(ifMatch)")
            }
            if current.deleted {
                return StoredResource(
                    type: type, id: id, versionId: current.version, lastUpdated: current.lastUpdated, deleted: true, body: nil)
            }
            let now = self.clock.now()
            let version = current.version + 1
            try await executor.execute([
                SQLStatement(
                    "UPDATE resources SET version = ?, last_updated = ?, deleted = 1 WHERE type = ? AND id = ?",
                    [.integer(Int64(version)), .integer(now), .text(type), .text(id)]),
                SQLStatement(
                    "INSERT INTO resource_history (type, id, version, last_updated, deleted, body) VALUES (?, ?, ?, ?, 1, NULL)",
                    [.text(type), .text(id), .integer(Int64(version)), .integer(now)]),
            ] + SQLFHIRStore.removeIndex(type: type, id: id))
            return StoredResource(type: type, id: id, versionId: version, lastUpdated: now, deleted: true, body: nil)
        }
    }

    private struct VersionRow {
        var version: Int
        var lastUpdated: Int64
        var deleted: Bool
    }

    private func currentVersion(type: String, id: String, executor: any SQLExecutor, forUpdate: Bool) async throws -> VersionRow? {
        let lock = forUpdate && database.dialect == .postgres ? " FOR UPDATE" : ""
        let rows = try await executor.query(
            "SELECT version, last_updated, deleted FROM resources WHERE type = ? AND id = ?\(lock)", [.text(type), .text(id)])
        guard let row = rows.first else { return nil }
        return VersionRow(version: Int(row[0].int ?? 0), lastUpdated: row[1].int ?? 0, deleted: row[2].int == 1)
    }

    /// Stamps `id` and `meta`, writes the resource and its history row, and re-indexes it.
    private func write(
        _ resource: JSONValue, type: String, id: String, version: Int, isNew: Bool, executor: any SQLExecutor
    ) async throws -> StoredResource {
        guard case .object(var object) = resource else { throw FHIRError.unprocessable("A resource must be a JSON object") }
        let now = clock.now()
        object.set("id", .string(id), after: ["resourceType"])
        // versionId and lastUpdated are the server's: they replace whatever the client sent
        // and come first, as other servers write them.
        var meta = JSONObject([
            ("versionId", .string(String(version))),
            ("lastUpdated", .string(FHIRDateRange.instantString(milliseconds: now))),
        ])
        for (key, value) in object["meta"]?.objectValue ?? JSONObject() where key != "versionId" && key != "lastUpdated" {
            meta[key] = value
        }
        object.set("meta", .object(meta), after: ["resourceType", "id"])
        let stamped = JSONValue.object(object)
        let body = JSONWriter().string(stamped)
        // The body is stored once, in the version's history row; `resources` points at it.
        var statements: [SQLStatement]
        if isNew {
            statements = [SQLStatement(
                "INSERT INTO resources (type, id, version, last_updated, deleted) VALUES (?, ?, ?, ?, 0)",
                [.text(type), .text(id), .integer(Int64(version)), .integer(now)])]
        } else {
            statements = [SQLStatement(
                "UPDATE resources SET version = ?, last_updated = ?, deleted = 0 WHERE type = ? AND id = ?",
                [.integer(Int64(version)), .integer(now), .text(type), .text(id)])]
            statements += SQLFHIRStore.removeIndex(type: type, id: id)
        }
        statements.append(SQLStatement(
            "INSERT INTO resource_history (type, id, version, last_updated, deleted, body) VALUES (?, ?, ?, ?, 0, ?)",
            [.text(type), .text(id), .integer(Int64(version)), .integer(now), .text(body)]))
        statements += SQLFHIRStore.insertIndex(indexer.entries(for: stamped, resourceType: type), type: type, id: id)
        try await executor.execute(statements)
        return StoredResource(type: type, id: id, versionId: version, lastUpdated: now, deleted: false, body: body)
    }

    static func removeIndex(type: String, id: String) -> [SQLStatement] {
        Schema.indexTables.map { SQLStatement("DELETE FROM \($0.name) WHERE type = ? AND id = ?", [.text(type), .text(id)]) }
    }

    static func insertIndex(_ entries: SearchIndexEntries, type: String, id: String) -> [SQLStatement] {
        let rows: [[[SQLValue]]] = [
            entries.strings.map { [.text($0.parameter), .text($0.normalized), .text($0.exact)] },
            entries.tokens.map { [.text($0.parameter), SQLValue($0.system), SQLValue($0.code)] },
            entries.references.map { [.text($0.parameter), SQLValue($0.targetType), SQLValue($0.targetId), SQLValue($0.url)] },
            entries.dates.map { [.text($0.parameter), .integer($0.range.low), .integer($0.range.high)] },
            entries.uris.map { [.text($0.parameter), .text($0.exact)] },
            entries.numbers.map { [.text($0.parameter), .double($0.value), SQLValue($0.system), SQLValue($0.code)] },
        ]
        var statements: [SQLStatement] = []
        for (table, tableRows) in zip(Schema.indexTables, rows) where !tableRows.isEmpty {
            let columnCount = table.columns.count + 3
            let placeholders = "(" + Array(repeating: "?", count: columnCount).joined(separator: ", ") + ")"
            // One multi-row INSERT per table and chunk: far fewer round trips than a row each.
            for chunk in stride(from: 0, to: tableRows.count, by: 200) {
                let slice = tableRows[chunk..<min(chunk + 200, tableRows.count)]
                let sql = "INSERT INTO \(table.name) (type, id, param, \(table.columns.joined(separator: ", "))) VALUES "
                    + Array(repeating: placeholders, count: slice.count).joined(separator: ", ")
                var binds: [SQLValue] = []
                binds.reserveCapacity(slice.count * columnCount)
                for row in slice {
                    binds.append(.text(type))
                    binds.append(.text(id))
                    binds.append(contentsOf: row)
                }
                statements.append(SQLStatement(sql, binds))
            }
        }
        return statements
    }

    // MARK: Reads

    public func read(type: String, id: String) async throws -> StoredResource {
        let rows = try await database.withConnection { executor in
            try await executor.query(
                "SELECT r.version, r.last_updated, r.deleted, h.body FROM resources r \(SQLFHIRStore.joinCurrentBody)"
                    + " WHERE r.type = ? AND r.id = ?", [.text(type), .text(id)])
        }
        guard let row = rows.first else { throw FHIRError.notFound("\(type)/\(id) is not known") }
        let stored = SQLFHIRStore.stored(type: type, id: id, row: row)
        if stored.deleted { throw FHIRError.gone("\(type)/\(id) was deleted") }
        return stored
    }

    public func vread(type: String, id: String, version: Int) async throws -> StoredResource {
        let rows = try await database.withConnection { executor in
            try await executor.query(
                "SELECT version, last_updated, deleted, body FROM resource_history WHERE type = ? AND id = ? AND version = ?",
                [.text(type), .text(id), .integer(Int64(version))])
        }
        guard let row = rows.first else { throw FHIRError.notFound("\(type)/\(id) has no version \(version)") }
        let stored = SQLFHIRStore.stored(type: type, id: id, row: row)
        if stored.deleted { throw FHIRError.gone("Version \(version) of \(type)/\(id) is a deletion") }
        return stored
    }

    /// Joins each current row to the history row that holds its body.
    static let joinCurrentBody = "JOIN resource_history h ON h.type = r.type AND h.id = r.id AND h.version = r.version"

    static func stored(type: String, id: String, row: SQLRow) -> StoredResource {
        StoredResource(
            type: type, id: id, versionId: Int(row[0].int ?? 0), lastUpdated: row[1].int ?? 0, deleted: row[2].int == 1,
            body: row[3].string)
    }

    public func history(type: String?, id: String?, since: Int64?, count: Int, offset: Int) async throws -> SearchPage {
        var conditions: [String] = []
        var binds: [SQLValue] = []
        if let type {
            conditions.append("type = ?")
            binds.append(.text(type))
        }
        if let id {
            conditions.append("id = ?")
            binds.append(.text(id))
        }
        if let since {
            conditions.append("last_updated >= ?")
            binds.append(.integer(since))
        }
        let whereClause = conditions.isEmpty ? "" : " WHERE " + conditions.joined(separator: " AND ")
        let countBinds = binds
        let pageBinds = binds + [.integer(Int64(count)), .integer(Int64(offset))]
        let (total, rows) = try await database.withConnection { executor in
            let total = try await executor.query("SELECT COUNT(*) FROM resource_history\(whereClause)", countBinds)
            let rows = count == 0 ? [] : try await executor.query(
                "SELECT version, last_updated, deleted, body, type, id FROM resource_history\(whereClause)"
                    + " ORDER BY last_updated DESC, version DESC LIMIT ? OFFSET ?", pageBinds)
            return (Int(total.first?.first?.int ?? 0), rows)
        }
        return SearchPage(
            total: total,
            resources: rows.map { SQLFHIRStore.stored(type: $0[4].string ?? "", id: $0[5].string ?? "", row: $0) })
    }

    public func search(_ query: SearchQuery) async throws -> SearchPage {
        let sql = SearchSQLBuilder(dialect: database.dialect).build(query)
        let wantRows = !query.countOnly && query.count > 0
        let (total, rows) = try await database.withConnection { executor in
            let total = try await executor.query(sql.count, sql.binds)
            let rows = wantRows ? try await executor.query(sql.select, sql.selectBinds) : []
            return (Int(total.first?.first?.int ?? 0), rows)
        }
        return SearchPage(
            total: total,
            resources: rows.map { SQLFHIRStore.stored(type: $0[4].string ?? "", id: $0[5].string ?? "", row: $0) })
    }
}

/// Milliseconds since the epoch that never go backwards (the wall clock may), so that
/// `_since` and `_lastUpdated` order writes the way they happened.
final class MonotonicClock: @unchecked Sendable {
    private var last: Int64 = 0
    private let lock = NSLock()

    func now() -> Int64 {
        let wall = Int64((Date().timeIntervalSince1970 * 1000).rounded(.down))
        lock.lock()
        defer { lock.unlock() }
        last = max(wall, last)
        return last
    }
}
