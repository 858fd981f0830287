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
    /// on SQLite one multi-row INSERT per table (``newResourceStatements(_:stamps:)``), not
    /// one per table and resource. Each is stamped in order, as one commit after another.
    /// Anything but new resources prepared by this store is written one by one.
    func commit(_ prepared: [PreparedCreate]) async throws -> [StoredResource] {
        var writes: [PreparedWrite] = []
        for item in prepared {
            guard case .write(let write) = item.content, write.isNew else {
                var stored: [StoredResource] = []
                for item in prepared { stored.append(try await commit(item)) }
                return stored
            }
            writes.append(write)
        }
        guard writes.count > 1 else { return try await prepared.asyncMap { try await commit($0) } }
        let clock = store.clock
        let stamps = writes.map { _ in clock.now() }
        let bodies = zip(writes, stamps).map { $0.body(stampedAt: $1) }
        // By the connection, not the dialect: only a PostgreSQL connection runs the prepared
        // statement; anything else of PostgreSQL's dialect is written one by one.
        if let connection = executor as? PostgresDatabase.Connection {
            try await connection.execute(
                prepared: PostgresCreateStatement(
                    resources: zip(writes, zip(stamps, bodies)).map { write, stamped in
                        PostgresCreateStatement.Resource(
                            type: write.type, id: write.id, version: Int64(write.version), lastUpdated: stamped.0,
                            body: stamped.1, indexRows: write.indexRows)
                    }))
        } else if store.database.dialect == .sqlite {
            try await executor.execute(Self.newResourceStatements(writes, stamps: stamps, bodies: bodies))
        } else {
            return try await prepared.asyncMap { try await commit($0) }
        }
        for _ in writes { store.statistics.recordWrite() }
        return zip(writes, zip(stamps, bodies)).map { write, stamped in
            StoredResource(
                type: write.type, id: write.id, versionId: write.version, lastUpdated: stamped.0, deleted: false,
                body: stamped.1)
        }
    }

    /// SQLite's statements for new resources: their `resources` rows, their history rows, then
    /// each index table's rows of all of them, in multi-row INSERTs of a power of two rows (up to
    /// 32), whose texts are built once (``insertTexts``).
    static func newResourceStatements(_ writes: [PreparedWrite], stamps: [Int64], bodies: [String]) -> [SQLStatement] {
        var statements = multiRowInserts(
            resourceInsertTexts,
            rows: zip(writes, stamps).map { write, now in
                [.text(write.type), .text(write.id), .integer(Int64(write.version)), .integer(now)]
            })
        statements += multiRowInserts(
            historyInsertTexts,
            rows: zip(writes, zip(stamps, bodies)).map { write, stamped in
                [
                    .text(write.type), .text(write.id), .integer(Int64(write.version)), .integer(stamped.0),
                    .text(stamped.1),
                ]
            })
        for (position, kind) in IndexKinds.all.enumerated() {
            var rows: [[SQLValue]] = []
            for write in writes {
                // `indexRows` holds every kind in ``IndexKinds/all`` order; by name should it not.
                let table =
                    write.indexRows.indices.contains(position) && write.indexRows[position].kind.table == kind.table
                    ? write.indexRows[position] : write.indexRows.first { $0.kind.table == kind.table }
                for row in table?.rows ?? [] { rows.append([.text(write.type), .text(write.id)] + row) }
            }
            guard !rows.isEmpty else { continue }
            if let texts = sqliteInsertTexts[kind.table] {
                statements += multiRowInserts(texts, rows: rows)
            } else {
                statements += multiRowInserts((0...5).map { insertText(kind, rows: 1 << $0, .sqlite) }, rows: rows)
            }
        }
        return statements
    }

    /// `rows` in statements of `texts[p]`, each the INSERT of 2^p rows: the largest that fits
    /// first, so that a table's texts are six.
    static func multiRowInserts(_ texts: [String], rows: [[SQLValue]]) -> [SQLStatement] {
        var statements: [SQLStatement] = []
        var start = 0
        while start < rows.count {
            let power = min(texts.count - 1, Int.bitWidth - 1 - (rows.count - start).leadingZeroBitCount)
            let size = 1 << power
            var binds: [SQLValue] = []
            binds.reserveCapacity(size * (rows[start].count))
            for row in rows[start..<start + size] { binds.append(contentsOf: row) }
            statements.append(SQLStatement(texts[power], binds))
            start += size
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
    fileprivate func asyncMap<T>(_ transform: (Element) async throws -> T) async throws -> [T] {
        var results: [T] = []
        results.reserveCapacity(count)
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
