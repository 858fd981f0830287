import FHIR

/// A create split in two, so that a transaction Bundle's entries can be made ready on every
/// core while the single writer writes those before them: ``prepareCreate`` (JSON text, index
/// rows, statements: no database, no time) and ``commit`` (stamped now, in the writer's turn,
/// and written).
extension SQLFHIRTransaction {
    func prepareCreate(_ resource: JSONValue, type: String, id: String) throws -> PreparedCreate {
        PreparedCreate(content: .write(try store.prepareWrite(resource, type: type, id: id, version: 1, isNew: true)))
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
}
