import FHIR

/// A create split in two, so that a transaction Bundle's entries can be made ready on every
/// core while the single writer writes those before them: ``prepareCreate`` (JSON text, index
/// rows, statements: no database, no time) and ``commit`` (stamped now, in the writer's turn,
/// and written).
extension SQLFHIRTransaction {
    func prepareCreate(_ resource: JSONValue, type: String, id: String) throws -> PreparedCreate {
        PreparedCreate(
            content: .write(
                try store.prepareWrite(resource, type: type, id: id, version: 1, isNew: true, statementsAhead: false)))
    }

    func commit(_ prepared: PreparedCreate) async throws -> StoredResource {
        switch prepared.content {
        case .write(let write):
            // Stamped here, inside the transaction (on SQLite, the writer's turn): stamps follow
            // the order of writes and commits, as a create's do (see ``SQLFHIRStore/create(_:type:)``).
            // On PostgreSQL a new resource is the one prepared create statement.
            return try await self.write(write, stampedAt: store.clock.now())
        case .planned(let resource, let type, let id):
            return try await create(resource, type: type, id: id)
        }
    }

    /// New resources together: on PostgreSQL one ``PostgresCreateStatement`` for all of them;
    /// on SQLite one multi-row INSERT per table (``newResourceStatements(_:stamps:bodies:)``), not
    /// one per table and resource. Each is stamped in order, as one commit after another.
    /// Anything but new resources prepared by this store is written one by one.
    func commit(_ prepared: [PreparedCreate]) async throws -> [StoredResource] {
        let writes = prepared.compactMap { item -> PreparedWrite? in
            guard case .write(let write) = item.content, write.isNew else { return nil }
            return write
        }
        // By the connection, not the dialect: only a PostgreSQL connection runs the prepared
        // statement; anything else of PostgreSQL's dialect is written one by one.
        let connection = executor as? PostgresDatabase.Connection
        guard writes.count == prepared.count, writes.count > 1, connection != nil || store.database.dialect == .sqlite
        else { return try await prepared.asyncMap { try await commit($0) } }
        let clock = store.clock
        let stamps = writes.map { _ in clock.now() }
        let bodies = zip(writes, stamps).map { $0.body(stampedAt: $1) }
        if let connection {
            try await connection.execute(
                prepared: PostgresCreateStatement(
                    resources: writes.indices.map { n in
                        PostgresCreateStatement.Resource(
                            type: writes[n].type, id: writes[n].id, version: Int64(writes[n].version),
                            lastUpdated: stamps[n], body: bodies[n], indexRows: writes[n].indexRows)
                    }))
        } else {
            try await executor.execute(Self.newResourceStatements(writes, stamps: stamps, bodies: bodies))
        }
        for _ in writes { store.statistics.recordWrite() }
        return writes.indices.map { n in
            StoredResource(
                type: writes[n].type, id: writes[n].id, versionId: writes[n].version, lastUpdated: stamps[n],
                deleted: false, body: bodies[n])
        }
    }

    /// SQLite's statements for new resources: their `resources` rows, their history rows, then
    /// each index table's rows of all of them, in multi-row INSERTs of a power of two rows (up to
    /// 32) whose texts are built once (``multiRowInserts(_:rows:appendRow:)``).
    static func newResourceStatements(_ writes: [PreparedWrite], stamps: [Int64], bodies: [String]) -> [SQLStatement] {
        var statements = multiRowInserts(resourceInsertTexts, rows: writes.count) { n, binds in
            binds += [
                .text(writes[n].type), .text(writes[n].id), .integer(Int64(writes[n].version)), .integer(stamps[n]),
            ]
        }
        statements += multiRowInserts(historyInsertTexts, rows: writes.count) { n, binds in
            binds += [
                .text(writes[n].type), .text(writes[n].id), .integer(Int64(writes[n].version)), .integer(stamps[n]),
                .text(bodies[n]),
            ]
        }
        for kind in IndexKinds.all {
            var rows: [(write: Int, values: [SQLValue])] = []  // the write by position: no copy of it per row
            for (n, write) in writes.enumerated() {
                for row in write.indexRows.first(where: { $0.kind.table == kind.table })?.rows ?? [] {
                    rows.append((n, row))
                }
            }
            statements += multiRowInserts(sqliteInsertTexts(kind), rows: rows.count) { n, binds in
                binds.append(.text(writes[rows[n].write].type))
                binds.append(.text(writes[rows[n].write].id))
                binds += rows[n].values
            }
        }
        return statements
    }

    /// New `resources` rows, 1 to 32 at once. OR FAIL: see ``insertText(_:rows:_:)``.
    static let resourceInsertTexts: [String] = (0...5).map {
        "INSERT OR FAIL INTO resources (type, id, version, last_updated, deleted) VALUES "
            + Array(repeating: "(?, ?, ?, ?, 0)", count: 1 << $0).joined(separator: ", ")
    }

    /// New history rows, 1 to 32 at once.
    static let historyInsertTexts: [String] = (0...5).map {
        "INSERT OR FAIL INTO resource_history (type, id, version, last_updated, deleted, body) VALUES "
            + Array(repeating: "(?, ?, ?, ?, 0, ?)", count: 1 << $0).joined(separator: ", ")
    }
}

extension Array {
    /// `transform` of each element in order, awaited one after another.
    func asyncMap<T>(_ transform: (Element) async throws -> T) async throws -> [T] {
        var results: [T] = []
        results.reserveCapacity(count)
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
