import FHIR

extension SQLFHIRTransaction {
    /// Writes `prepared` stamped `now` on this transaction's connection. A new resource on
    /// PostgreSQL is one ``PostgresCreateStatement``, prepared once per connection (a
    /// transaction Bundle's creates are then neither parsed nor planned one by one); anything
    /// else runs as ``PreparedWrite/statements(stampedAt:)``.
    func write(_ prepared: PreparedWrite, stampedAt now: Int64) async throws -> StoredResource {
        let stored: StoredResource
        if prepared.isNew, let connection = executor as? PostgresDatabase.Connection {
            let body = prepared.body(stampedAt: now)
            try await connection.execute(
                prepared: PostgresCreateStatement(
                    type: prepared.type, id: prepared.id, version: Int64(prepared.version), lastUpdated: now,
                    body: body,
                    indexRows: prepared.indexRows))
            stored = StoredResource(
                type: prepared.type, id: prepared.id, versionId: prepared.version, lastUpdated: now, deleted: false,
                body: body)
        } else {
            let (statements, written) = prepared.statements(stampedAt: now)
            try await executor.execute(statements)
            stored = written
        }
        store.statistics.recordWrite()
        return stored
    }
}
