import FHIR
import Foundation

/// The store's operations on one connection, inside one database transaction where the
/// caller opened one: what a transaction Bundle needs, and what each single interaction uses.
struct SQLFHIRTransaction: FHIRTransaction {
    let store: SQLFHIRStore
    let executor: any SQLExecutor

    private var dialect: SQLDialect { store.database.dialect }

    // MARK: Writes

    func create(_ resource: JSONValue, type: String, id: String?) async throws -> StoredResource {
        try await write(resource, type: type, id: id ?? UUID().uuidString.lowercased(), version: 1, isNew: true)
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
                type: type, id: id, versionId: current.version, lastUpdated: current.lastUpdated, deleted: true, body: nil)
        }
        let now = store.clock.now()
        let version = current.version + 1
        try await executor.execute([
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
            "SELECT version, last_updated, deleted FROM resources WHERE type = ? AND id = ?\(lock)", [.text(type), .text(id)])
        guard let row = rows.first else { return nil }
        return VersionRow(version: Int(row[0].int ?? 0), lastUpdated: row[1].int ?? 0, deleted: row[2].int == 1)
    }

    /// Stamps `id` and `meta`, writes the resource and its history row, and re-indexes it.
    private func write(_ resource: JSONValue, type: String, id: String, version: Int, isNew: Bool) async throws -> StoredResource {
        guard case .object(var object) = resource else { throw FHIRError.unprocessable("A resource must be a JSON object") }
        let now = store.clock.now()
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
            statements += Self.removeIndex(type: type, id: id)
        }
        statements.append(SQLStatement(
            "INSERT INTO resource_history (type, id, version, last_updated, deleted, body) VALUES (?, ?, ?, ?, 0, ?)",
            [.text(type), .text(id), .integer(Int64(version)), .integer(now), .text(body)]))
        statements += Self.insertIndex(store.indexer.entries(for: stamped, resourceType: type), type: type, id: id)
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
        let sql = SearchSQLBuilder(dialect: dialect).build(query)
        let total = try await executor.query(sql.count, sql.binds)
        let rows = !query.countOnly && query.count > 0 ? try await executor.query(sql.select, sql.selectBinds) : []
        return SearchPage(
            total: Int(total.first?.first?.int ?? 0),
            resources: rows.map { SQLFHIRStore.stored(type: $0[4].string ?? "", id: $0[5].string ?? "", row: $0) })
    }
}
