import FHIR

/// A create split in two, so that a transaction Bundle's entries can be made ready on every
/// core while the single writer writes those before them: ``prepareCreate`` (stamping, JSON
/// text, index rows, statements: no database) and ``commit`` (the statements, in order).
extension SQLFHIRTransaction {
    func prepareCreate(_ resource: JSONValue, type: String, id: String, lastUpdated: Int64) throws -> PreparedCreate {
        let (statements, stored) = try store.writeStatements(resource, type: type, id: id, version: 1, isNew: true, lastUpdated: lastUpdated)
        return PreparedCreate(content: .statements(statements, stored))
    }

    func commit(_ prepared: PreparedCreate) async throws -> StoredResource {
        switch prepared.content {
        case .statements(let statements, let stored):
            try await executor.execute(statements)
            store.statistics.recordWrite()
            return stored
        case .planned(let resource, let type, let id):
            return try await create(resource, type: type, id: id)
        }
    }

    /// Taken inside the transaction, which on SQLite holds the writer: stamps follow the
    /// order of commits (see ``SQLFHIRStore/create(_:type:)``).
    func stamp() -> Int64 { store.clock.now() }
}
